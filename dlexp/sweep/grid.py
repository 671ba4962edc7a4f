"""The one plan of "run many configs": a base config × axes of overrides × seeds, every run validated up front.

A :class:`SweepPlan` lists every run's config mapping, its grid point and its seed; any executor of
:mod:`dlexp.sweep.runner` runs it (:func:`dlexp.sweep.runner.run_plan`). :func:`plan_runs` builds
one from a base mapping and :class:`Axis` es; every command that trains many configs goes through
it with its own preset axes:

- ``dlexp sweep``: the ``--grid`` axes (:func:`build_plan`);
- ``dlexp compare-optimizers``, ``--tune-lr`` and ``lr-find``: an optimizer axis first
  (:mod:`dlexp.sweep.optimizers`, :mod:`dlexp.sweep.tuning`, :mod:`dlexp.sweep.lrfind`);
- ``dlexp grad-report --config``: depth × activation × init × BatchNorm (:mod:`dlexp.report.grid`);
- the gallery: one axis of named variants, each a list of ``KEY=VALUE`` overrides
  (:meth:`dlexp.gallery.core.Context.train`).

``parse_axis("training.optimizer.lr=0.1,0.01")`` reads one ``--grid`` (values parsed by
:func:`dlexp.config.parse_value`, as ``--set`` values are). Every run's config is validated and,
by default, every grid point prepared (data loaded, model built, loss/task agreement checked)
before anything is written — so bad input fails with one line and leaves no trace.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlexp.config import (
    apply_override,
    config_base_dir,
    load_mapping,
    parameter_count,
    parse_key,
    parse_override,
    parse_value,
    validate_mapping,
)
from dlexp.errors import ArgumentError, ConfigError
from dlexp.names import safe_name
from dlexp.sweep.runner import RunSpec

MAX_RUNS = 10_000
RESERVED_KEYS = {"seed": "use --seeds N (seeds count up from the config's seed)",
                 "name": "each run is named after the sweep, its grid point and its seed"}
_OPEN, _CLOSE = "[{(", "]})"


@dataclass
class Axis:
    """One swept key and its values, in the order given.

    With ``overrides=True`` each value is a list of ``(dotted key, value)`` pairs set together
    (a named variant, e.g. the gallery's "He init" = ``model.init=he_normal``); ``key`` then only
    names the axis.
    """

    key: str  # dotted, e.g. "training.optimizer.lr"
    texts: list[str]  # the values as typed (labels, sweep.csv)
    values: list[Any]  # the values as parsed (YAML), applied to the config
    title: str = ""  # short column title in tables
    overrides: bool = False

    def __post_init__(self) -> None:
        self.title = self.title or self.key.split(".")[-1]

    @classmethod
    def of_variants(cls, key: str, variants: dict[str, Sequence[str]]) -> Axis:
        """An axis of named variants, each a list of ``KEY=VALUE`` strings (parsed as ``--set`` values)."""
        values = []
        for overrides in variants.values():
            pairs = []
            for text in overrides:
                parts, value = parse_override(text)
                pairs.append((".".join(parts), value, text))
            values.append(pairs)
        return cls(key=key, texts=list(variants), values=values, overrides=True)

    def apply(self, mapping: dict[str, Any], index: int, option: str = "--grid") -> None:
        """Set this axis's ``index``-th value in ``mapping``."""
        if not self.overrides:
            value = self.values[index]
            apply_override(mapping, self.key.split("."), copy.deepcopy(value), f"{self.key}={value}", option)
            return
        for key, value, text in self.values[index]:
            apply_override(mapping, key.split("."), copy.deepcopy(value), text)


@dataclass
class GridPoint:
    index: int
    settings: dict[str, str]  # key -> value as typed, in axis order
    notes: dict[str, Any] = field(default_factory=dict)  # facts for the table, e.g. {"lr": 0.001}
    task: str = "classification"  # classification | regression, found while validating

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={text}" for key, text in self.settings.items()) or "(config)"


@dataclass
class PlannedRun:
    index: int
    point: int
    seed: int
    config: dict[str, Any]
    shown: str
    cost: float = 0.0  # epochs × training rows × parameters (see run_cost)


@dataclass
class SweepPlan:
    kind: str  # "sweep" or "compare-optimizers"
    name: str
    config_path: Path | None
    base_dir: Path
    axes: list[Axis]
    points: list[GridPoint]
    seeds: list[int]
    runs: list[PlannedRun]
    sets: list[str] = field(default_factory=list)  # --set overrides applied to every run
    extra: dict[str, Any] = field(default_factory=dict)  # more facts for sweep.json (e.g. the lr tuning)

    def specs(self, runs_dir: Path) -> list[RunSpec]:
        """One :class:`RunSpec` per run, in plan order, each writing its run directory into ``runs_dir``."""
        runs_dir = str(runs_dir)
        return [RunSpec(config=run.config, base_dir=str(self.base_dir), shown=run.shown, runs_dir=runs_dir,
                        point={"point": run.point, "seed": run.seed, **self.points[run.point].settings},
                        index=run.index, cost=run.cost)
                for run in self.runs]

    @property
    def classification(self) -> bool:
        return any(p.task == "classification" for p in self.points)


def split_values(text: str, option: str) -> list[str]:
    """Split ``V1,V2,...`` at the commas outside brackets and quotes: ``[32,32],[64]`` is two values."""
    tokens, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                raise ConfigError(f"{option}: unbalanced {ch!r} at character {i + 1}")
        elif ch == "," and depth == 0:
            tokens.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ConfigError(f"{option}: unclosed {'quote' if quote else 'bracket'}")
    tokens.append(text[start:])
    tokens = [t.strip() for t in tokens]
    if any(not t for t in tokens):
        raise ConfigError(f"{option}: empty value in the list (values are separated by single commas)")
    return tokens


def parse_axis(text: str, option: str = "--grid") -> Axis:
    """``"KEY=V1,V2,..."`` -> :class:`Axis`. Raises ConfigError naming the option and the text."""
    shown = f"{option} {text!r}"
    key, sep, rest = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{shown}: expected KEY=V1,V2,..., e.g. --grid training.optimizer.lr=0.1,0.01")
    key = ".".join(parse_key(key, shown, example="training.batch_size"))
    if key in RESERVED_KEYS:
        raise ConfigError(f"{shown}: '{key}' cannot be swept; {RESERVED_KEYS[key]}")
    texts = split_values(rest, shown)
    duplicates = sorted({t for t in texts if texts.count(t) > 1})
    if duplicates:
        raise ConfigError(f"{shown}: value {duplicates[0]!r} is listed twice")
    return Axis(key=key, texts=texts, values=[parse_value(t, shown) for t in texts])


def unique_titles(axes: list[Axis]) -> None:
    """Short titles (last key part) unless two axes share one; then the full dotted key."""
    for axis in axes:
        if sum(a.title == axis.title for a in axes) > 1:
            for other in axes:
                if other.title == axis.title:
                    other.title = other.key


def run_cost(cfg, rows: int | None = None, sizes: list[int] | None = None) -> float:
    """A run's relative cost, to start the longest runs first: epochs × training rows × parameters.

    ``rows`` and ``sizes`` (layer widths) are the prepared data's where known; otherwise the config's
    sample count less the validation and test fractions, and :meth:`ExperimentConfig.least_layer_sizes`.
    Early stopping and per-step overheads are ignored: it orders runs, it does not time them.
    """
    if rows is None:
        data = cfg.data
        rows = data.n_samples * (1 - data.val_fraction - data.test_fraction) if data.source == "synthetic" else 1
    sizes = sizes or cfg.least_layer_sizes()
    return float(cfg.training.epochs) * float(rows) * float(parameter_count(sizes, cfg.model.batchnorm))


def plan_runs(base: dict[str, Any], axes: list[Axis], seeds: Sequence[int], *, shown: str, base_dir: Path,
              run_name: Callable[[GridPoint, int], str], kind: str = "sweep", name: str = "",
              config_path: Path | None = None, sets: Sequence[str] = (),
              notes: dict[tuple[str, str], dict[str, Any]] | None = None,
              finish: Callable[[dict[str, Any]], None] | None = None, check_data: str = "points") -> SweepPlan:
    """Every run of ``base`` × the product of ``axes`` × ``seeds``, validated; writes nothing.

    Runs are ordered by grid point (the first axis varies slowest), then seed. A run's config is
    ``base`` with its point's values applied, ``seed`` and ``name = run_name(point, seed)`` set, then
    ``finish(config)`` if given. ``notes`` maps (axis key, value text) to facts recorded on the grid
    points with that value. ``check_data``: ``"points"`` prepares every grid point (data, loss/task,
    model), ``"first"`` the first point only, ``"none"`` nothing beyond validation.
    Raises DlexpError (one line) on the first bad key, value, config or data.
    """
    from dlexp.prepare import prepare
    from dlexp.rundir.formatproc import start_values

    start_values(False)  # the environment's DLEXP_FORMAT_PROCESS, checked once here rather than failing every run
    points: list[GridPoint] = []
    runs: list[PlannedRun] = []
    data_shapes: dict[str, tuple[int, int, int]] = {}  # data config -> (training rows, inputs, outputs)
    for k, combo in enumerate(itertools.product(*[range(len(a.values)) for a in axes])):
        point = GridPoint(index=k, settings={a.key: a.texts[i] for a, i in zip(axes, combo)})
        for a, i in zip(axes, combo):
            point.notes.update((notes or {}).get((a.key, a.texts[i]), {}))
        mapping = copy.deepcopy(base)
        for a, i in zip(axes, combo):
            a.apply(mapping, i)
        where = f"{shown} [{point.label}]" if axes else shown
        first = None
        mine = []
        for seed in seeds:
            run_config = dict(mapping, seed=seed, name=run_name(point, seed))
            if finish is not None:  # it may edit nested sections: give it this run's own
                run_config = copy.deepcopy(run_config)
                finish(run_config)
            cfg = validate_mapping(run_config, where)
            if first is None:
                first = cfg
            mine.append(PlannedRun(index=len(runs) + len(mine), point=k, seed=seed, config=run_config,
                                   shown=f"{where} seed {seed}"))
        data_key = first.data.model_dump_json()
        if check_data == "points" or (check_data == "first" and k == 0):
            prepared = prepare(first, base_dir, where)  # data, loss/task and model checks; nothing written
            point.task = prepared.dataset.task
            data_shapes[data_key] = (len(prepared.dataset.X_train), prepared.dataset.X_train.shape[1],
                                     prepared.dataset.preprocessing.n_outputs)
        if data_key in data_shapes:  # a point not prepared costs as one with the same data that was
            rows, n_in, n_out = data_shapes[data_key]
            cost = run_cost(first, rows, [n_in, *first.model.hidden_sizes(), n_out])
        else:
            cost = run_cost(first)
        for run in mine:
            run.cost = cost
        runs.extend(mine)
        points.append(point)
    return SweepPlan(kind=kind, name=name, config_path=config_path, base_dir=base_dir, axes=axes, points=points,
                     seeds=list(seeds), runs=runs, sets=list(sets))


def build_plan(config_path: Path, axes: list[Axis], *, sets: list[str] = (), seeds: int = 1,
               name: str | None = None, kind: str = "sweep",
               notes: dict[tuple[str, str], dict[str, Any]] | None = None, seed_offset: int = 0) -> SweepPlan:
    """Validate every run of the grid and return the plan; writes nothing.

    ``notes`` maps (axis key, value text) to facts recorded on the grid points with that value.
    Seeds count up from the config's seed + ``seed_offset``.
    Raises DlexpError (one line) on the first bad key, value, config or data.
    """
    config_path = Path(config_path)
    shown = str(config_path)
    if seeds < 1:
        raise ArgumentError("seeds", seeds, "must be at least 1")
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--grid {key}: swept twice; give all its values in one --grid {key}=V1,V2,...")
    n_points = math.prod(len(a.values) for a in axes)
    if n_points * seeds > MAX_RUNS:
        raise ConfigError(f"the grid has {n_points:,} points × {seeds} seeds = {n_points * seeds:,} runs; "
                          f"at most {MAX_RUNS:,} runs per sweep")
    data = load_mapping(config_path, sets)
    base_seed = data.get("seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool):
        validate_mapping(data, shown)  # says what is wrong with the seed
        raise ConfigError(f"{shown}: seed: must be an integer (got {base_seed!r})")
    base_name = safe_name(data.get("name") or config_path.stem, limit=60, default="sweep")
    unique_titles(axes)
    return plan_runs(data, axes, [base_seed + seed_offset + s for s in range(seeds)], shown=shown,
                     base_dir=config_base_dir(config_path), run_name=lambda point, seed: f"{base_name}-p{point.index}-s{seed}",
                     kind=kind, name=safe_name(name, limit=60, default="sweep") if name else base_name, config_path=config_path, sets=sets,
                     notes=notes)

