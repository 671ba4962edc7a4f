"""The sweep folder: run a validated :class:`~dlexp.sweep.grid.SweepPlan` on an executor and write its files.

``dlexp sweep``, ``compare-optimizers`` (and its ``--tune-lr`` tuning sweep) and ``lr-find`` write
this folder; every plan runs through :func:`dlexp.sweep.runner.run_plan`.

Layout of ``RUNS_DIR/sweeps/<name>-<YYYYmmdd-HHMMSS>[-k]/``::

    sweep.json        what was run (config, --set overrides, axes, seeds, executor) and the per-point results
    sweep.csv         one row per run: grid values, seed, status, final metrics, curve statistics, run_dir
    curves.csv        one row per (run, epoch): train/val loss and accuracy
    loss_curves.png   per grid point: mean loss line and min–max band over its completed runs
    runs/             each run's normal run directory (see dlexp.rundir): <name>-p<point>-s<seed>-<time>
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlexp import __version__
from dlexp import rundir as rd
from dlexp.errors import ArgumentError
from dlexp.registry import did_you_mean
from dlexp.rundir import create_unique_dir
from dlexp.sweep.aggregate import (
    CURVE_COLUMNS,
    SORT_KEYS,
    curve_rows,
    point_rows,
    run_columns,
    run_rows,
    sort_points,
)
from dlexp.sweep.grid import SweepPlan
from dlexp.sweep.plot import import_in_background, plot_loss_curves
from dlexp.sweep.runner import OnResult, run_plan

SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
CURVES_CSV = "curves.csv"
PLOT_PNG = "loss_curves.png"
STD_NOTE = "sample standard deviation (ddof=1) across seeds, over the completed runs"


@dataclass
class SweepOutcome:
    plan: SweepPlan
    sweep_dir: Path
    results: list[dict[str, Any]]  # per run, in run order, as the executor returned them
    rows: list[dict[str, Any]]  # sweep.csv rows
    points: list[dict[str, Any]]  # per grid point, best first
    sorted_by: str
    target_loss: float | None
    document: dict[str, Any]  # sweep.json


def check_sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise ArgumentError("sort", repr(key), f"unknown key{did_you_mean(key, SORT_KEYS)} "
                            f"(accepted: {', '.join(SORT_KEYS)})")
    return key


def write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Whole file at once, numbers as in run directories (shortest round-trip, NaN empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([rd.format_value(row.get(c)) for c in columns] for row in rows)
    rd.write_text_atomic(path, buf.getvalue())


def run_sweep(plan: SweepPlan, executor, runs_dir: Path, *, sort: str = "val_loss",
              target_loss: float | None = None, on_result: OnResult | None = None) -> SweepOutcome:
    """Create the sweep folder, run every planned run on ``executor``, write the sweep's files."""
    check_sort_key(sort)
    started = time.time()
    sweep_dir = create_unique_dir(Path(runs_dir).resolve() / "sweeps", plan.name, started)
    in_workers = executor.slots > 1 and len(plan.runs) > 1  # this process waits meanwhile
    importing = import_in_background() if in_workers else None
    results = run_plan(plan, sweep_dir / "runs", executor, on_result=on_result)
    if importing is not None:
        importing.join()
    rows = run_rows(plan, results, target_loss)
    points, sorted_by = sort_points(point_rows(plan, rows, results), sort)
    write_csv(sweep_dir / SWEEP_CSV, run_columns(plan), rows)
    write_csv(sweep_dir / CURVES_CSV, CURVE_COLUMNS, curve_rows(plan, results))
    completed = [[res.get("history") or [] for row, res in zip(rows, results)
                  if row["point"] == p.index and row["status"] == "completed"] for p in plan.points]
    plot_loss_curves(sweep_dir / PLOT_PNG, [p.label for p in plan.points], completed,
                     f"{plan.name}: {len(plan.points)} grid points × {len(plan.seeds)} seeds")
    document = {
        "kind": plan.kind,
        "sweep_dir": str(sweep_dir),
        "config": str(plan.config_path),
        "sets": plan.sets,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": round(time.time() - started, 3),
        "executor": executor.name,
        "workers": executor.slots,
        "axes": [{"key": a.key, "values": a.texts} for a in plan.axes],
        "seeds": plan.seeds,
        "std": STD_NOTE,
        "sorted_by": sorted_by,
        "target_loss": target_loss,
        "counts": {s: sum(r["status"] == s for r in rows) for s in ("completed", "diverged", "failed",
                                                                     "interrupted", "cancelled")},
        "points": [{k: v for k, v in p.items() if k != "summary"} for p in points],
        "files": {"sweep_csv": SWEEP_CSV, "curves_csv": CURVES_CSV, "plot": PLOT_PNG, "runs": "runs"},
        **plan.extra,
        "dlexp_version": __version__,
    }
    document = rd.json_safe(document)
    rd.write_json_atomic(sweep_dir / SWEEP_JSON, document)
    return SweepOutcome(plan=plan, sweep_dir=sweep_dir, results=results, rows=rows, points=points,
                        sorted_by=sorted_by, target_loss=target_loss, document=document)
