"""Runs into the tools people already look at: TensorBoard event files and an MLflow tracking store.

Both exporters read run directories from disk (any run: finished, still going or killed) and name
every series the same way (:func:`scalar_series`), so a chart is found under one name in both:

    train_loss, val_loss, ... (every metrics.csv column but epoch and step), epoch
    grad_norm/layers.3.W, param_norm/layers.3.W, update_ratio/layers.3.W   (grad_norms.csv)
    act_mean/layers.3, act_std/layers.3, saturated_fraction/layers.3, dead_fraction/layers.3
    <kind>/layers.3  histograms (histograms.csv, when the run logged them)

The x axis of every series is the optimizer step (``metrics.csv``'s ``step`` for epoch rows; epoch 0,
at initialisation, is step 0); the ``epoch`` series maps steps to epochs.

Each dlexp run has a stable key — its run folder's name, or ``sweeps/<sweep folder>/<run folder>`` for
the runs of a sweep, as dlexp lays them out under ``runs/`` — so exporting again replaces the earlier export of that run instead of adding a copy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dlexp import rundir as rd
from dlexp.errors import DlexpError
from dlexp.report.rundata import RunData

GRAD_SERIES = ["grad_norm", "param_norm", "update_ratio"]
LAYER_SERIES = ["act_mean", "act_std", "saturated_fraction", "dead_fraction"]


@dataclass
class ExportItem:
    """One run to export, with its stable key and where it belongs."""

    run: RunData
    key: str  # "<run folder>" or "sweeps/<sweep folder>/<run folder>"
    label: str


@dataclass
class SweepItem:
    """A sweep folder and its runs (an MLflow parent run; a TensorBoard folder)."""

    path: Path
    key: str  # "sweeps/<sweep folder>", never a run folder's name (as under runs/)
    runs: list[ExportItem] = field(default_factory=list)


def plan_export(paths: list[Path]) -> tuple[list[ExportItem], list[SweepItem]]:
    """Read every argument before anything is written: loose runs, and sweeps with their runs."""
    from dlexp.cli.report import _labels
    from dlexp.report.html import read_sources

    sources = read_sources(paths)
    labels = iter(_labels([run for source in sources for run in source.runs]))
    loose: list[ExportItem] = []
    sweeps: list[SweepItem] = []
    for source in sources:
        if source.is_sweep:
            sweep = SweepItem(path=source.path, key=f"sweeps/{source.path.resolve().name}")
            sweep.runs = [ExportItem(run, f"{sweep.key}/{run.path.name}", next(labels)) for run in source.runs]
            sweeps.append(sweep)
        else:
            run = source.runs[0]
            loose.append(ExportItem(run, run.path.resolve().name, next(labels)))
    keys = [item.key for item in loose] + [item.key for sweep in sweeps for item in sweep.runs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise DlexpError(f"{repeated[0]}: given twice (each run is exported once; its key is its folder name)")
    return loose, sweeps


def scalar_series(run: RunData) -> Iterator[tuple[str, int, float]]:
    """Every scalar of a run as (tag, step, value), NaN skipped (see the module docstring)."""
    metrics = run.metrics
    for column in metrics.columns:
        if column == "step":
            continue
        for step, value in zip(metrics["step"], metrics[column]):
            if _finite(value):
                yield column, int(step), float(value)
    grads = run.grads
    for name in GRAD_SERIES:
        for step, layer, param, value in zip(grads["step"], grads["layer"], grads["param"], grads[name]):
            if _finite(value):
                yield f"{name}/layers.{layer}.{param}", int(step), float(value)
    layers = run.layers
    for name in LAYER_SERIES:
        for step, layer, value in zip(layers["step"], layers["layer"], layers[name]):
            if _finite(value):
                yield f"{name}/layers.{layer}", int(step), float(value)


@dataclass
class Histogram:
    """One histogram of one layer at one step, as histograms.csv's bins give it."""

    tag: str  # "<kind>/layers.<layer>"
    step: int
    bin_low: list[float]
    bin_high: list[float]
    counts: list[float]


def histograms(run: RunData) -> Iterator[Histogram]:
    frame = run.histograms
    if frame is None or not len(frame):
        return
    for (step, layer, kind), group in frame.groupby(["step", "layer", "kind"], sort=True):
        group = group.sort_values("bin_low")
        yield Histogram(f"{kind}/layers.{layer}", int(step), group["bin_low"].tolist(),
                        group["bin_high"].tolist(), group["count"].tolist())


def config_text(run: RunData) -> str:
    """The run's config.yaml as written (empty if it has none)."""
    path = run.path / rd.CONFIG
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


def missing_extra(extra: str, module: str) -> DlexpError:
    return DlexpError(f"--{extra} needs the {module} package: pip install 'dlexp[{extra}]'")


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)
