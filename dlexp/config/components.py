"""Component fields (activation, init, loss, optimizer, schedule): a name, or a mapping with a ``name``
and the component's arguments, checked against its registry so that a typo gets a "did you mean".

Also how a config value that YAML 1.1 leaves as text is read as a number (``1e-3``).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from dlexp.errors import show_value
from dlexp.registry import normalize_spec

_SCIENTIFIC = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+")


def scientific_to_float(value: Any) -> Any:
    """``"1e-3"`` -> 0.001. YAML 1.1 reads a number in e-notation without a dot as a string."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [scientific_to_float(item) for item in value]
    return value



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
