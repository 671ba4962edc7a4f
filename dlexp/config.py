"""The experiment config: a YAML file validated by pydantic v2.

``load_config(path, overrides)`` is the one way in. Every mistake becomes a :class:`ConfigError`
whose single line names the file, the dotted field path, what was wrong and what is accepted.
Components (activation, init, loss, optimizer, schedule) are validated against their registries,
so a typo gets a "did you mean".
"""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dlexp.errors import ConfigError, read_user_file, show_value
from dlexp.names import safe_name
from dlexp.registry import did_you_mean, normalize_spec
from dlexp.rundir import split_metric_columns

MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_NODES = 100_000
MAX_BATCH_SIZE = 10_000_000
MAX_PARAMETERS = 50_000_000  # a model above this is refused before any memory is used
MONITORS = tuple(split_metric_columns("val", "train", classification=True))  # early stopping's choices
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Spec = Union[str, dict[str, Any]]  # noqa: UP007 (a runtime alias: pydantic evaluates it on Python 3.10)


_SCIENTIFIC = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def scientific_to_float(value: Any) -> Any:
    """``"1e-3"`` -> 0.001. YAML 1.1 reads a number in e-notation without a dot as a string."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [scientific_to_float(item) for item in value]
    return value


def _takes_float(annotation: Any) -> bool:
    return annotation is float or float in getattr(annotation, "__args__", ())


class StrictModel(BaseModel):
    # strict: YAML already types its values, so `epochs: true` or `dropout: "0.5"` is a mistake, not
    # something to coerce; allow_inf_nan=False: `.nan` or `.inf` is refused in every float field.
    model_config = ConfigDict(extra="forbid", frozen=False, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _scientific_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        floats = {name for name, info in cls.model_fields.items() if _takes_float(info.annotation)}
        return {key: scientific_to_float(value) if key in floats else value for key, value in data.items()}


Column = Union[str, int]  # noqa: UP007 (a CSV column by name, or by position: 0 first, -1 last)

# CSV reading options: (field, default), refused with synthetic data unless left at the default
_CSV_ONLY = {"path": None, "target": None, "features": None, "exclude": None, "header": 0, "names": None,
             "skip_rows": 0, "delimiter": None, "comment": None, "encoding": "utf-8", "index_col": None}


class DataConfig(StrictModel):
    source: Literal["synthetic", "csv"] = "synthetic"
    kind: Literal["moons", "circles", "spirals", "blobs", "xor", "linear", "sine"] = "moons"
    n_samples: int = Field(1000, ge=4, le=5_000_000)
    n_features: int = Field(2, ge=1, le=100_000)
    n_classes: int = Field(2, ge=2, le=1000)
    noise: float = Field(0.1, ge=0, le=1e6)
    path: str | None = None
    target: Column | None = None
    features: list[Column] | None = None
    exclude: list[Column] | None = None
    header: int | Literal["none"] = 0
    names: list[str] | None = None
    skip_rows: int = Field(0, ge=0, le=1_000_000)
    delimiter: str | None = None
    comment: str | None = None
    encoding: str = "utf-8"
    index_col: Column | Literal[False] | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.0, ge=0, lt=1)
    standardize: bool = True
    standardize_target: bool = True

    @field_validator("header", mode="before")
    @classmethod
    def _header(cls, v: Any) -> Any:
        if v is None:
            return "none"
        if type(v) is int and not 0 <= v <= 1_000_000:
            raise ValueError(f"must be a row number from 0 or 'none' (got {v})")
        return v

    @field_validator("delimiter", "comment")
    @classmethod
    def _one_character(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v in '"\r\n'):
            raise ValueError(f"must be one character other than a quote or a newline (got {_short_repr(v)}); "
                             "e.g. ',', ';', '\\t' or '|'")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {_short_repr(v)}; e.g. utf-8, latin-1, cp1252") from None
        return v

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source == "csv":
            if not self.path:
                raise ValueError("path: required when source is 'csv'")
            if self.target is None or self.target == "":
                raise ValueError("target: required when source is 'csv' (a column name, or a position such as -1)")
            for key in ("features", "exclude"):
                chosen = getattr(self, key)
                if chosen is None:
                    continue
                if not chosen and key == "features":
                    raise ValueError("features: empty list; omit it to use every column but the target")
                repeated = next((f for i, f in enumerate(chosen) if f in chosen[:i]), None)
                if repeated is not None:
                    raise ValueError(f"{key}: column {repeated!r} is listed twice; list each column once")
            if self.features is not None and self.exclude is not None:
                raise ValueError("exclude: give either features (the columns to use) or exclude (the columns to "
                                 "leave out), not both")
            if self.names is not None and self.header != "none":
                raise ValueError("names: only read when header is 'none' (the file has no header line)")
        else:
            for key, default in _CSV_ONLY.items():
                if getattr(self, key) != default:
                    raise ValueError(f"{key}: only read when source is 'csv' (source is '{self.source}'); "
                                     "add 'source: csv' or remove it")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 (got {self.val_fraction} + {self.test_fraction})"
            )
        return self


_SPEC_EXAMPLES = {"activation": "leaky_relu", "init": "normal", "loss": "huber", "optimizer": "adam",
                  "schedule": "step"}


def _spec_shape(kind: str, value: Any, names: list[str]) -> None:
    """Refuse a spec that is neither a name nor a mapping with a name, listing the accepted names."""
    if not isinstance(value, (str, dict)):
        raise ValueError(f"must be a{'n' if kind[0] in 'aeiou' else ''} {kind} name or a mapping with a 'name' key "
                         f"(got {_short_repr(value)}; accepted names: {', '.join(names)})")
    if isinstance(value, dict) and "name" not in value:
        keys = _short_repr(sorted(map(str, value)))
        example = _SPEC_EXAMPLES.get(kind, names[0])
        raise ValueError(f"a mapping needs a 'name' key naming the {kind}, e.g. {{name: {example}, ...}} "
                         f"(got keys {keys}; accepted names: {', '.join(names)})")


def _spec_numbers(value: Any) -> Any:
    """A spec with e-notation strings among its arguments turned into numbers."""
    if isinstance(value, dict):
        return {key: item if key == "name" else scientific_to_float(item) for key, item in value.items()}
    return value


def _check_spec(registry_getter, kind: str, value: Any, **extra: Any) -> Any:
    registry = registry_getter()
    _spec_shape(kind, value, registry.names())
    value = _spec_numbers(value)
    name, kwargs = normalize_spec(value, kind)
    factory = registry.factory(name)  # raises ValueError: unknown name, did you mean, accepted
    missing = [p.name for p in inspect.signature(factory).parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in kwargs and p.name not in extra]
    if missing:
        raise ValueError(f"{kind} '{name}' needs {', '.join(repr(m) for m in missing)}, e.g. "
                         f"{{name: {name}, {missing[0]}: ...}}")
    registry.build({"name": name, **kwargs}, **extra)  # raises ValueError with accepted values
    return value


def _short_repr(value: Any, limit: int = 60) -> str:
    return show_value(value, limit)


def _activations():
    from dlexp.nn.activations import ACTIVATIONS

    return ACTIVATIONS


def _initializers():
    from dlexp.nn.initializers import INITIALIZERS

    return INITIALIZERS


def _losses():
    from dlexp.nn.losses import LOSSES

    return LOSSES


def _schedules():
    from dlexp.optim.schedules import SCHEDULES

    return SCHEDULES


def spec_names(field: str) -> list[str] | None:
    """The names a component field (activation, init, loss, optimizer, schedule) accepts; None for others."""
    if field == "optimizer":
        from dlexp.optim import optimizer_names

        return optimizer_names()
    getters = {"activation": _activations, "init": _initializers, "loss": _losses, "schedule": _schedules}
    if field not in getters:
        return None
    names = getters[field]().names()
    return ["auto", *names] if field == "loss" else names
class ResidualConfig(StrictModel):
    every: int = Field(1, ge=1, le=1000)


class ModelConfig(StrictModel):
    hidden: list[int] | None = None
    depth: int | None = Field(None, ge=0, le=1000)
    width: int = Field(32, ge=1, le=100_000)
    activation: Spec = "relu"
    init: Spec = "xavier_uniform"
    dropout: float = Field(0.0, ge=0, lt=1)
    dropout_mode: Literal["inverted", "scale_at_inference", "alpha"] = "inverted"
    batchnorm: bool = False
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    residual: bool | ResidualConfig = False
    output_activation: Literal["auto", "identity", "sigmoid", "softmax"] = "auto"

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if len(v) > 1000:
                raise ValueError(f"at most 1000 hidden layers (got {len(v)})")
            for i, width in enumerate(v):
                if width < 1 or width > 100_000:
                    raise ValueError(f"[{i}]: each width must be in [1, 100000] (got {width})")
        return v

    @field_validator("residual", mode="before")
    @classmethod
    def _residual(cls, v: Any) -> bool | ResidualConfig:
        # by hand rather than through the union, so that a bad mapping is told what is wrong in it
        if isinstance(v, bool):
            return v
        if isinstance(v, dict):
            unknown = sorted(str(k) for k in v if k != "every")
            if unknown:
                raise ValueError(f"unknown key {_short_repr(unknown[0], 30)} (accepted: every)")
            every = v.get("every", 1)
            if type(every) is not int or not 1 <= every <= 1000:
                raise ValueError(f"every: must be an integer from 1 to 1000 (got {_short_repr(every)})")
            return ResidualConfig(every=every)
        raise ValueError(f"must be true, false or {{every: k}} (got {_short_repr(v)})")

    @field_validator("activation", mode="before")
    @classmethod
    def _activation(cls, v: Any) -> Spec:
        return _check_spec(_activations, "activation", v)

    @field_validator("init", mode="before")
    @classmethod
    def _init(cls, v: Any) -> Spec:
        return _check_spec(_initializers, "init", v)

    @model_validator(mode="after")
    def _depth_or_hidden(self) -> ModelConfig:
        if self.hidden is not None and self.depth is not None:
            raise ValueError("give either 'hidden' (a list of widths) or 'depth' and 'width', not both")
        return self

    @model_validator(mode="after")
    def _norm_and_residual(self) -> ModelConfig:
        # one spelling per normalisation once validated: BatchNorm is `batchnorm: true` (the older key,
        # so that resolved configs written before `norm` existed keep their bytes), LayerNorm is `norm`
        if self.norm == "batchnorm":
            self.batchnorm, self.norm = True, "none"
        elif self.batchnorm and self.norm != "none":
            raise ValueError(f"norm: '{self.norm}' contradicts batchnorm: true; give one normalisation "
                             "(norm: batchnorm or norm: layernorm)")
        from dlexp.nn.model import residual_blocks

        residual_blocks(self.hidden_sizes(), self.residual_every())  # ValueError names the layers and widths
        return self

    def normalization(self) -> str:
        """'none', 'batchnorm' or 'layernorm'."""
        return "batchnorm" if self.batchnorm else self.norm

    def residual_every(self) -> int:
        """Hidden layers per residual block (0: no skips)."""
        if isinstance(self.residual, ResidualConfig):
            return self.residual.every
        return 1 if self.residual else 0

    def hidden_sizes(self) -> list[int]:
        if self.hidden is not None:
            return list(self.hidden)
        if self.depth is not None:
            return [self.width] * self.depth
        return [32, 32]


class EarlyStoppingConfig(StrictModel):
    monitor: Literal[MONITORS] = "val_loss"
    patience: int = Field(10, ge=1, le=1_000_000)
    min_delta: float = Field(0.0, ge=0)


class DivergenceConfig(StrictModel):
    """When a run whose numbers are still finite counts as diverged (a NaN or Inf always does).

    A step's training loss above ``loss_factor`` × the loss at initialisation (epoch 0), or its
    gradient norm (all parameters, before clipping) above ``grad_norm_max``, ends the run as
    ``diverged``. ``null`` turns a rule off. The defaults are far above anything a run that learns
    reaches: every shipped config stays below 5 × its initial loss and a gradient norm of 20
    (``benchmarks/divergence_margins.py``).
    """

    loss_factor: float | None = Field(1e6, gt=1)
    grad_norm_max: float | None = Field(1e8, gt=0)


class TrainingConfig(StrictModel):
    epochs: int = Field(50, ge=1, le=1_000_000)
    batch_size: int | Literal["full"] = 32
    shuffle: bool = True
    loss: Spec = "auto"
    optimizer: Spec = "adam"
    schedule: Spec | None = None
    l1: float = Field(0.0, ge=0, le=1e6)
    l2: float = Field(0.0, ge=0, le=1e6)
    clip_grad_norm: float | None = Field(None, gt=0)
    clip_grad_value: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig | None = None
    divergence: DivergenceConfig = Field(default_factory=DivergenceConfig)
    checkpoint_every: int = Field(1, ge=0, le=1_000_000)

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, v: Any) -> int | str:
        if v == "full" or (type(v) is int and 1 <= v <= MAX_BATCH_SIZE):
            return v
        hint = did_you_mean(v, ["full"]) if isinstance(v, str) else ""
        raise ValueError(f"must be an integer from 1 to {MAX_BATCH_SIZE:,} or 'full' (got {_short_repr(v)}){hint}")

    @field_validator("loss", mode="before")
    @classmethod
    def _loss(cls, v: Any) -> Spec:
        if v == "auto":
            return v
        return _check_spec(_losses, "loss", v)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v: Any) -> Spec:
        from dlexp.optim import make_optimizer, optimizer_names

        _spec_shape("optimizer", v, optimizer_names())
        v = _spec_numbers(v)
        make_optimizer(v)
        return v

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, v: Any) -> Spec | None:
        if v is None:
            return v
        return _check_spec(_schedules, "schedule", v)


class LoggingConfig(StrictModel):
    grad_every: int = Field(1, ge=1, le=10_000_000)
    histograms_every: int = Field(0, ge=0, le=10_000_000)  # 0: no histograms.csv


class ExperimentConfig(StrictModel):
    name: str | None = None
    seed: int = Field(0, ge=0, le=2**63 - 1)
    dtype: Literal["float64", "float32"] = "float64"
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    dlexp_version: str | None = None  # written into resolved configs; ignored on input

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_PATTERN.match(v):
            raise ValueError(
                f"must be 1-100 characters of letters, digits, '.', '_' or '-', not starting with '.' "
                f"or '-' (got {v!r})"
            )
        return v

    @model_validator(mode="after")
    def _size(self) -> ExperimentConfig:
        # The widths the data will give are not known before it is read: count with the fewest inputs
        # and outputs it can have, so only a model that is surely too large is refused here. The exact
        # count is checked by experiment.prepare once the data's widths are known.
        n_in, n_out = 1, 1
        if self.data.source == "synthetic":
            from dlexp.data.synthetic import KINDS

            kind = KINDS[self.data.kind]
            n_in = kind.n_features or self.data.n_features
            if kind.task == "classification" and (kind.n_classes or self.data.n_classes) > 2:
                n_out = kind.n_classes or self.data.n_classes
        check_parameter_count([n_in, *self.model.hidden_sizes(), n_out], self.model.batchnorm, "at least ")
        return self


def parameter_count(sizes: list[int], batchnorm: bool) -> int:
    """The parameters of an MLP with these layer widths (inputs first, outputs last), as
    :class:`dlexp.nn.model.MLP` lays them out: W and b per layer, gamma and beta instead of b with
    BatchNorm on a hidden layer."""
    hidden = sum(sizes[1:-1])
    return sum(a * b for a, b in itertools.pairwise(sizes)) + (2 * hidden if batchnorm else hidden) + sizes[-1]


def check_parameter_count(sizes: list[int], batchnorm: bool, bound: str = "", why: str = "") -> None:
    """ValueError naming the count and the cap when the model would have more than MAX_PARAMETERS."""
    n_params = parameter_count(sizes, batchnorm)
    if n_params > MAX_PARAMETERS:
        shown = sizes if len(sizes) <= 8 else [*sizes[:4], f"... {len(sizes) - 6} more ...", *sizes[-2:]]
        layers = " -> ".join(f"{s:,}" if isinstance(s, int) else s for s in shown)
        raise ValueError(f"model: {bound}{n_params:,} parameters (layer widths {layers}{why}), above the limit of "
                         f"{MAX_PARAMETERS:,}; use fewer or narrower layers")


# ---------------------------------------------------------------------------------------------
# Loading: file -> mapping -> overrides -> validated config, every failure one line.


def _count_nodes(obj: Any, limit: int) -> int:
    """Count nodes as a validator would walk them (aliases expanded); stop past ``limit``."""
    count = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


def read_yaml_mapping(path: Path, shown: str) -> dict[str, Any]:
    """Read a YAML file into a mapping with ``safe_load``; every failure is a one-line ConfigError."""
    raw = read_user_file(path, shown, "a YAML config file", ConfigError, MAX_CONFIG_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
    return parse_yaml_mapping(text, shown)


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (so no ``!!python`` tag can construct anything), made stricter for configs.

    A key given twice in one mapping is refused instead of the last one silently winning, and
    every key must be a string. Scalars resolve exactly as with ``yaml.safe_load`` (YAML 1.1), so
    whatever ``yaml.safe_dump`` writes reads back the same; ``1e-3`` is turned into a number by
    the schema, where a number is expected (:func:`scientific_to_float`).
    """

    def construct_mapping(self, node, deep=False):
        seen: dict[str, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if key_node.value in seen:
                first = seen[key_node.value].line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}' (first given on line {first}); give each key once",
                    key_node.start_mark)
            seen[key_node.value] = key_node.start_mark
        mapping = super().construct_mapping(node, deep=deep)
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if not isinstance(key, str) and key_node.tag != "tag:yaml.org,2002:merge":
                kind = {type(None): "null", bool: "a boolean", int: "a number", float: "a number"}.get(
                    type(key), type(key).__name__)
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key_node.value!r} is read as {kind}; keys must be names "
                    "(quote it to use it as text)", key_node.start_mark)
        return mapping


def yaml_load(text: str) -> Any:
    """Parse YAML with :class:`ConfigLoader`, a ``SafeLoader``: plain data only, never Python objects."""
    return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass: as safe as yaml.safe_load


def parse_yaml_mapping(text: str, shown: str) -> dict[str, Any]:
    try:
        data = yaml_load(text)
    except yaml.constructor.ConstructorError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = _one_line(getattr(exc, "problem", "") or "cannot be read")
        if "could not determine a constructor for the tag" in problem:
            tag = re.search(r"'([^']*)'", problem)
            raise ConfigError(f"{shown}: {where}tag '{tag.group(1) if tag else '?'}' is refused; only plain YAML "
                              "(mappings, lists, strings, numbers, booleans, null) is accepted") from None
        raise ConfigError(f"{shown}: {where}{problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:  # e.g. where an unclosed quote or bracket started
            problem += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        raise ConfigError(f"{shown}: invalid YAML: {where}{_one_line(problem)}") from None
    except RecursionError:
        raise ConfigError(f"{shown}: YAML nested too deeply") from None
    if data is None:
        raise ConfigError(f"{shown}: empty config; expected a mapping such as 'model: {{depth: 3}}'")
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}: top level must be a mapping of sections (got {type(data).__name__})")
    if _count_nodes(data, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ConfigError(f"{shown}: more than {MAX_YAML_NODES:,} YAML nodes after expanding aliases (a YAML bomb?)")
    return data


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``loc`` (for did-you-mean)."""
    model: Any = ExperimentConfig
    for part in loc[:-1]:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        model = next(
            (a for a in (getattr(ann, "__args__", None) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)),
            None,
        )
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "finite_number": "must be a finite number",
}


def _format_loc(loc: tuple) -> str:
    """``("model", "hidden", 1)`` -> ``model.hidden[1]``; a key that is not a plain name is quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            out += ("." if out else "") + str(part)
        else:
            out += f"[{_short_repr(str(part), 30)}]"
    return out


def _clean_loc(loc: tuple) -> tuple:
    """Drop pydantic's union-branch markers (``str``, ``dict[str,any]``, ``literal['full']``...)."""
    return tuple(
        p for p in loc if not (isinstance(p, str) and (p in ("str", "int", "float", "bool", "none")
                                                      or p.startswith(("dict[", "literal[", "list[", "function-"))))
    )


def format_validation_error(exc: ValidationError, shown: str) -> str:
    errors = exc.errors(include_url=False)
    # With unions pydantic reports one error per branch; the most specific one is what we show.
    err = errors[0]
    for candidate in errors:
        if candidate["type"] in ("value_error", "extra_forbidden", "literal_error"):
            err = candidate
            break
    loc = _clean_loc(tuple(err["loc"]))
    where = _format_loc(loc) or "(top level)"
    etype = err["type"]
    got = err.get("input")
    if etype == "extra_forbidden":
        model = _model_at(loc)
        fields = sorted(model.model_fields) if model else []
        fields = [f for f in fields if f != "dlexp_version"]
        hint = did_you_mean(str(loc[-1]), fields)
        accepted = f" (accepted: {', '.join(fields)})" if fields and not hint else ""
        return f"{shown}: {where}: unknown key{hint}{accepted}"
    if etype == "missing":
        return f"{shown}: {where}: required"
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        hint = did_you_mean(str(got), re.findall(r"'([^']*)'", expected)) if isinstance(got, str) else ""
        return f"{shown}: {where}: got {_short_repr(got)}{hint} (accepted: {expected})"
    if etype == "value_error":
        msg = _one_line(err.get("ctx", {}).get("error", err["msg"]))
        # A model validator names the field it checked first ("path: required ..."): join it to the path.
        head, sep, rest = msg.partition(": ")
        holder = _model_at(loc + ("",))
        if sep and holder is not None and head in holder.model_fields:
            return f"{shown}: {_format_loc(loc + (head,))}: {rest}"
        if msg.startswith("[") and loc:
            return f"{shown}: {where}{head}: {rest}"
        return f"{shown}: {where}: {msg}"
    template = _MESSAGES.get(etype)
    if template:
        msg = template.format(**err.get("ctx", {}))
    else:
        msg = err["msg"][0].lower() + err["msg"][1:]
    return f"{shown}: {where}: {msg} (got {_short_repr(got)})"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"training.optimizer.lr=0.01"`` -> (["training", "optimizer", "lr"], 0.01)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set training.optimizer.lr=0.01")
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: malformed key {key!r}; expected a dotted path such as training.epochs")
    parts = [p.strip() for p in parts]
    try:
        parsed = yaml_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        if value.strip()[0] in "[{&*!|>'\"":  # meant as YAML: say why it is not
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"--set {text!r}: the value is not valid YAML ({_one_line(problem)})") from None
        parsed = value
    except RecursionError:
        raise ConfigError(f"--set {text!r}: the value is nested too deeply") from None
    if _count_nodes(parsed, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise ConfigError(f"--set {text!r}: more than {MAX_YAML_NODES:,} YAML nodes after expanding aliases")
    return parts, parsed


_SPEC_FIELDS = {("model", "activation"), ("model", "init"), ("training", "loss"),
                ("training", "optimizer"), ("training", "schedule")}


def _default_spec_name(prefix: tuple[str, ...]) -> str | None:
    """The default component name of a spec field (``adam`` for training.optimizer), if it has one."""
    section = {"model": ModelConfig, "training": TrainingConfig}[prefix[0]]
    default = section.model_fields[prefix[1]].default
    return default if isinstance(default, str) and default != "auto" else None


def apply_override(data: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    """Set ``data[parts]`` = value, turning a bare spec name into a mapping where a sub-key is set.

    ``training.optimizer.lr=0.1`` on a config that does not name an optimizer sets the default
    one's argument (``{name: adam, lr: 0.1}``).
    """
    node = data
    for depth, part in enumerate(parts[:-1]):
        prefix = tuple(parts[: depth + 1])
        child = node.get(part)
        if child is None:
            default = _default_spec_name(prefix) if prefix in _SPEC_FIELDS else None
            child = {"name": default} if default else {}
        elif isinstance(child, str) and prefix in _SPEC_FIELDS:
            child = {"name": child}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"--set {text}: {'.'.join(prefix)} is {_short_repr(child)}, not a mapping, so it has no key "
                f"{parts[depth + 1]!r}; set {'.'.join(prefix)}=VALUE instead"
            )
        node[part] = child
        node = child
    node[parts[-1]] = value


def validate_mapping(data: dict[str, Any], shown: str) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, shown)) from None
    except RecursionError:
        raise ConfigError(f"{shown}: config nested too deeply") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, override and validate a config. The config's name defaults to the file's stem."""
    path = Path(path)
    shown = str(path)
    data = read_yaml_mapping(path, shown)
    for text in overrides:
        parts, value = parse_override(text)
        apply_override(data, parts, value, text)
    if data.get("name") is None:
        data["name"] = safe_name(path.stem)
    return validate_mapping(data, shown)


def config_base_dir(path: str | Path) -> Path:
    """Folder that relative paths in a config (data.path) are resolved against."""
    return Path(path).resolve().parent


# Keys added after the first release, left out of a resolved config while at their default so that
# an older config resolves to the same bytes as before they existed.
OMITTED_AT_DEFAULT = {"model": {"norm": "none", "residual": False}, "logging": {"histograms_every": 0}}


def resolved_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Plain mapping of the config with defaults filled in (``hidden`` spelled out)."""
    data = cfg.model_dump(mode="json")
    data["model"]["hidden"] = cfg.model.hidden_sizes()
    data["model"]["depth"] = None
    for section, defaults in OMITTED_AT_DEFAULT.items():
        for key, default in defaults.items():
            if key in data[section] and data[section][key] == default:
                del data[section][key]
    return data
