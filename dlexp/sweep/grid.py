"""A sweep plan: the cartesian grid of dotted-key overrides × seeds, every run validated up front.

``parse_axis("training.optimizer.lr=0.1,0.01")`` reads one ``--grid``; :func:`build_plan` applies
``--set`` overrides and each grid point to the config mapping and validates every run's config,
then prepares (loads the data, builds the model, checks loss/task agreement for) every grid point
once, all before anything is written — so bad input fails with one line and leaves no trace.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dlexp.config import apply_override, config_base_dir, parse_override, read_yaml_mapping, validate_mapping
from dlexp.errors import ConfigError
from dlexp.names import safe_name
from dlexp.sweep.runner import RunSpec

MAX_RUNS = 10_000
RESERVED_KEYS = {"seed": "use --seeds N (seeds count up from the config's seed)",
                 "name": "each run is named after the sweep, its grid point and its seed"}
_OPEN, _CLOSE = "[{(", "]})"


@dataclass
class Axis:
    """One swept key and its values, in the order given."""

    key: str  # dotted, e.g. "training.optimizer.lr"
    texts: list[str]  # the values as typed (labels, sweep.csv)
    values: list[Any]  # the values as parsed (YAML), applied to the config
    title: str = ""  # short column title in tables

    def __post_init__(self) -> None:
        self.title = self.title or self.key.split(".")[-1]


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


@dataclass
class SweepPlan:
    kind: str  # "sweep" or "compare-optimizers"
    name: str
    config_path: Path
    base_dir: Path
    axes: list[Axis]
    points: list[GridPoint]
    seeds: list[int]
    runs: list[PlannedRun]
    sets: list[str] = field(default_factory=list)  # --set overrides applied to every run
    extra: dict[str, Any] = field(default_factory=dict)  # more facts for sweep.json (e.g. the lr tuning)

    def specs(self, runs_dir: Path) -> list[RunSpec]:
        runs_dir = str(Path(runs_dir).resolve())
        return [RunSpec(config=run.config, base_dir=str(self.base_dir), shown=run.shown, runs_dir=runs_dir,
                        point={"point": run.point, "seed": run.seed, **self.points[run.point].settings},
                        index=run.index)
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


def parse_value(text: str) -> Any:
    """A grid value, read as YAML like ``--set`` values are (``0.1`` -> 0.1, ``full`` -> "full")."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value):
        return float(value)  # YAML 1.1 reads 1e-3 as a string
    return value


def parse_axis(text: str, option: str = "--grid") -> Axis:
    """``"KEY=V1,V2,..."`` -> :class:`Axis`. Raises ConfigError naming the option and the text."""
    shown = f"{option} {text!r}"
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{shown}: expected KEY=V1,V2,..., e.g. --grid training.optimizer.lr=0.1,0.01")
    if any(not part for part in key.split(".")) or re.search(r"\s", key):
        raise ConfigError(f"{shown}: malformed key {key!r}; expected a dotted path such as "
                          "training.batch_size")
    if key in RESERVED_KEYS:
        raise ConfigError(f"{shown}: '{key}' cannot be swept; {RESERVED_KEYS[key]}")
    texts = split_values(rest, shown)
    duplicates = sorted({t for t in texts if texts.count(t) > 1})
    if duplicates:
        raise ConfigError(f"{shown}: value {duplicates[0]!r} is listed twice")
    return Axis(key=key, texts=texts, values=[parse_value(t) for t in texts])


def unique_titles(axes: list[Axis]) -> None:
    """Short titles (last key part) unless two axes share one; then the full dotted key."""
    for axis in axes:
        if sum(a.title == axis.title for a in axes) > 1:
            for other in axes:
                if other.title == axis.title:
                    other.title = other.key


def _apply(data: dict[str, Any], key: str, value: Any, option: str) -> None:
    try:
        apply_override(data, key.split("."), copy.deepcopy(value), f"{key}={value}")
    except ConfigError as exc:  # apply_override speaks of --set; say which option it was
        raise ConfigError(str(exc).replace("--set ", f"{option} ", 1)) from None


def read_config_with_sets(config_path: Path, sets: list[str] = ()) -> dict[str, Any]:
    """The config file as a mapping with the ``--set`` overrides applied (not validated)."""
    data = read_yaml_mapping(Path(config_path), str(config_path))
    for text in sets:
        parts, value = parse_override(text)
        apply_override(data, parts, value, text)
    return data


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
        raise ConfigError(f"--seeds {seeds}: must be at least 1")
    keys = [a.key for a in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise ConfigError(f"--grid {key}: swept twice; give all its values in one --grid {key}=V1,V2,...")
    n_points = math.prod(len(a.values) for a in axes)
    if n_points * seeds > MAX_RUNS:
        raise ConfigError(f"the grid has {n_points:,} points × {seeds} seeds = {n_points * seeds:,} runs; "
                          f"at most {MAX_RUNS:,} runs per sweep")
    data = read_config_with_sets(config_path, sets)
    base_seed = data.get("seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool):
        validate_mapping(data, shown)  # says what is wrong with the seed
        raise ConfigError(f"{shown}: seed: must be an integer (got {base_seed!r})")
    base_name = safe_name(data.get("name") or config_path.stem, limit=60, default="sweep")
    base_dir = config_base_dir(config_path)
    unique_titles(axes)

    from dlexp.experiment import prepare

    points: list[GridPoint] = []
    runs: list[PlannedRun] = []
    seed_list = [base_seed + seed_offset + s for s in range(seeds)]
    for k, combo in enumerate(itertools.product(*[list(zip(a.texts, a.values)) for a in axes])):
        point = GridPoint(index=k, settings={a.key: text for a, (text, _) in zip(axes, combo)})
        for a, (text, _) in zip(axes, combo):
            point.notes.update((notes or {}).get((a.key, text), {}))
        mapping = copy.deepcopy(data)
        for a, (_, value) in zip(axes, combo):
            _apply(mapping, a.key, value, "--grid")
        where = f"{shown} [{point.label}]" if axes else shown
        first = None
        for seed in seed_list:
            run_config = dict(mapping, seed=seed, name=f"{base_name}-p{k}-s{seed}")
            cfg = validate_mapping(run_config, where)
            if first is None:
                first = cfg
            runs.append(PlannedRun(index=len(runs), point=k, seed=seed, config=run_config,
                                   shown=f"{where} seed {seed}"))
        prepared = prepare(first, base_dir, where)  # data, loss/task and model checks; nothing written
        point.task = prepared.dataset.task
        points.append(point)
    return SweepPlan(kind=kind, name=safe_name(name, limit=60, default="sweep") if name else base_name, config_path=config_path,
                     base_dir=base_dir, axes=axes, points=points, seeds=seed_list, runs=runs, sets=list(sets))

