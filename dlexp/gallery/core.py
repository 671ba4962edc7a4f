"""The gallery's building blocks: a claim, the result it measures, and the helpers every claim uses.

A :class:`Claim` pairs a sentence of the course notes with a ``measure(ctx)`` function that runs
real trainings (a plan of variants × seeds over ``configs/gallery/*.yaml`` plus ``--set``-style
overrides, run by :func:`dlexp.sweep.runner.run_plan`, the sweeps' runner), reduces them to tables, and decides a verdict by a rule written in
code next to its description. Statistics are over seeds ``0..S-1`` (each seed draws its own data
split, initial weights, batch order and dropout masks); ``±`` is the sample standard deviation
(``ddof=1``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.config import load_mapping
from dlexp.errors import DlexpError
from dlexp.names import safe_name
from dlexp.resources import examples_root

REPO = examples_root()  # the checkout, or the copy of configs/ and data/ bundled in the installed package
CONFIGS = REPO / "configs"
GALLERY_CONFIGS = CONFIGS / "gallery"

CONFIRMED, TRUE_BUT, REFUTED, ERROR = "confirmed", "true, but…", "refuted", "error"
VERDICTS = (CONFIRMED, TRUE_BUT, REFUTED)
# the papers gallery's verdicts: a paper's finding is reproduced at this scale, or in part, or not
REPRODUCED, IN_PART, NOT_REPRODUCED = "reproduced", "reproduced in part", "not reproduced"
PAPER_VERDICTS = (REPRODUCED, IN_PART, NOT_REPRODUCED)

FULL_SEEDS = 10
PAPER_SEEDS = 5  # the papers gallery's full mode: its deep networks cost more per run
QUICK_SEEDS = 3  # quick mode shrinks epochs and data, never the seeds below 3


class GalleryError(DlexpError):
    """A gallery run could not be carried out (a failed training, a missing config)."""


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class ClaimResult:
    """What one claim measured and concluded. Every number in the text comes from the runs."""

    verdict: str
    key_number: str  # a short phrase for the summary table
    finding: str  # markdown: what the numbers say, including the nuance
    rule: str  # the decision rule, in words, as the code applies it
    direction: str  # the qualitative finding quick mode asserts (the CI check)
    direction_ok: bool
    tables: list[Table] = field(default_factory=list)
    figure: str | None = None  # file name in the figures folder
    figure_caption: str = ""
    seeds: int = 0
    n_runs: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class Context:
    """What a claim's ``measure`` gets: the mode, the workers, and where to write."""

    claim_id: int
    quick: bool
    jobs: int
    runs_dir: Path  # this claim's run folders
    data_dir: Path  # datasets the gallery generates (shared by claims)
    figures_dir: Path
    n_runs: int = 0
    executor: Any = None  # an entered LocalExecutor or DaskExecutor; None: start `jobs` processes per call

    def seeds(self, full: int = FULL_SEEDS) -> list[int]:
        return list(range(QUICK_SEEDS if self.quick else max(full, QUICK_SEEDS)))

    def pick(self, full, quick):
        """``quick`` in quick mode, ``full`` otherwise."""
        return quick if self.quick else full

    def figure_path(self, name: str) -> Path:
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / name

    def train(self, config: str, variants: dict[str, Sequence[str]], seeds: Sequence[int],
              common: Sequence[str] = ()) -> dict[str, list[dict[str, Any]]]:
        """Train ``config`` once per (variant, seed); results by variant, in seed order.

        A plan of the one runner (:func:`dlexp.sweep.runner.run_plan`) with one preset axis, the
        variants. ``common`` and each variant's overrides are ``KEY=VALUE`` strings as for
        ``dlexp train --set``. Each result dict also carries the ``config`` mapping it ran (to
        rebuild its data later). A run that failed or was interrupted is a GalleryError.
        """
        from dlexp.sweep.runner import run_plan

        plan = gallery_plan(config, variants, seeds, common, claim_id=self.claim_id, data_dir=self.data_dir)
        results = run_plan(plan, self.runs_dir, self.executor, jobs=min(self.jobs, max(1, len(plan.runs))))
        self.n_runs += len(results)
        grouped: dict[str, list[dict[str, Any]]] = {label: [] for label in variants}
        for run, result in zip(plan.runs, results):
            if result["status"] not in ("completed", "diverged"):
                raise GalleryError(f"claim {self.claim_id}: run {run.config['name']} {result['status']}: "
                                   f"{result.get('error') or 'no error message'}")
            result["config"] = run.config
            grouped[plan.points[run.point].settings[VARIANT]].append(result)
        return grouped


@dataclass(frozen=True)
class Claim:
    id: int
    slug: str
    title: str
    notes: str  # the claim as the course notes put it
    configs: tuple[str, ...]  # file names under configs/gallery/ ("*" for all)
    commands: tuple[str, ...]  # the underlying commands a reader can run by hand
    measure: Callable[[Context], ClaimResult]
    how: str = ""  # one paragraph: the experiment, for a student
    paper: str = ""  # papers gallery: authors (year), "title" — empty for the course notes' claims

    @property
    def command(self) -> str:
        return f"dlexp gallery {'--papers ' if self.paper else ''}--only {self.id}"

    def run(self, quick: bool, jobs: int, runs_dir: Path, figures_dir: Path | None = None,
            executor: Any = None) -> ClaimResult:
        """Measure the claim; a training or analysis failure becomes a result with verdict ``error``.

        ``executor``: an entered executor its runs share (the gallery's); without one each batch
        of runs starts ``jobs`` local processes.
        """
        runs_dir = Path(runs_dir)
        ctx = Context(claim_id=self.id, quick=quick, jobs=jobs, runs_dir=runs_dir / f"claim-{self.id:02d}",
                      data_dir=runs_dir / "data", figures_dir=Path(figures_dir or runs_dir / "figures"),
                      executor=executor)
        started = time.perf_counter()
        try:
            result = self.measure(ctx)
        except Exception as exc:  # one broken claim must not hide the other eleven
            message = str(exc) if isinstance(exc, DlexpError) else f"{type(exc).__name__}: {exc}"
            result = ClaimResult(verdict=ERROR, key_number="—", rule="", error=message,
                                 finding=f"The claim could not be measured: {message}",
                                 direction="the claim runs to the end", direction_ok=False)
        result.seconds = time.perf_counter() - started
        result.n_runs = result.n_runs or ctx.n_runs
        return result


# -- configs -------------------------------------------------------------------------------------


def gallery_config_path(config: str) -> Path:
    """``configs/gallery/CONFIG``; GalleryError when it is missing."""
    path = GALLERY_CONFIGS / config
    if not path.exists():
        raise GalleryError(f"configs/gallery/{config}: not found in {GALLERY_CONFIGS} (an installed dlexp "
                           "carries it as dlexp/examples/; reinstall from a wheel or run from a checkout)")
    return path


VARIANT = "variant"


def gallery_plan(config: str, variants: dict[str, Sequence[str]], seeds: Sequence[int], common: Sequence[str] = (),
                 *, claim_id: int, data_dir: Path, run_name: Callable[[Any, int], str] | None = None):
    """The runs of :meth:`Context.train`: ``configs/gallery/CONFIG`` with ``common``, then one axis of
    variants × seeds; each run named ``c<claim>-<variant>-s<seed>`` (or ``run_name(point, seed)``),
    its generated data file written into ``data_dir``, its config validated (one line if bad)."""
    from dlexp.gallery.datasets import point_to_generated
    from dlexp.sweep.grid import Axis, plan_runs

    shown = f"configs/gallery/{config}"
    base = load_mapping(gallery_config_path(config), common, shown=shown)
    return plan_runs(base, [Axis.of_variants(VARIANT, variants)], [int(seed) for seed in seeds], shown=shown,
                     base_dir=GALLERY_CONFIGS,
                     run_name=run_name or (lambda point, seed: f"c{claim_id:02d}-{safe_name(point.settings[VARIANT], limit=60)}-s{seed}"),
                     kind="gallery", name=f"claim-{claim_id:02d}",
                     finish=lambda mapping: point_to_generated(mapping, data_dir), check_data="none")


def build_config(config: str, overrides: Sequence[str], *, seed: int, data_dir: Path,
                 name: str) -> dict[str, Any]:
    """One run's config mapping: the file, then overrides, seed and name; validated (one line if bad)."""
    plan = gallery_plan(config, {name: overrides}, [seed], claim_id=0, data_dir=data_dir,
                        run_name=lambda point, seed: name)
    return plan.runs[0].config


# -- statistics ----------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) by the sweep tables' rule
    (:func:`dlexp.sweep.aggregate.mean_std`): the std of a single value is NaN, undefined."""
    from dlexp.sweep.aggregate import mean_std as sweep_mean_std  # the sweep package loads its runner

    return sweep_mean_std(np.asarray(values, dtype=float).ravel().tolist())


def standard_error(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=float)
    return float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("inf")


def clearly_positive(values: Sequence[float]) -> bool:
    """True when the mean is more than two standard errors above zero (paired differences)."""
    mean = float(np.mean(values))
    return mean > 2.0 * standard_error(values)


def num(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, without scientific notation for ordinary sizes."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—" if value is None or math.isnan(value) else ("∞" if value > 0 else "−∞")
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3 or magnitude >= 6:
        return f"{value:.{digits - 1}e}".replace("-", "−")
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:.{decimals}f}".replace("-", "−")


def power10(exponent: float, decimals: int = 1) -> str:
    """``10^−5.9`` for markdown: a power of ten with a typographic minus."""
    return f"10<sup>{exponent:.{decimals}f}</sup>".replace("-", "−")


def signed(value: float, decimals: int = 3) -> str:
    return f"{value:+.{decimals}f}".replace("-", "−")


def pm(values: Sequence[float], digits: int = 3, decimals: int | None = None) -> str:
    """``mean ± std`` (sample std, ddof=1)."""
    mean, std = mean_std(values)
    if decimals is not None:
        spread = f"{std:.{decimals}f}" if math.isfinite(std) else num(std)
        return f"{mean:.{decimals}f} ± {spread}".replace("-", "−")
    return f"{num(mean, digits)} ± {num(std, 2)}"


def final(result: dict[str, Any], key: str) -> float:
    """A metric of the last epoch row (NaN if the run never logged it)."""
    history = result.get("history") or []
    value = history[-1].get(key) if history else None
    return float("nan") if value is None else float(value)


def curve(result: dict[str, Any], key: str) -> np.ndarray:
    return np.array([float("nan") if row.get(key) is None else float(row[key]) for row in result["history"]])


def first_epoch_reaching(result: dict[str, Any], key: str, target: float, below: bool = True) -> int | None:
    """The first epoch whose ``key`` is at or below (or above) ``target``; None if never."""
    for row in result["history"]:
        value = row.get(key)
        if value is not None and (value <= target if below else value >= target):
            return int(row["epoch"])
    return None


# -- figures -------------------------------------------------------------------------------------


def new_figure(width: float = 7.0, height: float = 4.2, ncols: int = 1):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def save_figure(fig, path: Path) -> str:
    fig.savefig(path, dpi=100)
    return path.name


def plain_log_axis(ax, axis: str = "y") -> None:
    """Log-scale tick labels as plain numbers (0.2, 0.3, 1), not 2×10⁻¹; minor ticks labelled at 2, 3, 5."""
    from matplotlib.ticker import FuncFormatter

    def label(value, _position, minor: bool = False):
        mantissa = round(value / 10 ** np.floor(np.log10(value)), 6) if value > 0 else 0
        return f"{value:g}" if not minor or mantissa in (2, 3, 5) else ""

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(label))
    target.set_minor_formatter(FuncFormatter(lambda v, p: label(v, p, minor=True)))


def label_axes(ax, xlabel: str, ylabel: str | None, title: str, **legend) -> None:
    """The finish every gallery figure shares: axis labels (no y label: None), title, legend
    (``legend``: its keyword arguments, e.g. ``loc``) and a light grid."""
    ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(**legend)
    ax.grid(alpha=0.3)


def band(ax, x, runs: np.ndarray, label: str, color=None, log: bool = False, ls: str = "-"):
    """Mean line with a ±1 std band over seeds (rows of ``runs``)."""
    runs = np.asarray(runs, dtype=float)
    mean = np.nanmean(runs, axis=0)
    std = np.nanstd(runs, axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    line, = ax.plot(x, mean, label=label, color=color, lw=1.8, ls=ls)
    low, high = mean - std, mean + std
    if log:
        low = np.maximum(low, mean / 10)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18, lw=0)
    return line
