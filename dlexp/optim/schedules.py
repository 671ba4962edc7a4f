"""Per-epoch learning-rate schedules with torch.optim.lr_scheduler semantics.

``schedule.lr_at(base_lr, epoch)`` is the learning rate used during the 0-indexed ``epoch``:
what torch's scheduler gives after ``epoch`` calls of ``scheduler.step()``. It is a function of
``epoch`` alone (resuming needs no scheduler state). torch computes the sequence recursively
from the previous epoch's lr (its ``get_lr``), which rounds differently from the closed form;
the same recursion is replayed here, in Python floats, so the values are torch's exactly.
The replayed sequence is memoized per ``base_lr``.

    constant                      lr_e = base_lr
    step(step_size, gamma=0.1)    lr_e = base_lr * gamma^floor(e / step_size)
    multistep(milestones, gamma)  lr_e = base_lr * gamma^(number of milestones <= e)
    exponential(gamma)            lr_e = base_lr * gamma^e
    cosine(T_max, eta_min=0)      lr_e = eta_min + (base_lr - eta_min) * (1 + cos(pi e / T_max)) / 2
                                  (past T_max it rises again, as torch's does)

One schedule is indexed by step instead (``per_step = True``): ``lr_at(base_lr, t)`` is then the lr of
the 0-indexed optimizer step ``t``, and the trainer reports every step (see :class:`RangeTest`).

    range_test(end_lr, steps)     lr_t = base_lr * (end_lr / base_lr)^(min(t, steps - 1) / (steps - 1))
                                  (the learning-rate range test; torch-lr-finder's ExponentialLR)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any

from dlexp.optim.base import check_int, check_nonnegative, check_positive, check_unit
from dlexp.registry import Registry


class Schedule:
    """Base: subclasses define ``_next(lr, base_lr, epoch)``, torch's recursive ``get_lr``."""

    name = ""
    per_step = False  # True: lr_at is indexed by optimizer step, not by epoch

    def __init__(self, hyperparams: dict[str, Any]):
        self.hyperparams = hyperparams
        self._memo: dict[float, list[float]] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({args})"

    def lr_at(self, base_lr: float, epoch: int) -> float:
        """Learning rate during 0-indexed ``epoch`` for a run whose base lr is ``base_lr``."""
        epoch = _check_epoch(epoch)
        base_lr = float(base_lr)
        lrs = self._memo.setdefault(base_lr, [base_lr])
        while len(lrs) <= epoch:
            lrs.append(self._next(lrs[-1], base_lr, len(lrs)))
        return lrs[epoch]

    def _next(self, lr: float, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def stop_rule(self) -> SmoothedLossStop | None:
        """A fresh rule that ends training early (the range test's), or None."""
        return None


def _check_epoch(epoch: object) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, Integral) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0 (got {epoch!r})")
    return int(epoch)


SCHEDULES: Registry[Schedule] = Registry("schedule")


@SCHEDULES.register("constant")
class Constant(Schedule):
    """The base learning rate throughout."""

    name = "constant"

    def __init__(self):
        super().__init__({})

    def lr_at(self, base_lr: float, epoch: int) -> float:
        _check_epoch(epoch)
        return float(base_lr)


@SCHEDULES.register("step")
class Step(Schedule):
    """torch StepLR: multiply by ``gamma`` every ``step_size`` epochs."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_positive("gamma", gamma)
        super().__init__({"step_size": self.step_size, "gamma": self.gamma})

    def _next(self, lr: float, base_lr: float, epoch: int) -> float:
        return lr * self.gamma if epoch % self.step_size == 0 else lr


@SCHEDULES.register("multistep")
class MultiStep(Schedule):
    """torch MultiStepLR: multiply by ``gamma`` at each epoch listed in ``milestones``."""

    name = "multistep"

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1):
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise ValueError(f"milestones must be a list of epochs (got {milestones!r})")
        self.milestones = [check_int(f"milestones[{i}]", m, 1) for i, m in enumerate(milestones)]
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing (got {self.milestones})")
        self.gamma = check_positive("gamma", gamma)
        self._set = frozenset(self.milestones)
        super().__init__({"milestones": self.milestones, "gamma": self.gamma})

    def _next(self, lr: float, base_lr: float, epoch: int) -> float:
        return lr * self.gamma if epoch in self._set else lr


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """torch ExponentialLR: multiply by ``gamma`` every epoch."""

    name = "exponential"

    def __init__(self, gamma: float):
        self.gamma = check_positive("gamma", gamma)
        super().__init__({"gamma": self.gamma})

    def _next(self, lr: float, base_lr: float, epoch: int) -> float:
        return lr * self.gamma


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """torch CosineAnnealingLR: half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs."""

    name = "cosine"

    def __init__(self, T_max: int, eta_min: float = 0.0):
        self.T_max = check_int("T_max", T_max, 1)
        self.eta_min = check_nonnegative("eta_min", eta_min)
        super().__init__({"T_max": self.T_max, "eta_min": self.eta_min})

    def _next(self, lr: float, base_lr: float, epoch: int) -> float:
        t_max, eta_min = self.T_max, self.eta_min
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            return lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
        return (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1) / t_max)) * (
            lr - eta_min
        ) + eta_min


class SmoothedLoss:
    """fastai's smoothed training loss: an exponential moving average of the mini-batch losses,
    debiased like Adam's moments, ``avg_i = beta avg_(i-1) + (1 - beta) loss_i``, smoothed
    ``avg_i / (1 - beta^i)`` (i counts from 1)."""

    def __init__(self, beta: float = 0.98):
        self.beta = check_unit("smoothing", beta, include_one=False)
        self.avg = 0.0
        self.count = 0

    def update(self, loss: float) -> float:
        """Add one mini-batch loss; return the smoothed loss so far."""
        self.count += 1
        self.avg = self.beta * self.avg + (1.0 - self.beta) * float(loss)
        return self.avg / (1.0 - self.beta**self.count)

    def series(self, losses: Sequence[float]) -> list[float]:
        """The smoothed value after each of ``losses``, from a fresh start."""
        fresh = SmoothedLoss(self.beta)
        return [fresh.update(v) for v in losses]


class SmoothedLossStop:
    """Stops the range test after ``steps`` steps, or as soon as the smoothed loss exceeds
    ``factor`` × its lowest value so far (fastai's ``stop_div``: the loss has blown up).

    ``update(loss)`` returns None to go on or the reason to stop. Its state round-trips through
    :meth:`state_dict` so a resumed range test stops where an uninterrupted one would.
    """

    def __init__(self, steps: int, factor: float, beta: float):
        self.steps, self.factor = steps, factor
        self.smoothed = SmoothedLoss(beta)
        self.best = math.inf

    def update(self, loss: float) -> str | None:
        value = self.smoothed.update(loss)
        if value > self.factor * self.best:
            return f"smoothed loss {value:.4g} > {self.factor:g} × its minimum {self.best:.4g}"
        self.best = min(self.best, value)
        if self.smoothed.count >= self.steps:
            return f"end of the range test ({self.steps} steps)"
        return None

    def state_dict(self) -> dict[str, float]:
        return {"avg": self.smoothed.avg, "count": self.smoothed.count, "best": self.best}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.smoothed.avg, self.smoothed.count = float(state["avg"]), int(state["count"])
        self.best = float(state["best"])


@SCHEDULES.register("range_test")
class RangeTest(Schedule):
    """The learning-rate range test (Smith 2017; fastai's ``lr_find``): the lr grows exponentially
    from the optimizer's lr to ``end_lr`` over ``steps`` optimizer steps, one step at a time.

    Training stops after ``steps`` steps, or earlier once the smoothed mini-batch loss (see
    :class:`SmoothedLoss`, ``smoothing`` = beta) exceeds ``stop_factor`` × its minimum, fastai's
    defaults being 100 steps, 4 and 0.98.
    """

    name = "range_test"
    per_step = True

    def __init__(self, end_lr: float, steps: int = 100, stop_factor: float = 4.0, smoothing: float = 0.98):
        self.end_lr = check_positive("end_lr", end_lr)
        self.steps = check_int("steps", steps, 2)
        self.stop_factor = check_positive("stop_factor", stop_factor)
        if self.stop_factor <= 1:
            raise ValueError(f"stop_factor must be > 1 (got {stop_factor!r})")
        self.smoothing = check_unit("smoothing", smoothing, include_one=False)
        super().__init__({"end_lr": self.end_lr, "steps": self.steps, "stop_factor": self.stop_factor,
                          "smoothing": self.smoothing})

    def lr_at(self, base_lr: float, epoch: int) -> float:
        step = min(_check_epoch(epoch), self.steps - 1)  # per-step: ``epoch`` is the 0-indexed step
        base_lr = float(base_lr)
        return base_lr * (self.end_lr / base_lr) ** (step / (self.steps - 1))

    def stop_rule(self) -> SmoothedLossStop:
        return SmoothedLossStop(self.steps, self.stop_factor, self.smoothing)


def make_schedule(spec: Any) -> Schedule:
    """Build a schedule from a name, a ``{"name": ..., **args}`` mapping, or None (constant)."""
    if spec is None:
        return Constant()
    return SCHEDULES.build(spec)
