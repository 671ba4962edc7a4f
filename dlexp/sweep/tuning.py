"""compare-optimizers --tune-lr: each optimizer at its own tuned learning rate, chosen fairly.

Two plans over the one sweep runner:

1. **Tuning.** Per optimizer, a log-spaced lr grid (default: :data:`DEFAULT_DECADES` decades either
   side of the optimizer's own default, :data:`DEFAULT_POINTS` points, so the default is the middle
   point), every point trained over the *tuning seeds* for the tuning budget. For a given seed every
   run draws the same data split, initial weights and batches. The chosen lr is the grid point with
   the lowest **mean final validation loss** over the tuning seeds; a point where any tuning run
   diverged or failed is not eligible (its mean is taken as +inf). Only the validation loss is read
   (:func:`tuning_records`); the test split never enters the choice.
2. **Evaluation.** The comparison proper, each optimizer at its chosen lr, over *evaluation seeds*
   that follow the tuning seeds (never the same seeds: the choice was made on those).

Per optimizer the tuning also reports the lrs whose mean is within one standard error of the best
(SE = sample std / √n over the best point's seeds; how flat the optimum is) and whether the best lr
is at an edge of the grid, where the true optimum may lie outside it.

``--lr-grid`` forms: ``LOW:HIGH:N`` (every optimizer) and ``OPT=LOW:HIGH:N`` (one optimizer), N
points spaced evenly in log lr from LOW to HIGH inclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlexp import rundir as rd
from dlexp.config import validate_mapping
from dlexp.errors import ArgumentError, ConfigError
from dlexp.optim import default_lr, optimizer_registry
from dlexp.sweep.aggregate import mean_std
from dlexp.sweep.grid import Axis, SweepPlan, build_plan
from dlexp.sweep.optimizers import optimizer_value

DEFAULT_DECADES = 2.0
DEFAULT_POINTS = 9
MAX_POINTS = 50
LR_TUNING_JSON = "lr_tuning.json"
LR_TUNING_CSV = "lr_tuning.csv"
LR_SENSITIVITY_PNG = "lr_sensitivity.png"
TUNING_CSV_COLUMNS = ["optimizer", "lr", "runs", "completed", "diverged", "failed", "mean_val_loss",
                      "std_val_loss", "se_val_loss", "eligible", "chosen", "within_1se"]


def log_grid(low: float, high: float, points: int) -> list[float]:
    """``points`` lrs evenly spaced in log10 from ``low`` to ``high`` inclusive."""
    if points == 1:
        return [float(low)]
    return [float(v) for v in np.logspace(math.log10(low), math.log10(high), points)]


def default_grid(name: str, convention: str) -> list[float]:
    """DEFAULT_POINTS lrs over DEFAULT_DECADES decades either side of the optimizer's default lr."""
    centre = default_lr(name, convention)
    scale = 10.0**DEFAULT_DECADES
    grid = log_grid(centre / scale, centre * scale, DEFAULT_POINTS)
    grid[DEFAULT_POINTS // 2] = centre  # exactly the default, not its logspace rounding
    return grid


def _parse_range(text: str, shown: str) -> list[float]:
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"{shown}: expected LOW:HIGH:N (e.g. 1e-4:1:9, N points log-spaced from LOW to HIGH)")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"{shown}: LOW and HIGH must be numbers (got {parts[0]!r}, {parts[1]!r})") from None
    try:
        points = int(parts[2])
    except ValueError:
        raise ConfigError(f"{shown}: N must be a whole number of grid points (got {parts[2]!r})") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low):
        raise ConfigError(f"{shown}: LOW and HIGH must be finite numbers > 0")
    if not 1 <= points <= MAX_POINTS:
        raise ConfigError(f"{shown}: N must be from 1 to {MAX_POINTS} (got {points})")
    if high < low or (high == low and points > 1):
        raise ConfigError(f"{shown}: HIGH must be above LOW (or equal with N = 1)")
    return log_grid(low, high, points)


def parse_lr_grids(texts: list[str], names: list[str], convention: str) -> dict[str, list[float]]:
    """Each optimizer's grid: its ``OPT=LOW:HIGH:N``, else the shared ``LOW:HIGH:N``, else the default."""
    registry = optimizer_registry(convention)
    shared: list[float] | None = None
    own: dict[str, list[float]] = {}
    for text in texts:
        shown = f"--lr-grid {text!r}"
        name, sep, rest = text.partition("=")
        if not sep:
            if shared is not None:
                raise ConfigError(f"{shown}: a grid for every optimizer is already given")
            shared = _parse_range(text.strip(), shown)
            continue
        try:
            name = registry.canonical(name.strip())
        except ValueError as exc:
            raise ConfigError(f"{shown}: {exc}") from None
        if name not in names:
            raise ConfigError(f"{shown}: '{name}' is not among the compared optimizers ({', '.join(names)}); "
                              "add it to --optimizers")
        if name in own:
            raise ConfigError(f"{shown}: a grid for '{name}' is already given")
        own[name] = _parse_range(rest.strip(), shown)
    return {n: own.get(n) or shared or default_grid(n, convention) for n in names}


def grid_text(name: str, lr: float) -> str:
    """The tuning axis' value text for one (optimizer, lr) point."""
    return f"{name} lr={lr:.4g}"


def tuning_axis(grids: dict[str, list[float]], convention: str) -> tuple[Axis, dict]:
    texts, values, notes = [], [], {}
    for name, lrs in grids.items():
        for lr in lrs:
            text = grid_text(name, lr)
            if text in texts:
                raise ConfigError(f"--lr-grid: {name}'s grid has two points that round to lr {lr:.4g}; use fewer "
                                  "points or a wider range")
            texts.append(text)
            values.append(optimizer_value(name, lr, convention))
            notes[("training.optimizer", text)] = {"lr": lr, "lr_source": "grid", "optimizer": name}
    return Axis(key="training.optimizer", texts=texts, values=values, title="optimizer, lr"), notes


def build_tuning_plan(config: Path, grids: dict[str, list[float]], convention: str, *, tune_seeds: int,
                      budget: int | None, sets: list[str] = (), name: str | None = None) -> SweepPlan:
    """Every (optimizer, lr) grid point × tuning seed, validated; refuses a config without a validation split."""
    if tune_seeds < 1:
        raise ArgumentError("tune_seeds", tune_seeds, "must be at least 1")
    axis, notes = tuning_axis(grids, convention)
    extra = [f"training.epochs={budget}"] if budget is not None else []
    plan = build_plan(config, [axis], sets=[*sets, *extra], seeds=tune_seeds, name=name,
                      kind="lr-tuning", notes=notes)
    cfg = validate_mapping(plan.runs[0].config, str(config))
    if cfg.data.val_fraction <= 0:
        raise ConfigError(f"{config}: data.val_fraction: --tune-lr chooses each lr on the validation loss, so it "
                          "needs a validation split (val_fraction > 0)")
    return plan


# -- the choice ---------------------------------------------------------------------------------------


def tuning_records(plan: SweepPlan, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per tuning run: optimizer, lr, seed, status and the final *validation* loss.

    The only values the choice reads. The test metrics in the runs' summaries are left behind here.
    """
    records = []
    for run, result in zip(plan.runs, results):
        notes = plan.points[run.point].notes
        final = (result.get("summary") or {}).get("final") or {}
        val = final.get("val_loss")
        records.append({"optimizer": notes["optimizer"], "lr": notes["lr"], "seed": run.seed,
                        "status": result["status"], "val_loss": float(val) if val is not None else math.nan})
    return records


@dataclass
class TuningChoice:
    optimizer: str
    grid: list[float]
    points: list[dict[str, Any]]  # per lr: runs, counts, mean/std/se of val loss, eligible
    lr: float | None  # None: no eligible grid point
    best_index: int | None
    within_1se: list[float] = field(default_factory=list)  # eligible lrs within one SE of the best mean
    edge: str | None = None  # "low" / "high": the best lr is the grid's first / last point

    @property
    def lr_range(self) -> tuple[float, float] | None:
        return (min(self.within_1se), max(self.within_1se)) if self.within_1se else None

    def as_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer, "grid": self.grid, "lr": self.lr, "edge": self.edge,
                "lr_range_1se": list(self.lr_range) if self.lr_range else None, "within_1se": self.within_1se,
                "points": self.points}


def choose_lr(optimizer: str, records: list[dict[str, Any]]) -> TuningChoice:
    """The lr of ``records`` (one optimizer's) with the lowest mean final validation loss over seeds.

    A grid point is eligible only if every one of its runs completed with a finite validation loss.
    Ties go to the smaller lr. Its standard error is std (ddof=1) / √n; with one seed it is NaN and
    the within-1-SE range holds the best lr alone.
    """
    grid = sorted({r["lr"] for r in records})
    points = []
    for lr in grid:
        mine = [r for r in records if r["lr"] == lr]
        values = [r["val_loss"] for r in mine]
        ok = all(r["status"] == "completed" and math.isfinite(r["val_loss"]) for r in mine)
        mean, std = mean_std(values)
        points.append({"lr": lr, "runs": len(mine), "completed": sum(r["status"] == "completed" for r in mine),
                       "diverged": sum(r["status"] == "diverged" for r in mine),
                       "failed": sum(r["status"] not in ("completed", "diverged") for r in mine),
                       "eligible": ok, "mean_val_loss": mean if ok else math.inf, "std_val_loss": std,
                       "se_val_loss": std / math.sqrt(len(values)) if ok else math.nan,
                       "val_losses": values})
    eligible = [k for k, p in enumerate(points) if p["eligible"]]
    if not eligible:
        return TuningChoice(optimizer, grid, points, None, None)
    best = min(eligible, key=lambda k: (points[k]["mean_val_loss"], k))
    bar = points[best]["mean_val_loss"] + (points[best]["se_val_loss"] if math.isfinite(points[best]["se_val_loss"])
                                           else 0.0)
    within = [points[k]["lr"] for k in eligible if points[k]["mean_val_loss"] <= bar]
    edge = None
    if len(grid) > 1 and best in (0, len(grid) - 1):
        edge = "low" if best == 0 else "high"
    for k, p in enumerate(points):
        p["chosen"], p["within_1se"] = k == best, p["lr"] in within
    return TuningChoice(optimizer, grid, points, grid[best], best, within, edge)


def choose_lrs(records: list[dict[str, Any]], names: list[str]) -> dict[str, TuningChoice]:
    return {n: choose_lr(n, [r for r in records if r["optimizer"] == n]) for n in names}


# -- evaluation and files -----------------------------------------------------------------------------


def evaluation_axis(choices: dict[str, TuningChoice], convention: str) -> tuple[Axis, dict]:
    """The compare-optimizers axis at the tuned lrs (optimizers with no eligible lr are left out)."""
    texts, values, notes = [], [], {}
    for name, choice in choices.items():
        if choice.lr is None:
            continue
        texts.append(name)
        values.append(optimizer_value(name, choice.lr, convention))
        notes[("training.optimizer", name)] = {"lr": choice.lr, "lr_source": "tuned", "convention": convention,
                                               "lr_range_1se": list(choice.lr_range), "lr_edge": choice.edge}
    return Axis(key="training.optimizer", texts=texts, values=values, title="optimizer"), notes


def tuning_document(plan: SweepPlan, choices: dict[str, TuningChoice], sweep_dir: Path,
                    budget_epochs: int) -> dict[str, Any]:
    return rd.json_safe({
        "tuning_dir": str(sweep_dir), "tune_seeds": plan.seeds, "budget_epochs": budget_epochs,
        "selection": "lowest mean final validation loss over the tuning seeds; points with a diverged or "
                     "failed run are not eligible; ties to the smaller lr; the test split is not used",
        "within_1se": "lrs whose mean is at most the best mean + its standard error (std / sqrt(n))",
        "optimizers": [c.as_dict() for c in choices.values()],
    })


def write_tuning(sweep_dir: Path, document: dict[str, Any], choices: dict[str, TuningChoice], title: str) -> None:
    """``lr_tuning.json``, ``lr_tuning.csv`` (one row per optimizer and lr) and ``lr_sensitivity.png``."""
    from dlexp.sweep.folder import write_csv
    from dlexp.sweep.lrplots import plot_lr_sensitivity

    rows = [{"optimizer": c.optimizer, **p} for c in choices.values() for p in c.points]
    write_csv(Path(sweep_dir) / LR_TUNING_CSV, TUNING_CSV_COLUMNS, rows)
    rd.write_json_atomic(Path(sweep_dir) / LR_TUNING_JSON, document)
    plot_lr_sensitivity(Path(sweep_dir) / LR_SENSITIVITY_PNG, choices, title)
