"""Run directories as pandas DataFrames, for notebooks.

``load(path)`` reads one run directory (finished, still running or killed: whatever is on disk);
``load_many(source)`` stacks one table of many runs into one tidy frame with a ``run`` column::

    from dlexp import runs

    run = runs.load("runs/quickstart-20261124-163222")
    run.config["training"]["optimizer"], run.summary["final"]["val_acc"]
    run.metrics.plot(x="epoch", y=["train_loss", "val_loss"])

    history = runs.load_many("runs/sweeps/lr-20261124-170000")       # every run of a sweep
    history.groupby("epoch")["val_loss"].agg(["mean", "std"])

A ``source`` is a run directory, a sweep folder (its ``runs/``), a folder of run directories, a glob
pattern (``"runs/quickstart-*"``), or a list of these. The frames are read by the same code as the
reports (:mod:`dlexp.report.rundata`): a torn last line of a killed run is dropped, numbers are floats
(``step``, ``epoch``, ``layer`` ints), and a missing file gives an empty frame with its columns.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dlexp import rundir as rd
from dlexp.errors import DlexpError

TABLES = ["metrics", "grad_norms", "layer_stats", "timing", "histograms", "steps"]


@dataclass
class Run:
    """One run directory read back: its config and summary as dicts, its CSVs as DataFrames."""

    path: Path
    name: str  # the config's name
    status: str  # running | completed | interrupted | diverged | unknown (no readable summary.json)
    config: dict[str, Any]  # config.yaml, the resolved config
    summary: dict[str, Any]  # summary.json (empty while it cannot be read)
    metrics: pd.DataFrame  # metrics.csv: one row per epoch, epoch 0 = at initialisation
    grad_norms: pd.DataFrame  # grad_norms.csv: one row per (logged step, layer, param)
    layer_stats: pd.DataFrame  # layer_stats.csv: one row per (logged step, layer)
    timing: pd.DataFrame  # timing.csv: wall-clock seconds per epoch
    histograms: pd.DataFrame | None  # histograms.csv when the run logged histograms, else None
    steps: pd.DataFrame | None  # steps.csv (per-step lr and batch loss) when the schedule wrote it, else None

    def table(self, name: str) -> pd.DataFrame:
        """One of :data:`TABLES` by name (an optional file the run lacks: an empty frame)."""
        if name not in TABLES:
            raise DlexpError(f"table {name!r}: accepted: {', '.join(TABLES)}")
        frame = getattr(self, name)
        if frame is None:
            columns = rd.HISTOGRAM_COLUMNS if name == "histograms" else rd.STEP_COLUMNS
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        return frame


def load(path: str | Path) -> Run:
    """Read one run directory (raises :class:`~dlexp.errors.DlexpError` naming it if it is not one)."""
    from dlexp.report.rundata import read_csv_tolerant, read_run

    data = read_run(path, require_steps=False)
    steps = None
    if (data.path / rd.STEPS).is_file():
        steps = read_csv_tolerant(data.path / rd.STEPS, rd.STEP_COLUMNS, rd.STEP_COLUMNS)
    return Run(path=data.path, name=data.name, status=data.status, config=data.config, summary=data.summary,
               metrics=data.metrics, grad_norms=data.grads, layer_stats=data.layers, timing=data.timing,
               histograms=data.histograms, steps=steps)


def find_runs(source: str | Path | list[str | Path]) -> list[Path]:
    """The run directories a source names, in a stable order (see the module docstring)."""
    if isinstance(source, (list, tuple)):
        return list(dict.fromkeys(p for item in source for p in find_runs(item)))
    text = str(source)
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text))
        if not matches:
            raise DlexpError(f"{text}: no run directory matches")
        return find_runs(matches)
    path = Path(text)
    if rd.is_run_dir(path):
        return [path]
    if not path.is_dir():
        raise DlexpError(f"{path}: no such run directory, sweep folder or folder of runs")
    folder = path / "runs" if (path / "runs").is_dir() else path
    found = sorted(p for p in folder.iterdir() if p.is_dir() and rd.is_run_dir(p))
    if not found:
        raise DlexpError(f"{path}: holds no run directory (expected config.yaml and metrics.csv in each)")
    return found


def load_many(source: str | Path | list[str | Path], table: str = "metrics") -> pd.DataFrame:
    """One tidy frame of ``table`` over every run ``source`` names: a ``run`` column (the run folder's
    name, unique per run) first, then the table's own columns."""
    if table not in TABLES:
        raise DlexpError(f"table {table!r}: accepted: {', '.join(TABLES)}")
    frames = []
    for path in find_runs(source):
        frame = load(path).table(table).copy()
        frame.insert(0, "run", path.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
