"""Start-up time of `dlexp --help` (and --version, validate) against `python -c "import numpy"`, side by side.

Each repetition runs every contender once, in turn, so that a busy machine slows them alike; the
figure reported is the median over repetitions of the per-repetition ratio to `import numpy`.

    python benchmarks/startup.py            # 15 repetitions
    python benchmarks/startup.py --reps 31 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTENDERS = {
    "import numpy": [sys.executable, "-c", "import numpy"],
    "dlexp --help": [sys.executable, "-m", "dlexp", "--help"],
    "dlexp --version": [sys.executable, "-m", "dlexp", "--version"],
    "dlexp validate": [sys.executable, "-m", "dlexp", "validate", str(REPO / "configs" / "quickstart.yaml")],
    "python (empty)": [sys.executable, "-c", "pass"],
}
BASELINE = "import numpy"
TARGET = 2.0  # issue 14: `dlexp --help` within 2x `import numpy`


def time_once(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=REPO)
    return time.perf_counter() - start


def measure(reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for name, argv in CONTENDERS.items():  # one warm-up each: the page cache, .pyc files
        time_once(argv)
    for rep in range(reps):
        order = list(CONTENDERS.items())
        if rep % 2:
            order.reverse()  # alternate the order so neither side always runs first
        for name, argv in order:
            times[name].append(time_once(argv))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    times = measure(args.reps)
    base = times[BASELINE]
    rows = {}
    for name, values in times.items():
        ratios = [v / b for v, b in zip(values, base)]
        rows[name] = {"median_s": statistics.median(values), "min_s": min(values),
                      "median_ratio_to_numpy": statistics.median(ratios)}
    if args.json:
        print(json.dumps({"reps": args.reps, "python": sys.version.split()[0], "rows": rows}, indent=2))
        return
    print(f"{args.reps} alternating repetitions, Python {sys.version.split()[0]}")
    print(f"{'command':<18} {'median s':>9} {'min s':>7} {'x import numpy (median of ratios)':>35}")
    for name, row in rows.items():
        print(f"{name:<18} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['median_ratio_to_numpy']:>35.2f}")
    ratio = rows["dlexp --help"]["median_ratio_to_numpy"]
    print(f"dlexp --help / import numpy = {ratio:.2f} (target <= {TARGET:g}): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
