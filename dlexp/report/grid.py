"""A grid of short trainings (activation × depth × init × BatchNorm × seed) and its gradient matrix.

Every grid point is the base config with these overrides:

- ``model.activation``, ``model.init``, ``model.batchnorm`` as given (an axis left out keeps the
  base config's value);
- ``model.depth = d`` hidden layers; ``model.hidden`` is dropped, and its first width becomes
  ``model.width`` unless the config sets a width;
- ``seed = base seed + k`` for k = 0 .. seeds-1;
- ``--steps N`` (N > 0) trains exactly N optimizer steps of full-batch gradient descent:
  ``training.epochs = N``, ``training.batch_size = full``, ``logging.grad_every = 1``,
  ``training.early_stopping = null``, ``training.checkpoint_every = 0``. Each epoch is then one
  step, so the report's "first epoch" is step 1 (the gradients at initialisation) and its "last
  epoch" is step N. ``--steps 0`` keeps the base config's own epochs, batch size and logging.

The runs are a plan of the sweeps' runner (:func:`dlexp.sweep.grid.plan_runs` with these preset
axes, run by :func:`dlexp.sweep.runner.run_plan`, local or Dask); they go to ``FOLDER/runs/`` and are kept; everything reported is then read back from those
run directories (:func:`dlexp.report.gradients.grad_report`), so ``dlexp grad-report FOLDER/runs/*``
reproduces any run's table. The matrix cell of (configuration, depth) is the mean and sample std
(ddof=1) over seeds of log10(first layer's ‖∂L/∂W‖ / output layer's), over the first epoch (with
``--steps``: step 1, the initial weights — what the chain-rule bound speaks about) and over the
last. The last epoch can read healthier than the network is: once a stuck deep sigmoid net has
fitted the class prior, the output layer's own gradient collapses and the ratio rises although
the first layer still learns nothing (its absolute norm in ``grad_report.csv`` shows it).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlexp.config import config_base_dir, load_mapping, validate_mapping
from dlexp.errors import ArgumentError, DlexpError
from dlexp.names import safe_name
from dlexp.report.gradients import (
    FIXES,
    LAYER_COLUMNS,
    VERDICTS,
    RunReport,
    Thresholds,
    bound_log10,
    grad_report,
    thresholds_dict,
)
from dlexp.rundir import create_unique_dir, json_safe, write_json_atomic, write_text_atomic
from dlexp.sweep.grid import Axis, SweepPlan, plan_runs

POINT_COLUMNS = ["activation", "init", "batchnorm", "depth", "seed"]
LAYERS_CSV = "grad_report.csv"
MATRIX_CSV = "grad_matrix.csv"
GRID_JSON = "grid.json"
MATRIX_COLUMNS = ["column", "activation", "init", "batchnorm", "depth", "runs", "measured", "diverged",
                  "log10_ratio_first_mean", "log10_ratio_first_std", "log10_ratio_last_mean",
                  "log10_ratio_last_std", "bound_log10"]


@dataclass
class GridAxes:
    activations: list[str]
    depths: list[int]
    inits: list[str] | None = None  # None: the base config's
    batchnorm: list[bool] | None = None
    seeds: int = 3
    steps: int = 100


@dataclass
class GridPlan:
    config_path: Path
    base: dict[str, Any]  # the base mapping, --set applied
    axes: GridAxes
    points: list[dict[str, Any]]  # per run: POINT_COLUMNS + name
    sweep: SweepPlan  # the same runs, as the runner takes them
    columns: list[tuple[str, str, bool]] = field(default_factory=list)  # (activation, init, batchnorm)


# -- parsing of the axis options --------------------------------------------------------------


def split_list(text: str, option: str) -> list[str]:
    items = [part.strip() for part in str(text).split(",")]
    if not items or any(not item for item in items):
        raise DlexpError(f"{option} {text!r}: expected a comma-separated list, e.g. {option} a,b")
    if len(set(items)) != len(items):
        raise DlexpError(f"{option} {text!r}: a value is repeated")
    return items


def parse_depths(text: str) -> list[int]:
    depths = []
    for item in split_list(text, "--depths"):
        if not re.fullmatch(r"\d+", item) or not 1 <= int(item) <= 1000:
            raise ArgumentError("depths", repr(text), f"{item!r} is not a depth; give hidden-layer counts in "
                                "[1, 1000], e.g. 2,4,8,16")
        depths.append(int(item))
    return depths


_SWITCH = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False,
           "1": True, "0": False}


def parse_batchnorm(text: str) -> list[bool]:
    values = []
    for item in split_list(text, "--batchnorm"):
        if item.lower() not in _SWITCH:
            raise ArgumentError("batchnorm", repr(text), f"{item!r} is not a setting (accepted: off, on)")
        values.append(_SWITCH[item.lower()])
    if len(set(values)) != len(values):
        raise ArgumentError("batchnorm", repr(text), "a setting is repeated")
    return values


# -- the plan ---------------------------------------------------------------------------------


def _name_of(spec: Any) -> str:
    return str(spec.get("name")) if isinstance(spec, dict) else str(spec)


def shorten(mapping: dict[str, Any], steps: int) -> None:
    """Apply the ``--steps`` overrides documented in the module docstring, in place."""
    if steps <= 0:
        return
    training = mapping.setdefault("training", {})
    training.update(epochs=steps, batch_size="full", early_stopping=None, checkpoint_every=0)
    mapping.setdefault("logging", {})["grad_every"] = 1


def grid_base(base: dict[str, Any], steps: int) -> dict[str, Any]:
    """The mapping every grid point starts from: ``model.hidden`` dropped (its first width becomes
    ``model.width`` unless the config sets one), and the ``--steps`` overrides."""
    data = copy.deepcopy(base)
    model = data.setdefault("model", {})
    if not isinstance(model, dict):
        raise DlexpError("model: must be a mapping to run a grid over it")
    hidden = model.pop("hidden", None)
    if "width" not in model and isinstance(hidden, list) and hidden:
        model["width"] = hidden[0]
    shorten(data, steps)
    return data


def _switch(on: bool) -> str:
    return "on" if on else "off"


def build_plan(config_path: Path, sets: list[str], axes: GridAxes) -> GridPlan:
    """Every grid point's config, validated (a ConfigError names the point) before anything runs;
    the first point's data loaded and model built.

    The runs form a :class:`~dlexp.sweep.grid.SweepPlan` with the preset axes depth × activation ×
    init × BatchNorm (in that order: depth varies slowest) and the seeds base seed + k.
    """
    config_path = Path(config_path)
    shown = str(config_path)
    base = load_mapping(config_path, sets)
    validate_mapping(base, shown)
    model = base.get("model") or {}
    inits = axes.inits or [_name_of(model.get("init", "xavier_uniform"))]
    batchnorm = axes.batchnorm if axes.batchnorm is not None else [bool(model.get("batchnorm", False))]
    base_name = str(base.get("name") or safe_name(config_path.stem, default="grid"))
    base_seed = int(base.get("seed", 0) or 0)
    preset = [Axis("model.depth", [str(d) for d in axes.depths], list(axes.depths), "depth"),
              Axis("model.activation", list(axes.activations), list(axes.activations), "activation"),
              Axis("model.init", list(inits), list(inits), "init"),
              Axis("model.batchnorm", [_switch(b) for b in batchnorm], list(batchnorm), "batchnorm")]

    def point_of(point, seed: int) -> dict[str, Any]:
        depth, activation, init, bn = (axis.values[axis.texts.index(point.settings[axis.key])] for axis in preset)
        return {"activation": activation, "init": init, "batchnorm": bn, "depth": depth, "seed": seed}

    def run_name(point, seed: int) -> str:
        p = point_of(point, seed)
        return f"{base_name[:40]}-{p['activation']}-d{p['depth']}-{p['init']}-bn{_switch(p['batchnorm'])}-s{seed}"[:100]

    seeds = [base_seed + k for k in range(axes.seeds)]
    runs = plan_runs(grid_base(base, axes.steps), preset, seeds, shown=shown, base_dir=config_base_dir(config_path),
                     run_name=run_name, kind="grad-report", name=base_name, config_path=config_path, sets=sets,
                     check_data="first")
    points = [{**point_of(runs.points[run.point], run.seed), "name": run.config["name"]} for run in runs.runs]
    columns = [(a, i, b) for a in axes.activations for i in inits for b in batchnorm]
    return GridPlan(config_path=config_path, base=base, axes=axes, points=points, sweep=runs, columns=columns)


def make_folder(runs_dir: Path, out: Path | None) -> Path:
    """The report folder: ``out`` (new or empty), else a fresh ``RUNS_DIR/grad-report-<time>[-k]``."""
    if out is not None:
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ArgumentError("out", out, "exists and is not an empty folder; choose a new folder")
        out.mkdir(parents=True, exist_ok=True)
        return out
    return create_unique_dir(runs_dir, "grad-report")


def run_plan(plan: GridPlan, folder: Path, executor=None, *, jobs: int = 1,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train every point into ``folder/runs`` (on ``executor``, else ``jobs`` processes); results in plan order."""
    from dlexp.sweep.runner import run_plan as run_many

    return run_many(plan.sweep, folder / "runs", executor, jobs=jobs, on_result=on_result)


# -- reading the runs back --------------------------------------------------------------------


@dataclass
class GridOutcome:
    folder: Path
    layers: pd.DataFrame  # one row per configuration, seed and layer
    matrix: pd.DataFrame  # one row per configuration and depth (MATRIX_COLUMNS)
    runs: list[dict[str, Any]]  # per run: point, run_dir, status, verdict, error
    reports: list[RunReport] = field(default_factory=list)  # the runs that could be read back


def column_label(plan: GridPlan, activation: str, init: str, batchnorm: bool) -> str:
    """The matrix column's name: the activation, plus init / BatchNorm when the grid varies them."""
    label = activation
    if len({c[1] for c in plan.columns}) > 1:
        label += f" {init}"
    if len({c[2] for c in plan.columns}) > 1:
        label += " +BN" if batchnorm else " no BN"
    return label


def axes_label(plan: GridPlan) -> str:
    """The heatmap's x label: the axes the columns vary, then the settings every column shares."""
    varied, fixed = ["activation"], []
    for index, name, shown in ((1, "init", lambda v: f"init {v}"),
                               (2, "BatchNorm", lambda v: "BatchNorm on" if v else "no BatchNorm")):
        values = sorted({c[index] for c in plan.columns})
        if len(values) > 1:
            varied.append(name)
        elif values:
            fixed.append(shown(values[0]))
    if len(varied) == 1 and len({c[0] for c in plan.columns}) == 1:
        varied = []
    text = "configuration: " + (" × ".join(varied) if varied else "one")
    return text + (f" (all: {', '.join(fixed)})" if fixed else "")


def collect(plan: GridPlan, results: list[dict[str, Any]], folder: Path, th: Thresholds) -> GridOutcome:
    """Read every finished run directory back and build the layer table and the matrix."""
    rows, runs, reports = [], [], []
    for point, result in zip(plan.points, results):
        entry = {**{k: point[k] for k in POINT_COLUMNS}, "run_dir": result.get("run_dir"),
                 "status": result.get("status"), "verdict": None, "error": result.get("error")}
        if result.get("run_dir"):
            try:
                report = grad_report(result["run_dir"], th, label=point["name"])
            except DlexpError as exc:
                entry["error"] = str(exc)
            else:
                reports.append(report)
                entry["status"] = report.status
                entry["verdict"] = report.verdict
                for layer in report.records():
                    layer["flags"] = ";".join(layer["flags"])
                    layer["layer_activation"] = layer.pop("activation")  # the output layer's differs
                    rows.append({**{k: point[k] for k in POINT_COLUMNS}, "run_dir": result["run_dir"],
                                 "status": report.status, **layer})
        runs.append(entry)
    layer_columns = [c if c != "activation" else "layer_activation" for c in LAYER_COLUMNS]
    layers = pd.DataFrame(rows, columns=[*POINT_COLUMNS, "run_dir", "status", *layer_columns])
    matrix = _matrix(plan, layers, runs)
    return GridOutcome(folder=folder, layers=layers, matrix=matrix, runs=runs, reports=reports)


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    mean = float(np.mean(values)) if len(values) else math.nan
    return mean, float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def _matrix(plan: GridPlan, layers: pd.DataFrame, runs: list[dict[str, Any]]) -> pd.DataFrame:
    first_layers = layers[layers["layer"] == 0]
    out = []
    for depth in plan.axes.depths:
        for activation, init, bn in plan.columns:
            same = [r for r in runs if (r["activation"], r["init"], r["batchnorm"], r["depth"]) ==
                    (activation, init, bn, depth)]
            sel = first_layers[(first_layers["activation"] == activation) & (first_layers["init"] == init)
                               & (first_layers["batchnorm"] == bn) & (first_layers["depth"] == depth)]
            with np.errstate(divide="ignore", invalid="ignore"):
                first = np.log10(sel["ratio_to_output_first_epoch"].to_numpy(dtype=float))
            last = sel["log10_ratio"].to_numpy(dtype=float)
            first_mean, first_std = _mean_std(first)
            last_mean, last_std = _mean_std(last)
            out.append({
                "column": column_label(plan, activation, init, bn), "activation": activation, "init": init,
                "batchnorm": bn, "depth": depth, "runs": len(same), "measured": int(np.isfinite(last).sum()),
                "diverged": sum(r["status"] == "diverged" for r in same),
                "log10_ratio_first_mean": first_mean, "log10_ratio_first_std": first_std,
                "log10_ratio_last_mean": last_mean, "log10_ratio_last_std": last_std,
                "bound_log10": bound_log10(activation, depth),
            })
    return pd.DataFrame(out, columns=MATRIX_COLUMNS)


def diagnosis(outcome: GridOutcome, th: Thresholds, epoch: str) -> list[str]:
    """What crosses the thresholds in the matrix, what usually fixes it, and the runs' own verdicts."""
    column = f"log10_ratio_{epoch}_mean"
    matrix = outcome.matrix
    low, high = math.log10(th.vanish_below), math.log10(th.explode_above)
    lines = []
    crossing = (("vanishing", matrix[matrix[column] < low]), ("exploding", matrix[matrix[column] > high]))
    for verdict, selected in crossing:
        if not len(selected):
            continue
        parts = []
        for label, cells in selected.groupby("column", sort=False):
            depths = ", ".join(f"{int(r['depth'])} (10^{r[column]:.1f}, bound 10^{r['bound_log10']:.1f})"
                               for _, r in cells.iterrows())
            parts.append(f"{label} at depth {depths}")
        lines.append(f"{verdict} ({epoch} epoch): {'; '.join(parts)}. Usually fixed by: {FIXES[verdict]}.")
    if not lines:
        lines.append(f"no configuration's mean ratio crosses 10^{low:.0f} or 10^{high:.0f} ({epoch} epoch).")
    counts = ", ".join(f"{n} {v}" for v in VERDICTS if (n := sum(r["verdict"] == v for r in outcome.runs)))
    missing = sum(1 for r in outcome.runs if not r["verdict"])
    lines.append(f"runs' own verdicts (worst layer, last epoch): {counts or 'none'}"
                 + (f"; {missing} without a report (see failed: below)" if missing else ""))
    return lines


def write_outcome(plan: GridPlan, outcome: GridOutcome, th: Thresholds, command: list[str]) -> None:
    """grad_report.csv, grad_matrix.csv and grid.json in the report folder."""
    folder = outcome.folder
    write_text_atomic(folder / LAYERS_CSV, outcome.layers.to_csv(index=False, float_format="%.17g"))
    write_text_atomic(folder / MATRIX_CSV, outcome.matrix.to_csv(index=False, float_format="%.17g"))
    write_json_atomic(folder / GRID_JSON, json_safe(grid_document(plan, outcome, th, command)))


def report_grid(plan: GridPlan, results: list[dict[str, Any]], folder: Path, th: Thresholds, command: list[str],
                epoch: str) -> GridOutcome:
    """Read the finished runs back and write the report folder's files and figures."""
    outcome = collect(plan, results, folder, th)
    write_outcome(plan, outcome, th, command)
    write_figures(plan, outcome, th, epoch)
    return outcome


def grid_document(plan: GridPlan, outcome: GridOutcome, th: Thresholds, command: list[str]) -> dict[str, Any]:
    axes = plan.axes
    return {
        "command": command,
        "config": str(plan.config_path),
        "axes": {"activations": axes.activations, "depths": axes.depths,
                 "inits": sorted({c[1] for c in plan.columns}),
                 "batchnorm": sorted({c[2] for c in plan.columns}),
                 "seeds": [int(plan.base.get("seed", 0) or 0) + k for k in range(axes.seeds)],
                 "steps": axes.steps},
        "thresholds": thresholds_dict(th),
        "folder": str(outcome.folder),
        "matrix": outcome.matrix.to_dict("records"),
        "runs": outcome.runs,
    }


def steps_text(steps: int) -> str:
    return f"{steps} full-batch steps" if steps else "the config's own training"


def write_figures(plan: GridPlan, outcome: GridOutcome, th: Thresholds, epoch: str) -> list[Path]:
    """heatmap.png (depth × configuration) and grad_vs_layer.png (a panel per configuration)."""
    from dlexp.report import figures

    seeds = plan.axes.seeds
    title = f"{plan.config_path.name}: {steps_text(plan.axes.steps)}, {seeds} seed{'s' if seeds > 1 else ''}"
    columns = [(a, i, b, column_label(plan, a, i, b)) for a, i, b in plan.columns]
    return [
        figures.plot_grid_heatmap(outcome.matrix, outcome.folder / "heatmap.png", th.vanish_below, epoch,
                                  f"First-layer gradient relative to the output layer — {title}",
                                  xlabel=axes_label(plan)),
        figures.plot_grad_vs_layer(outcome.layers, columns, outcome.folder / "grad_vs_layer.png", epoch,
                                   f"Gradient norm vs layer, mean over seeds — {title}"),
    ]
