"""The experiment config's schema: pydantic v2 models, every field with its type, range and default.

Components (activation, init, loss, optimizer, schedule) are validated against their registries
(:mod:`dlexp.config.components`), so a typo gets a "did you mean". Reading a file, applying overrides and turning a validation error
into one line live in :mod:`dlexp.config.load`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dlexp.config.components import (
    _activations,
    _check_spec,
    _initializers,
    _losses,
    _schedules,
    _short_repr,
    _spec_numbers,
    _spec_shape,
    scientific_to_float,
)
from dlexp.registry import did_you_mean
from dlexp.rundir.schema import split_metric_columns

MAX_BATCH_SIZE = 10_000_000
MAX_PARAMETERS = 50_000_000  # a model above this is refused before any memory is used
MONITORS = tuple(split_metric_columns("val", "train", classification=True))  # early stopping's choices
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

Spec = Union[str, dict[str, Any]]  # noqa: UP007 (a runtime alias: pydantic evaluates it on Python 3.10)


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
    checkpoint_every_s: float = Field(30.0, ge=0, le=1e9)  # and at most one per this many seconds (0: no wait)

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
    eval_every: int = Field(1, ge=1, le=1_000_000)  # epochs between evaluations; the last is always evaluated


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
        check_parameter_count(self.least_layer_sizes(), self.model.batchnorm, "at least ")
        return self

    def least_layer_sizes(self) -> list[int]:
        """Layer widths, inputs first, with the fewest inputs and outputs the data can give (the exact
        widths of synthetic data; 1 and 1 for a CSV file, not read yet)."""
        n_in, n_out = 1, 1
        if self.data.source == "synthetic":
            from dlexp.data.synthetic import KINDS

            kind = KINDS[self.data.kind]
            n_in = kind.n_features or self.data.n_features
            if kind.task == "classification" and (kind.n_classes or self.data.n_classes) > 2:
                n_out = kind.n_classes or self.data.n_classes
        return [n_in, *self.model.hidden_sizes(), n_out]


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


# Keys added after the first release, left out of a resolved config while at their default so that
# an older config resolves to the same bytes as before they existed.
OMITTED_AT_DEFAULT = {"model": {"norm": "none", "residual": False}, "training": {"checkpoint_every_s": 30.0},
                      "logging": {"histograms_every": 0, "eval_every": 1}}


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
