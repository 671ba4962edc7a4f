"""Several runs side by side, read from disk: the sweep table's rows and the curves to overlay.

A finished sweep folder carries its own result (``sweep.json``, ``sweep.csv``): the comparison is
exactly the table ``dlexp sweep`` printed. Runs given one by one, or the runs of a sweep that is
still going (no ``sweep.json`` yet), are grouped here: runs whose resolved configs differ only in
``seed`` and ``name`` form one grid point, and the config keys that differ between points are its
axes. The statistics are those of :mod:`dlexp.sweep.aggregate` — mean and sample std over a point's
completed runs — so a grouped comparison reads like a sweep's.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlexp.report.rundata import RunData
from dlexp.sweep.aggregate import FINAL_METRICS, curve_stats, point_rows, sort_points
from dlexp.sweep.folder import SWEEP_CSV, SWEEP_JSON
from dlexp.sweep.grid import Axis, GridPoint

IGNORED_KEYS = {"seed", "name", "dlexp_version"}
MAX_AXES = 4  # more differing keys than this: one axis naming each run instead
_STAMP = re.compile(r"-\d{8}-\d{6}(-\d+)?$")


@dataclass
class ComparedPlan:
    """The parts of a :class:`~dlexp.sweep.grid.SweepPlan` that the sweep table reads."""

    kind: str
    name: str
    seeds: list[Any]
    axes: list[Axis]
    points: list[GridPoint]
    classification: bool


@dataclass
class Comparison:
    """What ``dlexp.cli.sweep.sweep_table`` renders, plus each point's runs for the overlaid curves."""

    plan: ComparedPlan
    rows: list[dict[str, Any]]
    points: list[dict[str, Any]]  # best first
    sorted_by: str
    target_loss: float | None
    source: str  # "sweep.json" or "grouped run directories"
    curves: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)  # label -> runs' epochs

    @property
    def not_averaged(self) -> int:
        """Runs neither completed nor counted in a status column (still running, or status unknown)."""
        return sum(row["status"] not in ("completed", "diverged", "failed", "interrupted", "cancelled")
                   for row in self.rows)


def strip_stamp(folder_name: str) -> str:
    """``lr-20261124-170000-2`` -> ``lr``: the name a run or sweep folder was created from."""
    return _STAMP.sub("", folder_name)


def history(run: RunData) -> list[dict[str, Any]]:
    """metrics.csv as the list of per-epoch dicts that the sweep aggregates read."""
    return run.metrics.to_dict("records")


def final_metrics(run: RunData) -> dict[str, Any]:
    """summary.json's final metrics, or the last epoch on disk for a run still going or killed."""
    final = run.summary.get("final")
    if isinstance(final, dict) and final:
        return final
    return history(run)[-1] if len(run.metrics) else {}


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def value_text(value: Any) -> str:
    """A config value as a table cell: scalars as YAML shows them, lists and mappings as JSON."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run_row(index: int, point: int, run: RunData) -> dict[str, Any]:
    summary = run.summary
    final = final_metrics(run)
    return {"run": index, "point": point, "seed": run.config.get("seed"), "status": run.status,
            **{m: final.get(m) for m in FINAL_METRICS}, **curve_stats(history(run), None),
            "wall_s": summary.get("wall_s"), "run_dir": str(run.path)}


def group_runs(runs: list[RunData], labels: list[str], kind: str = "runs", name: str = "") -> Comparison:
    """Group ``runs`` into grid points by their configs (see the module docstring)."""
    flat = [{k: v for k, v in flatten(run.config).items() if k not in IGNORED_KEYS} for run in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    differing = [k for k in keys if len({value_text(f.get(k)) for f in flat}) > 1]
    if len(differing) > MAX_AXES:
        axes = [Axis("run", list(dict.fromkeys(labels)), list(dict.fromkeys(labels)))]
        settings_of = [{"run": label} for label in labels]
    else:
        axes = [Axis(k, [], []) for k in differing]
        settings_of = [{k: value_text(f.get(k)) for k in differing} for f in flat]
    points: list[GridPoint] = []
    index_of: dict[tuple, int] = {}
    rows, results = [], []
    for i, (run, settings) in enumerate(zip(runs, settings_of)):
        key = tuple(settings.items())
        if key not in index_of:
            index_of[key] = len(points)
            points.append(GridPoint(index=len(points), settings=settings))
        rows.append(run_row(i, index_of[key], run))
        results.append({"history": history(run), "summary": run.summary})
    for axis in axes:
        if not axis.texts:
            axis.texts = list(dict.fromkeys(p.settings[axis.key] for p in points))
            axis.values = list(axis.texts)
    seeds = sorted({s for s in (run.config.get("seed") for run in runs) if isinstance(s, int)}) or ["?"]
    classification = any("train_acc" in run.metrics.columns for run in runs)
    plan = ComparedPlan(kind=kind, name=name or _common_name(runs), seeds=seeds, axes=axes, points=points,
                        classification=classification)
    aggregated, sorted_by = sort_points(point_rows(plan, rows, results), "val_loss")
    curves = {p.label: [history(run) for run, row in zip(runs, rows) if row["point"] == p.index]
              for p in points}
    return Comparison(plan=plan, rows=rows, points=aggregated, sorted_by=sorted_by, target_loss=None,
                      source="grouped run directories", curves=curves)


def _common_name(runs: list[RunData]) -> str:
    names = list(dict.fromkeys(run.name for run in runs))
    return names[0] if len(names) == 1 else f"{len(runs)} runs"


def read_sweep(folder: Path, runs: list[RunData]) -> Comparison | None:
    """A finished sweep's own comparison from ``sweep.json`` and ``sweep.csv``; None if they are not
    both readable (a sweep still going: group its runs instead)."""
    try:
        document = json.loads((folder / SWEEP_JSON).read_text(encoding="utf-8"))
        with open(folder / SWEEP_CSV, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        points = document["points"]
        axes = [Axis(a["key"], list(a["values"]), list(a["values"])) for a in document["axes"]]
        seeds = list(document["seeds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    by_folder = {run.path.name: run for run in runs}
    labels = {str(p["point"]): p["label"] for p in points}
    curves: dict[str, list[list[dict[str, Any]]]] = {p["label"]: [] for p in points}
    for row in rows:
        run = by_folder.get(Path(row.get("run_dir") or "").name)
        if run is not None and row.get("point") in labels:
            curves[labels[row["point"]]].append(history(run))
    classification = any(run.summary.get("task") == "classification" or "train_acc" in run.metrics.columns
                         for run in runs) or any(row.get("train_acc") for row in rows)
    plan = ComparedPlan(kind=str(document.get("kind", "sweep")), name=strip_stamp(folder.name), seeds=seeds,
                        axes=axes, points=[GridPoint(index=int(p["point"]), settings=p["settings"])
                                           for p in points], classification=classification)
    return Comparison(plan=plan, rows=rows, points=points, sorted_by=str(document.get("sorted_by", "grid")),
                      target_loss=document.get("target_loss"), source=SWEEP_JSON, curves=curves)
