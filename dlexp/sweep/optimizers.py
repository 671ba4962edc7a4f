"""compare-optimizers: a sweep whose preset axis is the optimizer, each at its own default learning rate.

The config's ``training.optimizer`` is replaced by ``{name, lr}`` (torch convention) or
``{name, convention: keras, learning_rate}``: other hyperparameters of the config's optimizer are
not carried over, so every optimizer runs with its convention's defaults apart from the lr.
``momentum`` and ``nesterov`` are the registry's presets: sgd with momentum 0.9 (and Nesterov).
"""

from __future__ import annotations

import math
from typing import Any

from dlexp.errors import ArgumentError, ConfigError
from dlexp.optim import CONVENTIONS, LR_ARGUMENT, default_lr, optimizer_registry
from dlexp.registry import did_you_mean
from dlexp.sweep.grid import Axis, parse_axis, split_values


def check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        hint = did_you_mean(convention, list(CONVENTIONS))
        raise ArgumentError("convention", repr(convention), f"unknown convention{hint} "
                            f"(accepted: {', '.join(CONVENTIONS)})")
    return convention


def parse_optimizers(text: str, convention: str) -> list[str]:
    registry = optimizer_registry(convention)
    names = []
    for name in split_values(text, f"--optimizers {text!r}"):
        try:
            canonical = registry.canonical(name)
        except ValueError as exc:
            raise ConfigError(f"--optimizers: {exc}") from None
        if canonical in names:
            raise ConfigError(f"--optimizers {text!r}: '{canonical}' is listed twice")
        names.append(canonical)
    return names


def parse_lrs(texts: list[str], names: list[str], convention: str) -> dict[str, float]:
    """``["adam=0.01", "sgd=0.1"]`` -> {"adam": 0.01, "sgd": 0.1}; each OPT must be among ``names``."""
    registry = optimizer_registry(convention)
    out: dict[str, float] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--lr {text!r}: expected OPT=VALUE, e.g. --lr sgd=0.1")
        try:
            name = registry.canonical(name)
        except ValueError as exc:
            raise ConfigError(f"--lr {text!r}: {exc}") from None
        if name not in names:
            raise ConfigError(f"--lr {text!r}: '{name}' is not among the compared optimizers "
                              f"({', '.join(names)}); add it to --optimizers")
        try:
            lr = float(value)
        except ValueError:
            raise ConfigError(f"--lr {text!r}: the learning rate must be a number "
                              f"(got {value.strip()!r})") from None
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"--lr {text!r}: the learning rate must be a finite number > 0")
        if name in out:
            raise ConfigError(f"--lr {text!r}: a learning rate for '{name}' is already given")
        out[name] = lr
    return out


def optimizer_value(name: str, lr: float, convention: str) -> dict[str, Any]:
    """The ``training.optimizer`` mapping of optimizer ``name`` at ``lr``, other hyperparameters at their defaults."""
    spec: dict[str, Any] = {"name": name}
    if convention != "torch":
        spec["convention"] = convention
    spec[LR_ARGUMENT[convention]] = lr
    return spec


def optimizer_axis(optimizers: str, lrs: list[str],
                   convention: str) -> tuple[Axis, dict[tuple[str, str], dict[str, Any]]]:
    """The ``training.optimizer`` axis and, per optimizer, the lr used and where it came from."""
    check_convention(convention)
    names = parse_optimizers(optimizers, convention)
    chosen = parse_lrs(lrs, names, convention)
    values, notes = [], {}
    for name in names:
        lr = chosen.get(name, default_lr(name, convention))
        values.append(optimizer_value(name, lr, convention))
        notes[("training.optimizer", name)] = {"lr": lr, "lr_source": "--lr" if name in chosen else "default",
                                               "convention": convention}
    return Axis(key="training.optimizer", texts=names, values=values, title="optimizer"), notes


def batch_size_axis(text: str) -> Axis:
    """``"1,32,full"`` -> the ``training.batch_size`` axis (1: stochastic, full: batch gradient descent)."""
    return parse_axis(f"training.batch_size={text}", "--batch-sizes")
