"""Time to load a 2,000 × 200 numeric CSV, today's reader against the one before it, side by side.

    python benchmarks/csv_load.py [--rows 2000] [--cols 200] [--repeats 7] [--baseline REV]

The baseline is ``dlexp/data/csv.py`` as it was at git revision ``REV`` (default: the last commit
before the vectorized reader), loaded from ``git show`` into a module of its own, so both run in
one process on the same file and the same machine load. Each repeat times the two back to back,
alternating which goes first; the script prints each one's median and the median of the paired
ratios (new / old), and checks that both give the same feature matrix and target, bit for bit.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dlexp.config import DataConfig
from dlexp.data.table import read_csv_table

BASELINE = "de6ae45"  # main before issue 13: one pandas string column at a time, checked cell by cell


def baseline_reader(rev: str):
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:dlexp/data/csv.py"], capture_output=True,
                            text=True, check=True).stdout
    module = types.ModuleType("dlexp_csv_baseline")
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(source, f"{rev}:dlexp/data/csv.py", "exec"), module.__dict__)  # noqa: S102 (this repository's own past code)
    return module.read_csv_table


def write_csv(path: Path, rows: int, cols: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, cols))
    y = rng.integers(0, 3, rows)
    lines = [",".join([f"x{i}" for i in range(cols)] + ["y"])]
    lines += [",".join(map(repr, row.tolist())) + f",{label}" for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args()
    old_reader = baseline_reader(args.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        write_csv(base / "data.csv", args.rows, args.cols)
        cfg = DataConfig(source="csv", path="data.csv", target="y")

        def new():
            return read_csv_table(cfg, base)

        def old():
            return old_reader("data.csv", "y", None, "auto", base)

        a, b = new(), old()  # warm-up, and the results must agree
        assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y), "readers disagree"
        times = {"new": [], "old": []}
        for k in range(args.repeats):
            order = (("new", new), ("old", old)) if k % 2 == 0 else (("old", old), ("new", new))
            for name, fn in order:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    ratios = [n / o for n, o in zip(times["new"], times["old"])]
    print(f"{args.rows} x {args.cols} numeric CSV, {args.repeats} paired repeats")
    print(f"  before ({args.baseline}): median {statistics.median(times['old']):.3f} s")
    print(f"  now:                median {statistics.median(times['new']):.3f} s")
    print(f"  now / before: median paired ratio {statistics.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f}); target <= 0.25")


if __name__ == "__main__":
    main()
