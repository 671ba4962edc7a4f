"""lr-find: the learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks"; fastai's ``lr_find``), planned as a sweep.

Each run trains the config once under the ``range_test`` schedule (:class:`dlexp.optim.schedules.RangeTest`):
the lr grows exponentially from ``start_lr`` to ``end_lr`` over ``steps`` optimizer steps, and the run
stops early once the smoothed mini-batch loss exceeds ``stop_factor`` × its minimum. Every step's lr
and mini-batch loss are in the run's ``steps.csv``; the analysis reads them back from disk, smooths
them as the stop rule does, and applies two rules to the smoothed curve, as fastai does, with the
first 10 % of the steps and the last 5 left out (the start is flat, the end is the blow-up):

- ``minimum/10``: one decade below the lr of the lowest smoothed loss, which comes just before the
  loss starts to diverge (fastai's ``minimum``). This is the suggested lr;
- ``steep``: the lr where the smoothed loss falls fastest against log10 lr (fastai's ``steep``).

Several optimizers (``optimizers``) or seeds make a grid like compare-optimizers': for a given seed
every run starts from the same weights and sees the same batches. Each optimizer's suggestion can
seed a tuning grid (``lr_grid``: one decade either side, the ``--lr-grid OPT=LOW:HIGH:N`` form).
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlexp import rundir as rd
from dlexp.config import load_mapping
from dlexp.errors import ConfigError
from dlexp.optim.schedules import RangeTest, SmoothedLoss
from dlexp.sweep.grid import Axis, SweepPlan, build_plan
from dlexp.sweep.optimizers import LR_ARGUMENT, check_convention, optimizer_value, parse_optimizers

LR_FIND_JSON = "lr_find.json"
LR_FIND_PNG = "lr_find.png"
SKIP_START = 0.1  # share of the steps left out at the start (fastai: num_it // 10)
SKIP_END = 5  # steps left out at the end (fastai's skip_end)
GRID_DECADES = 1.0  # the seeded tuning grid: this many decades either side of the suggestion
GRID_POINTS = 5
RULES = {
    "suggested": "minimum/10",
    "minimum/10": "one decade below the lr of the lowest smoothed loss (fastai's minimum)",
    "steep": "the lr where the smoothed loss falls fastest against log10 lr (fastai's steep)",
    "window": f"smoothed loss (EMA, debiased), first {SKIP_START:.0%} of the steps and last {SKIP_END} left out",
}


@dataclass(frozen=True)
class RangeTestSettings:
    """The range test's knobs (fastai's defaults), checked by :meth:`check`."""

    start_lr: float = 1e-7
    end_lr: float = 10.0
    steps: int = 100
    stop_factor: float = 4.0
    smoothing: float = 0.98

    def schedule(self) -> dict[str, Any]:
        return {"name": RangeTest.name, "end_lr": self.end_lr, "steps": self.steps,
                "stop_factor": self.stop_factor, "smoothing": self.smoothing}

    def check(self) -> RangeTestSettings:
        for option, value in (("--start-lr", self.start_lr), ("--end-lr", self.end_lr)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{option} {value}: must be a finite number > 0")
        if self.end_lr <= self.start_lr:
            raise ConfigError(f"--end-lr {self.end_lr:g}: must be above --start-lr {self.start_lr:g}")
        options = {"steps": "--steps", "stop_factor": "--stop-factor", "smoothing": "--smoothing"}
        try:
            RangeTest(**{k: v for k, v in self.schedule().items() if k != "name"})
        except ValueError as exc:
            word = str(exc).split()[0]
            raise ConfigError(f"{options.get(word, word)}: {exc}") from None
        return self


def flow_yaml(value: Any) -> str:
    """``value`` as one line of YAML that reads back equal (floats keep a dot: 1.0e-07, not 1e-07)."""
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip().removesuffix("...").strip()


def _own_optimizer(data: dict[str, Any], start_lr: float) -> tuple[str, dict[str, Any]]:
    """The config's optimizer (its other hyperparameters kept) with its lr set to ``start_lr``."""
    training = data.get("training") if isinstance(data.get("training"), dict) else {}
    spec = training.get("optimizer", "adam")
    spec = dict(spec) if isinstance(spec, dict) else {"name": spec}
    spec[LR_ARGUMENT.get(spec.get("convention", "torch"), "lr")] = start_lr
    return str(spec.get("name")), spec


def build_lr_find_plan(config: Path, settings: RangeTestSettings, *, optimizers: str | None = None,
                       convention: str = "torch", sets: list[str] = (), seeds: int = 1,
                       name: str | None = None) -> SweepPlan:
    """One range test per optimizer (default: the config's own) and seed; validated, nothing written."""
    settings.check()
    if optimizers:
        check_convention(convention)
        names = parse_optimizers(optimizers, convention)
        values = [optimizer_value(n, settings.start_lr, convention) for n in names]
    else:
        own, spec = _own_optimizer(load_mapping(config, sets), settings.start_lr)
        names, values = [own], [spec]
    axis = Axis(key="training.optimizer", texts=names, values=values, title="optimizer")
    notes = {(axis.key, n): {"lr": settings.start_lr, "lr_source": "range start"} for n in names}
    fixed = [f"training.schedule={flow_yaml(settings.schedule())}",
             f"training.epochs={settings.steps}",  # an upper bound: the schedule's stop rule ends the run
             "training.early_stopping=null", "training.checkpoint_every=0",
             f"logging.grad_every={settings.steps}"]  # gradient rows on step 1 only
    return build_plan(config, [axis], sets=[*sets, *fixed], seeds=seeds, name=name, kind="lr-find", notes=notes)


# -- analysis (from the run directories on disk) ------------------------------------------------------


def read_steps(run_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(lr, mini-batch loss) of every step of a range-test run, from its ``steps.csv``."""
    path = Path(run_dir) / rd.STEPS
    if not path.exists():
        return np.empty(0), np.empty(0)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lrs = np.array([float(r["lr"]) for r in rows])
    losses = np.array([float(r["loss"]) if r["loss"] else math.nan for r in rows])
    return lrs, losses


def suggest(lrs: np.ndarray, losses: np.ndarray, smoothing: float = 0.98) -> dict[str, Any]:
    """The rules of the module docstring on one run's steps; the lrs are None when too few steps remain."""
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    n = len(losses) if finite.all() else int(np.argmin(finite))  # up to the first non-finite loss
    smooth = np.array(SmoothedLoss(smoothing).series(losses[:n]))
    lo, hi = int(n * SKIP_START), n - SKIP_END
    out: dict[str, Any] = {"steps": len(losses), "smoothed": smooth.tolist(), "window": [lo, hi],
                           "suggested_lr": None, "minimum_lr": None, "steep_lr": None, "min_loss": None}
    if hi - lo < 3:
        return out
    window_lr, window = lrs[lo:hi], smooth[lo:hi]
    i = int(np.argmin(window))
    slopes = np.diff(window) / np.diff(np.log10(window_lr))
    out.update(minimum_lr=float(window_lr[i]), suggested_lr=float(window_lr[i]) / 10.0,
               steep_lr=float(window_lr[int(np.argmin(slopes))]), min_loss=float(window[i]),
               min_at_edge=bool(i == len(window) - 1), min_at_start=bool(i == 0))
    return out


def _ending(status: str, steps: int, planned: int, last_lr: float | None, factor: float) -> tuple[str, str]:
    """How a range test ended: (``diverged`` | ``blew_up`` | ``end_lr`` | ``failed``, in words)."""
    at = f" at lr {last_lr:.3g}" if last_lr is not None else ""
    if status not in ("completed", "diverged"):
        return "failed", status
    if status == "diverged":
        return "diverged", f"diverged (a loss not finite, or past training.divergence){at}"
    if steps < planned:
        return "blew_up", f"smoothed loss above {factor:g}× its minimum{at}"
    return "end_lr", f"reached end_lr{at}"


def geometric_mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(values)))) if values else None


def lr_grid_text(name: str, lr: float) -> str:
    """``NAME=LOW:HIGH:N``, GRID_DECADES either side of ``lr`` (the ``--lr-grid`` form)."""
    scale = 10.0**GRID_DECADES
    return f"{name}={lr / scale:.3g}:{lr * scale:.3g}:{GRID_POINTS}"


def analyse(plan: SweepPlan, rows: list[dict[str, Any]], settings: RangeTestSettings) -> dict[str, Any]:
    """Per optimizer: each run's curve and suggestions, and the suggestion over seeds (geometric mean)."""
    per_point: list[dict[str, Any]] = []
    for point in plan.points:
        runs = []
        for row in rows:
            if row["point"] != point.index:
                continue
            lrs, losses = read_steps(row["run_dir"]) if row.get("run_dir") else (np.empty(0), np.empty(0))
            found = suggest(lrs, losses, settings.smoothing)
            kind, ended = _ending(row["status"], len(lrs), settings.steps, float(lrs[-1]) if len(lrs) else None,
                                  settings.stop_factor)
            runs.append({"seed": row["seed"], "status": row["status"], "run_dir": row.get("run_dir"),
                         "error": row.get("error"), "lr": lrs.tolist(), "loss": losses.tolist(), **found,
                         "end": kind, "ended": ended})
        usable = [r for r in runs if r["suggested_lr"] is not None]
        name = next(iter(point.settings.values()))
        suggested = geometric_mean([r["suggested_lr"] for r in usable])
        warnings = []
        if any(r.get("min_at_edge") and r["end"] == "end_lr" for r in usable):
            warnings.append("the loss never blew up and was lowest at the end: raise --end-lr")
        if any(r.get("min_at_start") for r in usable):
            warnings.append("the loss only rose: lower --start-lr")
        if len(usable) < len(runs):
            warnings.append(f"{len(runs) - len(usable)} of {len(runs)} runs gave no suggestion (failed, or "
                            f"fewer than {SKIP_END + 3} steps)")
        per_point.append({"optimizer": name, "runs": runs, "suggested_lr": suggested,
                          "suggested_range": [min(r["suggested_lr"] for r in usable),
                                              max(r["suggested_lr"] for r in usable)] if usable else None,
                          "steep_lr": geometric_mean([r["steep_lr"] for r in usable]),
                          "minimum_lr": geometric_mean([r["minimum_lr"] for r in usable]),
                          "lr_grid": lr_grid_text(name, suggested) if suggested else None,
                          "warnings": warnings})
    return {"rules": RULES, "settings": asdict(settings), "optimizers": per_point,
            "lr_grid": [p["lr_grid"] for p in per_point if p["lr_grid"]]}


def write_lr_find(sweep_dir: Path, analysis: dict[str, Any], title: str) -> dict[str, Any]:
    """``lr_find.json`` (without the per-step arrays, which stay in each run's steps.csv) and ``lr_find.png``."""
    from dlexp.sweep.lrplots import plot_range_test

    plot_range_test(Path(sweep_dir) / LR_FIND_PNG, analysis, title)
    slim = {**analysis, "files": {"plot": LR_FIND_PNG},
            "optimizers": [{**p, "runs": [{k: v for k, v in r.items() if k not in ("lr", "loss", "smoothed")}
                                          for r in p["runs"]]} for p in analysis["optimizers"]]}
    slim = rd.json_safe(slim)
    rd.write_json_atomic(Path(sweep_dir) / LR_FIND_JSON, slim)
    return slim
