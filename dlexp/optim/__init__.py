"""Optimizers, learning-rate schedules and gradient clipping for flat parameter arrays.

Two conventions share the optimizer names (sgd, momentum, nesterov, adam, adamw, adamax,
adadelta, rmsprop, adagrad, nadam) and differ in defaults, argument names and formulas:

- ``torch`` (default): torch.optim 2.13, same argument names (``lr``, ``betas``, ``eps`` ...).
- ``keras``: Keras 3, Keras' argument names (``learning_rate``, ``beta_1``, ``epsilon`` ...).

A spec is a name or a mapping; a ``convention`` key inside the mapping wins over the argument::

    make_optimizer("adam")
    make_optimizer({"name": "adam", "convention": "keras", "learning_rate": 0.01})

See docs/optimizers.md for the differences, optimizer by optimizer.
"""

from __future__ import annotations

import inspect
from typing import Any

from dlexp.optim import keras_rules, torch_rules
from dlexp.optim.base import Optimizer, State
from dlexp.optim.clip import clip_by_global_norm, clip_by_value, global_norm
from dlexp.optim.schedules import SCHEDULES, Schedule, make_schedule
from dlexp.registry import Registry, did_you_mean, normalize_spec

__all__ = [
    "CONVENTIONS",
    "KERAS_OPTIMIZERS",
    "LR_ARGUMENT",
    "SCHEDULES",
    "TORCH_OPTIMIZERS",
    "Optimizer",
    "Schedule",
    "State",
    "clip_by_global_norm",
    "clip_by_value",
    "default_lr",
    "global_norm",
    "make_optimizer",
    "make_schedule",
    "optimizer_names",
    "optimizer_registry",
]

CONVENTIONS = ("torch", "keras")

TORCH_OPTIMIZERS: Registry[Optimizer] = Registry("torch optimizer")
KERAS_OPTIMIZERS: Registry[Optimizer] = Registry("keras optimizer")
for _factory in torch_rules.OPTIMIZERS:  # classes, and presets over them (momentum, nesterov)
    TORCH_OPTIMIZERS.add(_factory.name, _factory)
for _factory in keras_rules.OPTIMIZERS:
    KERAS_OPTIMIZERS.add(_factory.name, _factory)

_REGISTRIES = {"torch": TORCH_OPTIMIZERS, "keras": KERAS_OPTIMIZERS}
# The base learning rate's argument name in each convention (as in torch.optim and Keras 3).
LR_ARGUMENT = {"torch": "lr", "keras": "learning_rate"}


def optimizer_registry(convention: str = "torch") -> Registry[Optimizer]:
    """The registry of one convention; ValueError naming the accepted conventions."""
    if convention not in _REGISTRIES:
        raise ValueError(
            f"unknown optimizer convention {convention!r}{did_you_mean(str(convention), list(CONVENTIONS))} "
            f"(accepted: {', '.join(CONVENTIONS)})"
        )
    return _REGISTRIES[convention]


def make_optimizer(spec: Any, convention: str = "torch") -> Optimizer:
    """Build an optimizer from ``"adam"`` or ``{"name": "adam", **hyperparams}``.

    A ``convention`` key in the mapping overrides ``convention``. Unknown names, arguments
    and out-of-range values raise ValueError listing what is accepted.
    """
    name, kwargs = normalize_spec(spec, "optimizer")
    convention = kwargs.pop("convention", convention)
    return optimizer_registry(convention).build({"name": name, **kwargs})


def default_lr(name: str, convention: str = "torch") -> float:
    """The default base learning rate of optimizer ``name`` in ``convention``."""
    factory = optimizer_registry(convention).factory(name)
    return float(inspect.signature(factory).parameters[LR_ARGUMENT[convention]].default)


def optimizer_names(convention: str = "torch") -> list[str]:
    """Registered optimizer names (the same in both conventions), sorted."""
    return optimizer_registry(convention).names()
