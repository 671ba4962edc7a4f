"""Sweep speed: wall time of one sweep of 8 short runs with --jobs 1 and with --jobs 2, side by side.

    python benchmarks/sweep.py               # 8 runs (4 learning rates × 2 seeds) of 60 epochs, 3 repeats
    python benchmarks/sweep.py --epochs 25   # shorter runs: the fixed costs weigh more

Each run: 600 three-class spirals, 2 → 64×3 relu → 3, Adam, batch 32 (15 steps per epoch). The
figure per setting is the median over repeats of the whole sweep as `dlexp sweep` does it (start the
workers, validate every run, run, write the sweep folder and its plot; everything but Python's own
start-up and the table), measured in one process with the two settings interleaved so machine drift
hits both alike. Target: the
--jobs 2 sweep takes ≤ 0.6× the --jobs 1 sweep's time on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlexp.sweep.folder import run_sweep
from dlexp.sweep.grid import build_plan, parse_axis
from dlexp.sweep.runner import LocalExecutor, default_jobs

CONFIG = """\
name: bench
seed: 0
data: {{source: synthetic, kind: spirals, n_samples: 600, n_classes: 3, noise: 0.1}}
model: {{hidden: [64, 64, 64], activation: relu, init: he_normal}}
training: {{epochs: {epochs}, batch_size: 32, loss: cce, optimizer: {{name: adam, lr: 0.005}}}}
"""


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores other processes keep busy (Linux /proc/stat), to read the figures against."""
    def sample():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    return default_jobs() * (1 - (idle1 - idle0) / max(1, total1 - total0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="epochs per run (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps per setting (default 3)")
    args = parser.parse_args()
    before = busy_cores()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(CONFIG.format(epochs=args.epochs), encoding="utf-8")
        axes = [parse_axis("training.optimizer.lr=0.01,0.005,0.002,0.001")]
        times: dict[int, list[float]] = {1: [], 2: []}
        per_run: dict[int, list[float]] = {1: [], 2: []}
        for repeat in range(args.repeats):
            for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
                started = time.perf_counter()
                with LocalExecutor(jobs) as executor:  # what `dlexp sweep` does, minus printing
                    plan = build_plan(config, axes, seeds=2)
                    outcome = run_sweep(plan, executor, Path(tmp) / f"runs-{jobs}")
                times[jobs].append(time.perf_counter() - started)
                assert all(row["status"] == "completed" for row in outcome.rows)
                per_run[jobs].append(statistics.mean(row["wall_s"] for row in outcome.rows))
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"sweep of {len(plan.runs)} runs × {args.epochs} epochs of 15 steps, {args.repeats} repeats, "
          f"{default_jobs()} cores available")
    print(f"{'':>10} {'sweep wall s':>13} {'mean s per run':>15}")
    print(f"{'--jobs 1':>10} {one:13.2f} {statistics.median(per_run[1]):15.3f}")
    print(f"{'--jobs 2':>10} {two:13.2f} {statistics.median(per_run[2]):15.3f}")
    print(f"ratio jobs 2 / jobs 1: {two / one:.2f}  (target ≤ 0.60)")
    if before is not None:
        print(f"cores busy with other work: {before:.1f} before, {busy_cores():.1f} after "
              "(a parallel sweep cannot use cores others hold)")


if __name__ == "__main__":
    main()
