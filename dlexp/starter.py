"""The starter config `dlexp init` writes, generated from the config schema itself.

Every key of :class:`dlexp.config.ExperimentConfig` appears with its real default and, in a comment
above it, the values it accepts (read from the field's type, its bounds and the component registries)
and a short note where the accepted values do not say enough. A key added to the schema appears here
without anyone editing this file; tests/test_init.py loads the result and checks that it equals an
empty config.
"""

from __future__ import annotations

import textwrap
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from dlexp.config import ExperimentConfig, spec_names

COMMENT_WIDTH = 100
# Written into resolved configs and ignored on input: not a setting.
SKIPPED = {"dlexp_version"}

NOTES = {
    "name": "names the run folder; null: the config file's name",
    "seed": "one seed drives the data, the initial weights, the batch order and dropout",
    "dtype": "float64 for exact study, float32 for speed",
    "data.kind": "classes: moons circles spirals blobs xor; regression: linear sine",
    "data.n_classes": "spirals and blobs",
    "data.path": "csv: the file, relative to this config's folder",
    "data.target": "csv: the column to predict",
    "data.features": "csv: the input columns (null: every other column)",
    "data.standardize": "fitted on the training split only",
    "model.hidden": "the hidden layers' widths, e.g. [64, 32]; or give depth and width",
    "model.depth": "hidden layers of `width` units each, instead of `hidden` (null: [32, 32])",
    "model.init": "weights; biases start at 0",
    "model.dropout": "the rate of dropped units, in [0, 1)",
    "model.dropout_mode": "scale_at_inference is the original paper's form",
    "model.output_activation": "auto: sigmoid for bce, softmax for cce and sparse_cce, identity otherwise",
    "training.batch_size": "1 = stochastic GD, full = batch GD, N = mini-batch",
    "training.loss": "auto picks from the data",
    "training.optimizer": "a name, or a mapping such as {name: sgd, lr: 0.1, momentum: 0.9}",
    "training.schedule": "null: a constant learning rate; or e.g. {name: step, step_size: 10, gamma: 0.5}",
    "training.clip_grad_norm": "rescale the gradient when its global norm exceeds this",
    "training.clip_grad_value": "clip each gradient entry to [-v, v]",
    "training.checkpoint_every": "epochs between checkpoints (0: only at the end)",
    "training.checkpoint_every_s": "and at least this many seconds between two (0: every checkpoint_every epochs); "
                                   "the end of a run is always saved",
    "logging.grad_every": "steps between per-layer gradient rows (step 1 is always logged)",
    "logging.eval_every": "epochs between evaluations of the splits (the last epoch always); "
                          "other epochs' metrics rows leave the split metrics empty",
}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _number(value: Any) -> str:
    if value == 2**63 - 1:
        return "2^63 - 1"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _bounds(metadata: list) -> str:
    """'from 1 to 1,000', 'in [0, 1)', '>= 0' or '> 0'."""
    found = {attr: getattr(item, attr) for item in metadata for attr in ("ge", "gt", "le", "lt")
             if getattr(item, attr, None) is not None}
    low = ("ge", found["ge"]) if "ge" in found else ("gt", found["gt"]) if "gt" in found else None
    high = ("le", found["le"]) if "le" in found else ("lt", found["lt"]) if "lt" in found else None
    if low and high:
        if low[0] == "ge" and high[0] == "le":
            return f"from {_number(low[1])} to {_number(high[1])}"
        return f"in {'[' if low[0] == 'ge' else '('}{_number(low[1])}, {_number(high[1])}{']' if high[0] == 'le' else ')'}"
    if low:
        return f"{'>=' if low[0] == 'ge' else '>'} {_number(low[1])}"
    if high:
        return f"{'<=' if high[0] == 'le' else '<'} {_number(high[1])}"
    return ""


def accepted(path: str, annotation: Any, metadata: list) -> str:
    """The values a field accepts, in words."""
    names = spec_names(path.rsplit(".", 1)[-1])
    optional = type(None) in _members(annotation)
    if names is not None:
        text = " | ".join(names)
    else:
        kinds = []
        for member in _members(annotation):
            if member is type(None):
                continue
            if typing.get_origin(member) is typing.Literal:
                kinds.append(" | ".join(str(v) for v in typing.get_args(member)))
            elif member is bool:
                kinds.append("true | false")
            elif member is int:
                kinds.append("an integer")
            elif member is float:
                kinds.append("a number")
            elif member is str:
                kinds.append("text")
            elif typing.get_origin(member) is list:
                inner = typing.get_args(member)[0]
                kinds.append(f"a list of {'integers' if inner is int else 'names'}")
            elif _is_model(member):
                kinds.append("a mapping (see below)")
            else:
                kinds.append(str(member))
        text = " or ".join(kinds)
        bounds = _bounds(metadata)
        if bounds:
            text += f" {bounds}"
    return text + (" or null" if optional else "")


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip().removesuffix("\n...").strip()


def _lines(model: type[BaseModel], prefix: str, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    for key, field in model.model_fields.items():
        if key in SKIPPED:
            continue
        path = f"{prefix}{key}"
        annotation = field.annotation
        if field.default_factory is not None and _is_model(annotation):
            out.append(f"{pad}{key}:")
            out += _lines(annotation, f"{path}.", indent + 2)
            continue
        comment = accepted(path, annotation, field.metadata)
        nested = [m for m in _members(annotation) if _is_model(m)]
        if nested:  # an optional section, off by default: show what turning it on looks like
            example = {k: f.default for k, f in nested[0].model_fields.items()}
            comment = f"null, or a mapping such as {_scalar(example)}"
            options = "; ".join(f"{k}: {accepted(f'{path}.{k}', f.annotation, f.metadata)}"
                                for k, f in nested[0].model_fields.items())
            comment += f" ({options})"
        note = NOTES.get(path)
        text = f"{note}. Accepted: {comment}" if note else f"Accepted: {comment}"
        out += [f"{pad}# {line}" for line in textwrap.wrap(text, COMMENT_WIDTH - indent - 2,
                                                           break_long_words=False, break_on_hyphens=False)]
        out.append(f"{pad}{key}: {_scalar(field.default)}")
    return out


def starter_yaml(config_name: str) -> str:
    """The starter config's text; ``config_name`` is the file it is written to (for the how-to lines)."""
    header = [
        "# dlexp experiment config, written by `dlexp init` from the config schema.",
        "# Every key is shown at its default and may be deleted; a comment above each says what it accepts.",
        f"# Check it:  dlexp validate {config_name}     Train it:  dlexp train {config_name}",
        "# Change a key for one run:  dlexp train CONFIG --set training.epochs=10",
    ]
    return "\n".join(header + _lines(ExperimentConfig, "", 0)) + "\n"


def all_paths(model: type[BaseModel] = ExperimentConfig, prefix: str = "") -> list[str]:
    """Every key path of the schema that the starter shows (for tests)."""
    paths = []
    for key, field in model.model_fields.items():
        if key in SKIPPED:
            continue
        if field.default_factory is not None and _is_model(field.annotation):
            paths += all_paths(field.annotation, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths
