"""From run results to the sweep's rows: one per run (sweep.csv), one per epoch (curves.csv), one per
grid point (the table).

Per grid point, every statistic is over the runs that *completed* (diverged, failed, interrupted
and cancelled runs are counted, not averaged): the mean, and the sample standard deviation
(ddof=1, NaN with a single run) across seeds.

Curve statistics use the validation loss, or the training loss when a run has no validation split
(column ``curve`` says which): ``best_epoch`` (first epoch of the lowest loss), ``best_loss``,
``loss_auc`` (area under the loss curve from epoch 0, trapezoid rule, in loss × epochs) and
``epochs_to_target`` (first epoch whose loss is ≤ the target; empty if never reached).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from dlexp.rundir import split_metric_columns
from dlexp.sweep.grid import SweepPlan

FINAL_METRICS = split_metric_columns("train", "val", classification=True)  # loss and accuracy
STATS = FINAL_METRICS + ["best_loss", "loss_auc", "epochs_to_target", "wall_s"]
STATUSES = ["completed", "diverged", "failed", "interrupted", "cancelled"]
RUN_COLUMNS_HEAD = ["run", "point", "seed"]
RUN_COLUMNS_TAIL = ["status", "optimizer", "lr", "epochs", "steps", *FINAL_METRICS, "curve", "best_epoch",
                    "best_loss", "loss_auc", "epochs_to_target", "wall_s", "run_dir", "error"]
CURVE_COLUMNS = ["run", "point", "label", "seed", "epoch", "step", *FINAL_METRICS]
# How each sort key orders: ascending (lower is better) unless listed here.
DESCENDING = {key for key in FINAL_METRICS if key.endswith("_acc")}
SORT_KEYS = [*split_metric_columns("val", "train", classification=True), "best_loss", "loss_auc",
             "epochs_to_target", "best_epoch", "wall_s", "grid"]


def run_columns(plan: SweepPlan) -> list[str]:
    return RUN_COLUMNS_HEAD + [a.key for a in plan.axes] + RUN_COLUMNS_TAIL


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) of the finite values; NaN where undefined."""
    vals = [float(v) for v in values if _finite(v)]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan
    mean = math.fsum(vals) / n
    if n == 1:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))


def curve_key(history: list[dict[str, Any]]) -> str:
    """``val_loss`` when the run has a validation split, else ``train_loss``."""
    return "val_loss" if any(_finite(row.get("val_loss")) for row in history) else "train_loss"


def curve_stats(history: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    """best_epoch, best_loss, loss_auc and epochs_to_target of one run's loss curve."""
    key = curve_key(history)
    points = [(row["epoch"], row.get(key)) for row in history]
    finite = [(e, v) for e, v in points if _finite(v)]
    out: dict[str, Any] = {"curve": key, "best_epoch": None, "best_loss": math.nan, "loss_auc": math.nan,
                           "epochs_to_target": None}
    if finite:
        best_epoch, best_loss = min(finite, key=lambda ev: ev[1])  # min keeps the first of ties
        out.update(best_epoch=best_epoch, best_loss=best_loss)
    if len(points) >= 2 and all(_finite(v) for _, v in points):
        out["loss_auc"] = math.fsum((v0 + v1) / 2 * (e1 - e0)
                                    for (e0, v0), (e1, v1) in itertools.pairwise(points))
    if target is not None:
        out["epochs_to_target"] = next((e for e, v in finite if v <= target), None)
    return out


def run_rows(plan: SweepPlan, results: list[dict[str, Any]],
             target: float | None = None) -> list[dict[str, Any]]:
    """One row per run, in run order (point-major, then seed)."""
    rows = []
    for run, result in zip(plan.runs, results):
        summary = result.get("summary") or {}
        final = summary.get("final") or {}
        row: dict[str, Any] = {"run": run.index, "point": run.point, "seed": run.seed,
                               **plan.points[run.point].settings, "status": result["status"],
                               "optimizer": summary.get("optimizer"), "lr": summary.get("lr"),
                               "epochs": summary.get("epochs"), "steps": summary.get("steps"),
                               **{m: final.get(m) for m in FINAL_METRICS},
                               **curve_stats(result.get("history") or [], target),
                               "wall_s": round(float(result.get("wall_s") or 0.0), 4),
                               "run_dir": result.get("run_dir"), "error": result.get("error")}
        rows.append(row)
    return rows


def curve_rows(plan: SweepPlan, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Long format: one row per (run, epoch), every run that recorded epochs (diverged ones too)."""
    rows = []
    for run, result in zip(plan.runs, results):
        label = plan.points[run.point].label
        for h in result.get("history") or []:
            rows.append({"run": run.index, "point": run.point, "label": label, "seed": run.seed,
                         "epoch": h.get("epoch"), "step": h.get("step"),
                         **{m: h.get(m) for m in FINAL_METRICS}})
    return rows


def mean_curve(histories: list[list[dict[str, Any]]], key: str) -> dict[int, float]:
    """Epoch -> mean of ``key`` over the runs that reached that epoch."""
    sums: dict[int, list[float]] = {}
    for history in histories:
        for row in history:
            if _finite(row.get(key)):
                sums.setdefault(row["epoch"], []).append(float(row[key]))
    return {e: math.fsum(v) / len(v) for e, v in sorted(sums.items())}


def point_rows(plan: SweepPlan, rows: list[dict[str, Any]],
               results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One aggregate per grid point, in grid order."""
    out = []
    for point in plan.points:
        mine = [(row, res) for row, res in zip(rows, results) if row["point"] == point.index]
        done = [(row, res) for row, res in mine if row["status"] == "completed"]
        counts = {s: sum(row["status"] == s for row, _ in mine) for s in STATUSES}
        mean, std = {}, {}
        for stat in STATS:
            mean[stat], std[stat] = mean_std([row.get(stat) for row, _ in done])
        histories = [res.get("history") or [] for _, res in done]
        key = curve_key([h for hist in histories for h in hist])
        curve = mean_curve(histories, key)
        lr = point.notes.get("lr", next((row["lr"] for row, _ in mine if row.get("lr") is not None), None))
        out.append({"point": point.index, "label": point.label, "settings": dict(point.settings),
                    **{k: v for k, v in point.notes.items() if k != "lr"}, "lr": lr,
                    "runs": len(mine), **counts, "mean": mean, "std": std,
                    "best_epoch": min(curve, key=curve.get) if curve else None,
                    "reached_target": sum(row.get("epochs_to_target") is not None for row, _ in done),
                    "summary": mean_summary([res.get("summary") or {} for _, res in done])})
    return out


def mean_summary(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """A summary-shaped dict whose numbers are means over ``summaries`` (for ``--check`` on a grid point)."""
    if not summaries:
        return {}
    out: dict[str, Any] = {}
    for key in {k for s in summaries for k in s}:
        values = [s.get(key) for s in summaries]
        if all(isinstance(v, dict) or v is None for v in values):
            nested = [v for v in values if isinstance(v, dict)]
            sub = {}
            for name in {n for v in nested for n in v}:
                if any(_finite(v.get(name)) for v in nested):
                    sub[name] = mean_std([v.get(name) for v in nested])[0]
            out[key] = sub
        elif any(_finite(v) for v in values):
            out[key] = mean_std(values)[0]
    return out


def sort_points(points: list[dict[str, Any]], key: str) -> tuple[list[dict[str, Any]], str]:
    """Points best first by ``mean[key]``; points without a value last, ties in grid order.

    Sorting by val_loss without any validation split falls back to train_loss. Returns the key used.
    """
    if key == "grid":
        return list(points), key
    if (key == "val_loss" and not any(_finite(p["mean"]["val_loss"]) for p in points)
            and any(_finite(p["mean"]["train_loss"]) for p in points)):
        key = "train_loss"
    sign = -1.0 if key in DESCENDING else 1.0

    def order(p):
        value = p.get(key) if key == "best_epoch" else p["mean"].get(key)
        return (0, sign * value, p["point"]) if _finite(value) else (1, 0.0, p["point"])

    return sorted(points, key=order), key
