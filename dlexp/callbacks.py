"""What the training loop hands records to, and the one listener that changes training: early stopping.

As in Keras and Lightning, the loop calls listeners; a listener that decides something (here: stop)
carries its own ``state_dict()``, which the trainer's checkpoint saves, so a resumed run decides
exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlexp.rundir.steplog import StepLog
    from dlexp.trainer import Trainer


class Callback:
    """Receives records as training goes. Every method is optional."""

    def on_epoch(self, row: dict[str, Any]) -> None:
        """The metrics row of an epoch (epoch 0: at initialisation), as metrics.csv gets it."""

    def on_step_rows(self, grad_rows: list[dict[str, Any]], layer_rows: list[dict[str, Any]]) -> None:
        """A logged step's gradient and layer rows, right after its update. The trainer builds these
        dicts only for a listener that overrides this method; :meth:`on_step_log` is the cheap way."""

    def on_step_log(self, log: StepLog) -> None:
        """The steps logged since the last hand-over, as arrays (at the end of each epoch, when the
        log is full, and when training stops); read it before returning: it is then emptied."""

    def on_histograms(self, rows: list[dict[str, Any]]) -> None: ...

    def on_step(self, row: dict[str, Any]) -> None:
        """Every step's ``{step, epoch, lr, loss}`` (mini-batch data loss before the update); per-step
        schedules only."""

    def on_epoch_end(self, trainer: Trainer) -> None: ...


class EarlyStopping(Callback):
    """Keeps the best epoch row by ``monitor`` and, when ``patience`` is given, asks to stop after
    ``patience`` epochs without an improvement of more than ``min_delta``.

    The best row is kept whether or not stopping is on (the summary reports it). ``monitor`` is a
    metrics.csv column; a ``val_*`` monitor falls back to its ``train_*`` twin in an epoch whose
    validation value is not finite (no validation split). Accuracy is maximised, anything else
    minimised.

    Args:
        settings: ``training.early_stopping`` (monitor, patience, min_delta), or None: only track the
            best ``val_loss``.
    """

    def __init__(self, settings: dict | None = None):
        self.settings = settings
        self.best: dict[str, Any] = {}
        self.wait = 0
        self.stop = False

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.stop = self.update(trainer.history[-1])

    def update(self, row: dict[str, Any]) -> bool:
        """Take an epoch row; True when training should stop."""
        settings = self.settings or {}
        monitor = settings.get("monitor", "val_loss")
        if "val" in monitor and not math.isfinite(row.get(monitor, float("nan"))):
            monitor = monitor.replace("val", "train")
        value = row.get(monitor, float("nan"))
        maximize = monitor.endswith("acc")
        best = self.best.get(monitor)
        min_delta = settings.get("min_delta", 0.0)
        improved = best is None or (value > best + min_delta if maximize else value < best - min_delta)
        if improved:
            self.best = dict(row, monitor=monitor)
            self.best[monitor] = value
            self.wait = 0
            return False
        self.wait += 1
        return self.settings is not None and self.wait >= settings.get("patience", 10)

    def state_dict(self) -> dict[str, Any]:
        """``wait`` and ``best``, in the order the checkpoint's ``trainer.state`` holds them."""
        return {"wait": self.wait, "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.best = dict(state["best"])
        self.stop = False
