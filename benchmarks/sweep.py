"""Sweep speed: one sweep of 8 runs with --jobs 1 and with --jobs N, against the same runs alone.

    python benchmarks/sweep.py                # 8 runs (4 learning rates × 2 seeds) of 100 epochs, 3 repeats
    python benchmarks/sweep.py --epochs 25    # shorter runs: the fixed costs weigh more
    python benchmarks/sweep.py --jobs 4       # N (default: the cores this process may use)

Each run: 600 three-class spirals, 2 → 64×3 relu → 3, Adam, batch 32 (15 steps per epoch); about
1 s on an idle core at 100 epochs. Per repeat, interleaved so that machine drift hits all alike:

- **alone**: every run of the plan, one after the other in this process (imports done, one BLAS
  thread), as ``dlexp train`` runs it minus Python's start-up: ``run_one``'s wall time (data,
  training, writing the run directory), the step log's text made on a second core where there is one;
- **--jobs 1** and **--jobs N**: the whole sweep as ``dlexp sweep`` does it (start the workers,
  validate and prepare every grid point, run, write the sweep folder and its plot; everything but
  Python's start-up and the table).

Printed, as medians over the repeats: each sweep's wall time; the speed-up (jobs 1 / jobs N); the
mean run time inside each sweep (each run's own ``wall_s``) against the same runs alone; and the
per-run overhead of the sweep, (sweep wall × workers / runs − mean run alone) / mean run alone,
which charges worker start, validation, scheduling, the sweep's files and idle workers at the end
to the runs. Targets (issue 18): overhead under 5 % of a 1 s run; --jobs 2 at most 0.55× --jobs 1
on 2 cores. The figures mean something only on cores no other work holds: the script prints how
many were busy before and after. ``DLEXP_FORMAT_PROCESS=0 python benchmarks/sweep.py`` makes every
run format its step log itself (a sweep with ``--jobs 1`` otherwise leaves that to a second process
on the idle core, which ``--jobs 2`` cannot).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlexp.cores import core_to_spare
from dlexp.sweep.folder import run_sweep
from dlexp.sweep.grid import build_plan, parse_axis
from dlexp.sweep.runner import LocalExecutor, default_jobs, one_blas_thread, run_one

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


def sweep_once(config: Path, axes, jobs: int, runs_dir: Path) -> tuple[float, float, int]:
    """(sweep wall s, mean run wall s inside it, runs)."""
    started = time.perf_counter()
    with LocalExecutor(jobs) as executor:  # what `dlexp sweep` does, minus printing
        plan = build_plan(config, axes, seeds=2)
        outcome = run_sweep(plan, executor, runs_dir)
    wall = time.perf_counter() - started
    assert all(row["status"] == "completed" for row in outcome.rows)
    return wall, statistics.mean(row["wall_s"] for row in outcome.rows), len(plan.runs)


def alone_once(config: Path, axes, runs_dir: Path) -> float:
    """Mean wall s of the plan's runs, each run alone in this process."""
    plan = build_plan(config, axes, seeds=2)
    spare_core = core_to_spare()  # as `dlexp train` runs: the step-log text on a second core if there is one
    with one_blas_thread():
        results = [run_one(replace(spec, background_format=spare_core)) for spec in plan.specs(runs_dir)]
    assert all(r["status"] == "completed" for r in results)
    return statistics.mean(r["wall_s"] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100, about 1 s)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    parser.add_argument("--jobs", type=int, default=None, help="N (default: the cores available)")
    args = parser.parse_args()
    jobs_n = args.jobs or max(2, default_jobs())
    before = busy_cores()
    settings = ("alone", 1, jobs_n)
    walls: dict[object, list[float]] = {s: [] for s in settings}
    inside: dict[object, list[float]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(CONFIG.format(epochs=args.epochs), encoding="utf-8")
        axes = [parse_axis("training.optimizer.lr=0.01,0.005,0.002,0.001")]
        for repeat in range(args.repeats):
            for setting in settings if repeat % 2 == 0 else settings[::-1]:
                runs_dir = Path(tmp) / f"runs-{setting}-{repeat}"
                if setting == "alone":
                    inside["alone"].append(alone_once(config, axes, runs_dir))
                else:
                    wall, mean_run, n_runs = sweep_once(config, axes, setting, runs_dir)
                    walls[setting].append(wall)
                    inside[setting].append(mean_run)
    alone = statistics.median(inside["alone"])
    print(f"sweep of {n_runs} runs × {args.epochs} epochs of 15 steps, {args.repeats} repeats (medians), "
          f"{default_jobs()} cores available")
    print(f"mean run alone: {alone:.3f} s")
    print(f"{'':>10} {'sweep wall s':>13} {'speed-up':>9} {'run in sweep s':>15} {'÷ alone':>8} {'overhead/run':>13}")
    for jobs in (1, jobs_n):
        wall, run = statistics.median(walls[jobs]), statistics.median(inside[jobs])
        workers = min(jobs, n_runs)
        overhead = (wall * workers / n_runs - alone) / alone
        speed_up = statistics.median(walls[1]) / wall
        print(f"{f'--jobs {jobs}':>10} {wall:13.2f} {speed_up:9.2f} {run:15.3f} {run / alone:8.2f} {overhead:12.1%}")
    ratio = statistics.median(walls[jobs_n]) / statistics.median(walls[1])
    print(f"ratio jobs {jobs_n} / jobs 1: {ratio:.2f}  (target on 2 cores: ≤ 0.55)")
    if before is not None:
        print(f"cores busy with other work: {before:.1f} before, {busy_cores():.1f} after "
              "(a parallel sweep cannot use cores others hold)")


if __name__ == "__main__":
    main()
