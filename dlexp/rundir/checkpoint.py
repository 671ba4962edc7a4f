"""A trainer's whole state as the named arrays of ``checkpoints/last.npz``, and back.

Parameters and buffers under their own names, the optimizer's state per parameter
(``optim.{slot}.{name}``), the loop's counters, the early-stopping state and both generators as
JSON (``trainer.state``), and the current epoch's permutation: a run stopped after any step resumes
bit for bit. Restoring checks everything (shapes, dtypes, the optimizer's state with
``Optimizer.check_state``, counters, generator states) before setting anything.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dlexp.rundir.schema import (
    OPTIMIZER_PREFIX,
    STOP_RULE_STATE,
    TRAINER_HAS_PERM,
    TRAINER_PERM,
    TRAINER_STATE,
)


def trainer_arrays(trainer) -> dict[str, np.ndarray]:
    """Everything needed to continue bit for bit, as named arrays for ``.npz``."""
    arrays = trainer.model.state_dict()
    for key, value in trainer.opt_state.items():
        value = np.asarray(value)
        if value.shape == trainer.model.params.shape:
            for name in trainer.model.param_names:
                arrays[f"{OPTIMIZER_PREFIX}{key}.{name}"] = trainer.model.view_of(value, name).copy()
        else:
            arrays[f"{OPTIMIZER_PREFIX}{key}"] = value.copy()
    counters = {"step": trainer.step, "epoch": trainer.epoch, "batch_index": trainer.batch_index,
                "grad_norm_sum": trainer.grad_norm_sum, "grad_norm_count": trainer.grad_norm_count,
                **trainer.stopper.state_dict(), "history": trainer.history,
                "shuffle_rng": trainer.shuffle_rng.bit_generator.state,
                "dropout_rng": trainer.dropout_rng.bit_generator.state}
    if trainer.stop_rule is not None:
        counters[STOP_RULE_STATE] = trainer.stop_rule.state_dict()
    arrays[TRAINER_STATE] = np.array(json.dumps(counters, default=_json_default))
    arrays[TRAINER_PERM] = trainer.perm if trainer.perm is not None else np.empty(0, dtype=np.int64)
    arrays[TRAINER_HAS_PERM] = np.array(trainer.perm is not None)
    return arrays


def restore_trainer(trainer, arrays: dict[str, np.ndarray], n_train: int | None = None) -> None:
    """Load :func:`trainer_arrays`' output into ``trainer``. Everything is checked before anything is set: a
    missing array is a KeyError; a wrong shape, dtype or counter a ValueError naming it.
    ``n_train`` (rows of the training split) lets the saved permutation be checked too."""
    model = trainer.model
    state: dict[str, np.ndarray] = {}
    for key, value in trainer.opt_state.items():
        value = np.asarray(value)
        if value.shape != model.params.shape:
            state[key] = arrays[f"{OPTIMIZER_PREFIX}{key}"]
            continue
        pieces = {name: arrays[f"{OPTIMIZER_PREFIX}{key}.{name}"] for name in model.param_names}
        for name, piece in pieces.items():
            if piece.shape != model.shapes[name]:
                raise ValueError(f"optim.{key}.{name}: shape {list(piece.shape)}, expected "
                                 f"{list(model.shapes[name])}")
        # a piece of another dtype gives the slot its dtype, so that check_state names the slot
        dtype = next((a.dtype for a in pieces.values() if a.dtype != model.params.dtype), model.params.dtype)
        flat = np.empty(model.params.shape, dtype=dtype)
        for name, piece in pieces.items():
            model.view_of(flat, name)[...] = piece
        state[key] = flat
    trainer.optimizer.check_state(model.params, state)
    counters = _counters(arrays[TRAINER_STATE])
    has_perm = arrays[TRAINER_HAS_PERM]
    perm = arrays[TRAINER_PERM]
    if has_perm.shape != () or has_perm.dtype != np.bool_:
        raise ValueError(f"trainer.has_perm: {has_perm.dtype}{list(has_perm.shape)}, expected bool[]")
    if bool(has_perm) and (perm.ndim != 1 or perm.dtype.kind not in "iu"
                           or (n_train is not None and not np.array_equal(np.sort(perm), np.arange(n_train)))):
        raise ValueError(f"trainer.perm: {perm.dtype}{list(perm.shape)} is not a permutation of the "
                         f"{n_train} training rows")
    shuffle_rng = np.random.default_rng()
    dropout_rng = np.random.default_rng()
    try:
        shuffle_rng.bit_generator.state = counters["shuffle_rng"]
        dropout_rng.bit_generator.state = counters["dropout_rng"]
    except (TypeError, ValueError, KeyError):
        raise ValueError("trainer.state: a generator state is not a PCG64 state") from None
    if trainer.stop_rule is not None:
        try:
            trainer.stop_rule.load_state_dict(counters[STOP_RULE_STATE])
        except (TypeError, ValueError, KeyError):
            raise ValueError("trainer.state: no state of this run's stop rule ('stop_rule')") from None
    model.load_state_dict(arrays)
    trainer.opt_state = state
    for name in _LOOP_COUNTERS:
        setattr(trainer, name, counters[name])
    trainer.stopper.load_state_dict({key: counters[key] for key in trainer.stopper.state_dict()})
    trainer.shuffle_rng.bit_generator.state = shuffle_rng.bit_generator.state
    trainer.dropout_rng.bit_generator.state = dropout_rng.bit_generator.state
    trainer.perm = np.array(perm, dtype=np.int64) if bool(has_perm) else None
    trainer._stop_reason = None


# counters saved in ``trainer.state``: the types each must have, and how to say so
_COUNT = (int, "a non-negative integer")
_COUNTERS = {"step": _COUNT, "epoch": _COUNT, "batch_index": _COUNT, "grad_norm_sum": ((int, float), "a number"),
             "grad_norm_count": _COUNT, "wait": _COUNT, "best": (dict, "a mapping"), "history": (list, "a list")}
_LOOP_COUNTERS = ("step", "epoch", "batch_index", "grad_norm_sum", "grad_norm_count", "history")  # the rest: stopper


def _counters(array: np.ndarray) -> dict[str, Any]:
    """The JSON counters of a checkpoint, checked key by key (ValueError names the first bad one)."""
    if array.shape != () or array.dtype.kind != "U":
        raise ValueError(f"trainer.state: {array.dtype}{list(array.shape)}, expected a JSON text")
    counters = json.loads(str(array))  # JSONDecodeError is a ValueError
    if not isinstance(counters, dict):
        raise ValueError("trainer.state: expected a JSON object")
    for name, (kind, accepted) in _COUNTERS.items():
        value = counters.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 0):
            raise ValueError(f"trainer.state: '{name}' is {value!r:.40}, expected {accepted}")
    return counters


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")
