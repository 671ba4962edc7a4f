"""The optimizer contract, hyperparameter range checks and the weight-decay transforms.

An optimizer works on ONE flat, contiguous 1-D parameter array (float32 or float64) and a
gradient array of the same size and dtype, updating both the parameters and its state in place:

    opt = make_optimizer("adam")
    state = opt.init(params)             # {"step": 0-d int64, "exp_avg": ..., ...}
    opt.step(params, grads, state, lr)   # lr comes from the schedule, every step

Everything that matters across steps lives in ``state`` as numpy arrays, so ``np.savez`` and
``np.load`` round-trip it bit-exactly and a resumed run is bit-identical to an uninterrupted one.
Python attributes hold only hyperparameters and scratch buffers (overwritten every step).

``step`` MAY overwrite ``grads``: it is used as scratch. The model recomputes it each step.

A step is split in two: ``_advance`` computes the per-step scalars (bias corrections, ...)
and advances the scalar state once; ``_update`` does the elementwise work with a fixed, small
number of NumPy calls. Large arrays are updated in cache-sized chunks (``chunk_bytes``);
every operation is elementwise, so chunking changes no result bit.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from dlexp.optim.norms import UpdateNorms

State = dict[str, np.ndarray]


class Optimizer:
    """Base class. Subclasses set ``name`` and ``convention``, validate their hyperparameters,
    pass ``slots`` (names of the flat state arrays) to ``__init__``, and implement ``_advance``
    (scalar part of a step) and ``_update`` (elementwise part)."""

    name: ClassVar[str] = ""
    convention: ClassVar[str] = ""
    # Scratch arrays that ``_update`` needs besides ``grads``.
    n_scratch: ClassVar[int] = 1
    # Large arrays are updated in chunks of this many bytes per array so that the ~10 passes
    # of a step stay in cache (see docs/performance.md; 1 MiB measured best of 64 KiB-2 MiB).
    # 0 disables chunking.
    chunk_bytes: ClassVar[int] = 1 << 20

    def __init__(self, lr: float, hyperparams: dict[str, Any], slots: tuple[str, ...]):
        # The base learning rate, the config's ``lr`` (``learning_rate`` in Keras' convention). The rate
        # a step uses is :meth:`step`'s ``lr`` argument: the schedule's value for this epoch or step.
        self.lr = lr
        self.hyperparams = hyperparams
        # Names of the flat per-parameter state arrays (depends on hyperparameters).
        self.slots = slots
        self._scratch_cache: dict[tuple[int, str], tuple[np.ndarray, ...]] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ state
    def init(self, params: np.ndarray) -> State:
        """Fresh state for ``params``: flat arrays of its size and dtype, plus scalars."""
        check_flat(params, "params")
        state: State = {"step": np.zeros((), dtype=np.int64)}
        for slot in self.slots:
            state[slot] = np.full_like(params, self._slot_initial_value(slot))
        state.update(self._scalar_state())
        return state

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def _scalar_state(self) -> State:
        """Extra 0-d arrays (e.g. NAdam's running product of momentum coefficients)."""
        return {}

    def check_state(self, params: np.ndarray, state: State) -> None:
        """ValueError unless ``state`` (e.g. loaded from disk) fits these params and hyperparameters."""
        expected = self.init(params[:0].copy())  # keys and scalar dtypes without the cost
        if sorted(state) != sorted(expected):
            raise ValueError(
                f"{self.convention} optimizer '{self.name}' expects state keys {sorted(expected)} "
                f"(got {sorted(state)})"
            )
        for key, ref in expected.items():
            arr = state[key]
            shape = params.shape if key in self.slots else ref.shape
            if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != ref.dtype:
                got = f"{arr.dtype}{list(arr.shape)}" if isinstance(arr, np.ndarray) else type(arr).__name__
                raise ValueError(f"optimizer state '{key}' must be {ref.dtype}{list(shape)} (got {got})")

    # ------------------------------------------------------------------- step
    def step(self, params: np.ndarray, grads: np.ndarray, state: State, lr: float,
             norms: UpdateNorms | None = None) -> None:
        """One update at learning rate ``lr`` (this step's, from the schedule; ``self.lr`` is the base),
        in place on ``params`` and ``state``. Overwrites ``grads`` (scratch).

        With ``norms``, each chunk's ``||theta||`` and ``||delta theta||`` are measured while the
        chunk is in cache (see :class:`~dlexp.optim.norms.UpdateNorms`): ``delta theta`` is the
        step array the update added (:meth:`returns_delta`), or else ``theta_after - theta_before``.
        """
        coef = self._advance(state, float(lr))
        grid = chunk_grid(params.shape[0], params.itemsize, self.chunk_bytes)
        copy = norms is not None and not self.returns_delta()  # else the step array gives ||delta||
        if norms is not None:
            norms.begin(grid, params.dtype)
        longest = grid[0][1] if grid else 0
        scratch = self._scratch(longest, params.dtype)
        for start, stop in grid:
            p = params[start:stop]
            if copy:
                norms.before(p)
            if stop - start == params.shape[0]:
                change = self._update(p, grads, state, scratch, coef)
            else:
                part = {slot: state[slot][start:stop] for slot in self.slots}
                buffers = scratch if stop - start == longest else tuple(b[: stop - start] for b in scratch)
                change = self._update(p, grads[start:stop], part, buffers, coef)
            if norms is not None:
                if not copy and change is None:
                    raise RuntimeError(f"{type(self).__name__}._update returned no step array")
                norms.after(start, p, None if copy else change)

    def _advance(self, state: State, lr: float) -> tuple:
        """Advance the scalar state by one step; return the scalars ``_update`` needs (default: lr)."""
        advance_step(state)
        return (lr,)

    def _update(
        self,
        params: np.ndarray,
        grads: np.ndarray,
        state: State,
        scratch: tuple[np.ndarray, ...],
        coef: tuple,
    ) -> np.ndarray | None:
        """Elementwise part of the step on (a chunk of) the flat arrays.

        Returns the step array ``d`` when the parameters changed by one operation ``p += d`` or
        ``p -= d`` (see :meth:`returns_delta`), else None.
        """
        raise NotImplementedError

    def returns_delta(self) -> bool:
        """Whether ``_update`` returns delta theta: it changes the parameters in one addition of a step
        array and returns that array (so ``||delta theta||`` needs no copy of the parameters). False for updates made
        of two parts, such as decoupled weight decay followed by the gradient step."""
        return True

    def _scratch(self, size: int, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        key = (size, np.dtype(dtype).str)
        buffers = self._scratch_cache.get(key)
        if buffers is None:
            buffers = tuple(np.empty(size, dtype=dtype) for _ in range(self.n_scratch))
            self._scratch_cache[key] = buffers
        return buffers


def preset(cls: type[Optimizer], name: str, doc: str, **defaults: Any) -> Callable[..., Optimizer]:
    """A registered name for ``cls`` with other defaults, as tinygrad's ``SGD`` presets are one-line
    factories over one class. The factory's signature is ``cls``'s with ``defaults`` filled in, so the
    registry checks arguments (did-you-mean included) and reads default learning rates from it as
    from a class; the optimizer it builds carries ``name`` (checkpoints and summaries record it)."""
    signature = inspect.signature(cls)
    unknown = sorted(set(defaults) - set(signature.parameters))
    if unknown:
        raise TypeError(f"preset {name!r}: {cls.__name__} has no argument(s) {unknown}")
    signature = signature.replace(parameters=[
        p.replace(default=defaults.get(p.name, p.default)) for p in signature.parameters.values()])

    def factory(*args: Any, **kwargs: Any) -> Optimizer:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        optimizer = cls(**bound.arguments)
        optimizer.name = name
        return optimizer

    factory.__signature__ = signature
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    factory.name = name
    factory.convention = cls.convention
    return factory


def chunk_grid(size: int, itemsize: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]``: ``range(size)`` in chunks of ``chunk_bytes // itemsize`` elements
    (the last may be shorter); one chunk when ``chunk_bytes <= 0``."""
    chunk = chunk_bytes // itemsize if chunk_bytes > 0 else size
    return [(start, min(start + max(chunk, 1), size)) for start in range(0, size, max(chunk, 1))]


def advance_step(state: State) -> int:
    """Count one more step in ``state["step"]`` (a 0-d int64 array) and return the new count t."""
    state["step"] += 1
    return int(state["step"])


# ---------------------------------------------------------------- weight decay
# Small transforms shared by the optimizers (never pasted into each one).


def l2_into_grad(grads: np.ndarray, params: np.ndarray, weight_decay: float, scratch: np.ndarray) -> None:
    """torch's coupled L2 penalty: ``g <- g + weight_decay * p``."""
    np.multiply(params, weight_decay, out=scratch)
    grads += scratch


def decay_params_torch(params: np.ndarray, lr: float, weight_decay: float) -> None:
    """torch's decoupled decay (AdamW, NAdamW): ``p <- p * (1 - lr * weight_decay)``."""
    params *= 1.0 - lr * weight_decay


def decay_params_keras(params: np.ndarray, lr: float, weight_decay: float, scratch: np.ndarray) -> None:
    """Keras 3 decoupled decay, all optimizers, before the update: ``p <- p - p * wd * lr``."""
    np.multiply(params, weight_decay, out=scratch)
    scratch *= lr
    params -= scratch


# ---------------------------------------------------------------- range checks
# Messages name the argument, the rule and the bad value: "lr must be > 0 (got -0.1)".
# A wrong type is a ValueError too (TRY004 is off in pyproject.toml): the registry and the
# config layer treat every bad hyperparameter alike.


def _shown(value: Any) -> str:
    """The bad value as the user wrote it (plain ``-0.1``, not ``np.float64(-0.1)``)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, Integral):
        return repr(int(value))
    if isinstance(value, Real):
        return repr(float(value))
    return repr(value)


def check_number(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number (got {_shown(value)})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite (got {_shown(value)})")
    return number


def check_positive(name: str, value: Any) -> float:
    number = check_number(name, value)
    if not number > 0.0:
        raise ValueError(f"{name} must be > 0 (got {_shown(value)})")
    return number


def check_nonnegative(name: str, value: Any) -> float:
    number = check_number(name, value)
    if not number >= 0.0:
        raise ValueError(f"{name} must be >= 0 (got {_shown(value)})")
    return number


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer (got {_shown(value)})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} (got {_shown(value)})")
    return int(value)


def check_unit(name: str, value: Any, *, include_one: bool) -> float:
    """``value`` in [0, 1] (``include_one``) or [0, 1)."""
    number = check_number(name, value)
    ok = 0.0 <= number <= 1.0 if include_one else 0.0 <= number < 1.0
    if not ok:
        raise ValueError(f"{name} must be in [0, 1{']' if include_one else ')'} (got {_shown(value)})")
    return number


def check_betas(name: str, value: Any) -> list[float]:
    """A pair of decay rates, each in [0, 1) (torch's ``betas``)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{name} must be a pair of numbers (got {_shown(value)})")
    return [check_unit(f"{name}[{i}]", value[i], include_one=False) for i in range(2)]


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false (got {_shown(value)})")
    return bool(value)


def check_flat(array: Any, what: str) -> None:
    if not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype not in (np.float32, np.float64):
        desc = (
            f"{array.dtype} array of shape {array.shape}"
            if isinstance(array, np.ndarray)
            else type(array).__name__
        )
        raise ValueError(f"{what} must be a flat 1-D float32 or float64 array (got {desc})")
    if not array.flags.c_contiguous:
        raise ValueError(f"{what} must be contiguous (got a strided view)")
