"""The training loop: mini-batches, penalties, clipping, the optimizer step, and per-layer records.

The trainer computes and hands records to callbacks; it never prints or writes files. Its whole
state (parameters, buffers, optimizer state, counters, the permutation of the current epoch and
both generators' states) round-trips through :meth:`Trainer.checkpoint_arrays` /
:meth:`Trainer.restore`, so a run stopped after any step resumes bit for bit.

Counters: ``step`` counts optimizer updates from 1; ``epoch`` counts finished passes from 1
(epoch 0 is the evaluation at initialisation). Gradient rows are logged on step 1 and every
``grad_every`` steps after it, with the gradient the optimizer receives *before* clipping (data
loss gradient plus the L1/L2 term). Histogram rows (``histograms_every`` > 0) follow the same
rule with their own interval and are taken before the update (:mod:`dlexp.nn.histograms`).

A per-step schedule (``schedule.per_step``, the learning-rate range test) sets the lr of every
step; the trainer then also hands each step's lr and mini-batch loss to ``Callback.on_step`` and
lets the schedule's stop rule end the run early (status ``completed``, ``stopped_early``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlexp.callbacks import Callback, EarlyStopping
from dlexp.evaluation import Split, evaluate, predicted_classes, split_metrics
from dlexp.nn.histograms import LayerHistograms
from dlexp.optim.clip import clip_by_global_norm, clip_by_value
from dlexp.optim.norms import UpdateNorms
from dlexp.rundir import checkpoint, schema
from dlexp.rundir.schema import split_metric_names
from dlexp.rundir.steplog import StepLog

__all__ = ["Callback", "EarlyStopping", "FitResult", "Split", "Trainer", "evaluate", "predicted_classes",
           "split_metric_names", "split_metrics"]


@dataclass
class FitResult:
    status: str  # completed | interrupted | diverged
    epochs: int
    steps: int
    stopped_early: bool = False
    stop_reason: str | None = None  # why a stop rule ended the run early
    final: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    divergence: dict[str, Any] | None = None


class Trainer:
    """Trains ``model`` on a train :class:`Split`, evaluating on train and val after each epoch.

    Args:
        model: an :class:`~dlexp.nn.MLP`.
        loss: a loss from :mod:`dlexp.nn.losses`.
        optimizer: from :func:`dlexp.optim.make_optimizer`.
        schedule: from :func:`dlexp.optim.schedules.make_schedule` (lr per epoch, or per step).
        epochs, batch_size (int, or ``"full"``), shuffle, l1, l2, clip_grad_norm, clip_grad_value,
        early_stopping (dict: monitor, patience, min_delta, or None), grad_every, histograms_every (0: off):
        as in the config.
        eval_every: evaluate the splits after every ``eval_every``-th epoch and the last one; other epochs'
            rows hold NaN split metrics, and neither early stopping nor the divergence check looks at them
            (patience counts evaluated epochs).
        divergence_loss_factor, divergence_grad_norm: ``training.divergence``'s ``loss_factor`` and
            ``grad_norm_max``; None (the default here) turns a rule off.
        shuffle_rng, dropout_rng: the only randomness used while training.
        test: a split only evaluated (its metrics in every epoch row), never used to choose anything.
    """

    def __init__(self, model, loss, optimizer, schedule, *, epochs: int, batch_size, shuffle: bool = True,
                 l1: float = 0.0, l2: float = 0.0, clip_grad_norm: float | None = None,
                 clip_grad_value: float | None = None, early_stopping: dict | None = None,
                 grad_every: int = 1, histograms_every: int = 0, divergence_loss_factor: float | None = None,
                 divergence_grad_norm: float | None = None, shuffle_rng: np.random.Generator,
                 dropout_rng: np.random.Generator, callbacks: list[Callback] | None = None,
                 test: Split | None = None, eval_every: int = 1):
        self.model = model
        self.test = test
        self.loss = loss
        self.optimizer = optimizer
        self.schedule = schedule
        self.epochs = int(epochs)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.l1, self.l2 = float(l1), float(l2)
        self.clip_grad_norm = clip_grad_norm
        self.clip_grad_value = clip_grad_value
        self.early_stopping = early_stopping
        self.stopper = EarlyStopping(early_stopping)  # also keeps the best epoch row for the summary
        self.grad_every = int(grad_every)
        self.eval_every = int(eval_every)
        self.histograms_every = int(histograms_every)
        self._histograms = LayerHistograms(model) if self.histograms_every else None
        self.divergence_loss_factor = divergence_loss_factor
        self.divergence_grad_norm = divergence_grad_norm
        self.shuffle_rng = shuffle_rng
        self.dropout_rng = dropout_rng
        self.callbacks = list(callbacks or [])
        self.opt_state = optimizer.init(model.params)
        # counters and resumable in-epoch state
        self.step = 0
        self.epoch = 0  # finished epochs
        self.batch_index = 0  # next batch within the current epoch
        self.perm: np.ndarray | None = None
        self.grad_norm_sum = 0.0
        self.grad_norm_count = 0
        self.history: list[dict[str, Any]] = []
        self._stop_reason: str | None = None
        self._lr_cache: tuple[int, float] = (-1, 0.0)
        self.stop_rule = schedule.stop_rule()
        self._stopped_by_rule: str | None = None
        # (index in memory order, layer, param) in row order: layer by layer, W, b, gamma, beta
        parsed = [(k, int(name.split(".")[1]), name.split(".")[2]) for k, name in enumerate(model.memory_order)]
        self._row_order = sorted(parsed, key=lambda r: (r[1], _PARAM_ORDER[r[2]]))
        self._row_index = np.array([k for k, _, _ in self._row_order], dtype=np.intp)
        activations = [model.activation.name] * (model.n_layers - 1) + [model.output_activation]
        self.step_log = StepLog([layer for _, layer, _ in self._row_order], [param for _, _, param in self._row_order],
                                activations)
        self._scratch = np.empty_like(model.params)
        self._update_norms = UpdateNorms(model.segment_starts, model.n_params)
        self._row_listeners: list[Callback] = []  # listeners that take each logged step's rows as dicts

    # -- control ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "interrupted") -> None:
        """Ask the loop to stop after the current step (safe from a signal handler)."""
        self._stop_reason = reason

    def current_lr(self) -> float:
        """The scheduled learning rate of the current epoch (computed once per epoch), or of the current
        step, from the optimizer's base rate ``optimizer.lr``."""
        if self.schedule.per_step:
            return float(self.schedule.lr_at(self.optimizer.lr, max(self.step - 1, 0)))
        if self._lr_cache[0] != self.epoch:
            self._lr_cache = (self.epoch, float(self.schedule.lr_at(self.optimizer.lr, self.epoch)))
        return self._lr_cache[1]

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, split: Split | None) -> tuple[float, float]:
        return evaluate(self.model, self.loss, split)

    def epoch_row(self, train: Split, val: Split | None, test: Split | None = None,
                  evaluate: bool = True) -> dict[str, Any]:
        """The metrics row of the current epoch; its columns are ``rundir.metrics_columns``.

        ``evaluate=False`` (an epoch that ``eval_every`` skips): the splits' metrics are NaN, the rest
        (penalty, lr, grad_norm_total) is filled as always.
        """
        classification = train.labels is not None
        splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
        values = {prefix: split_metrics(self.model, self.loss, split if evaluate else None,
                                        classification=classification)
                  for prefix, split in splits.items()}
        # train_loss, val_loss, [test_loss,] train_acc, val_acc, ...: metrics.csv's order
        metrics = [values[prefix][name] for name in split_metric_names(classification) for prefix in splits]
        penalty = self.model.penalty(self.l1, self.l2)
        last = self.step if self.schedule.per_step else self.epoch  # the lr of the last step or epoch
        lr = float(self.schedule.lr_at(self.optimizer.lr, max(last - 1, 0)))
        grad_norm_total = (self.grad_norm_sum / self.grad_norm_count) if self.grad_norm_count else float("nan")
        columns = schema.metrics_columns(classification, test is not None)
        return dict(zip(columns, (self.epoch, self.step, *metrics, penalty, lr, grad_norm_total), strict=True))

    # -- the loop ---------------------------------------------------------------------------

    def _batches_per_epoch(self, n: int) -> tuple[int, int]:
        size = n if self.batch_size == "full" else min(int(self.batch_size), n)
        count = math.ceil(n / size)
        if self.model.batchnorm and count > 1 and n - (count - 1) * size == 1:
            count -= 1  # BatchNorm cannot train on a batch of one: drop that last single sample
        return size, count

    def fit(self, train: Split, val: Split | None = None) -> FitResult:
        """Train until ``epochs`` finished epochs, early stopping, divergence or a stop request.

        Floating-point warnings are silenced: non-finite values are detected explicitly and end the
        run as ``diverged`` with the step and the first offending parameter.
        """
        self._row_listeners = [cb for cb in self.callbacks if type(cb).on_step_rows is not Callback.on_step_rows]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            try:
                return self._fit(train, val, self.test)
            finally:
                self._hand_over_steps()  # the steps logged since the last epoch end (a stopped run)

    def _fit(self, train: Split, val: Split | None, test: Split | None) -> FitResult:
        model = self.model
        self._has_val = val is not None and len(val) > 0
        size, count = self._batches_per_epoch(len(train))
        xbuf = np.empty((size, train.X.shape[1]), dtype=model.dtype)
        tbuf = np.empty((size, *train.targets.shape[1:]), dtype=train.targets.dtype)
        if self.epoch == 0 and self.step == 0 and not self.history:
            row = self.epoch_row(train, val, test)
            self._record_epoch(row)
            if not self._finite_row(row):
                return self._diverged(row, "initial loss is not finite", None)
        while self.epoch < self.epochs:
            if self.perm is None:
                n = len(train)
                self.perm = self.shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
                self.batch_index = 0
                self.grad_norm_sum, self.grad_norm_count = 0.0, 0
            while self.batch_index < count:
                start = self.batch_index * size
                idx = self.perm[start : start + size]
                if len(idx) == size:
                    Xb = np.take(train.X, idx, axis=0, out=xbuf)
                    tb = np.take(train.targets, idx, axis=0, out=tbuf)
                else:
                    Xb, tb = train.X[idx], train.targets[idx]
                diverged = self._train_step(Xb, tb)
                self.batch_index += 1
                if diverged is not None:
                    return diverged
                if self._stop_reason is not None:
                    return self._result(self._stop_reason)
            self.epoch += 1
            self.perm = None
            self._hand_over_steps()
            evaluate = self.epoch % self.eval_every == 0 or self.epoch == self.epochs
            row = self.epoch_row(train, val, test, evaluate)
            self._record_epoch(row)
            if evaluate and not self._finite_row(row):
                return self._diverged(row, "loss is not finite after the epoch", self._first_bad_param())
            for cb in (self.stopper, *self.callbacks) if evaluate else self.callbacks:
                cb.on_epoch_end(self)
            if evaluate and self.stopper.stop:
                result = self._result("completed")
                result.stopped_early = True
                return result
            if self._stop_reason is not None:
                return self._result(self._stop_reason)
        return self._result("completed")

    def _train_step(self, Xb: np.ndarray, tb: np.ndarray) -> FitResult | None:
        model = self.model
        self.step += 1
        lr = self.current_lr()
        loss_value = model.loss_and_grads(Xb, tb, self.loss, training=True, rng=self.dropout_rng)
        if self.l1 or self.l2:
            model.add_penalty_grad(self.l1, self.l2)
        log = (self.step - 1) % self.grad_every == 0
        # The total norm is taken from the per-parameter norms (as torch's clip_grad_norm_ does), on
        # every step alike, so that logging never changes the trajectory.
        grad_squares = model.segment_squares(model.grads, self._scratch)
        total_norm = math.sqrt(float(grad_squares.sum()))
        if not (math.isfinite(loss_value) and math.isfinite(total_norm)):
            if not math.isfinite(loss_value):
                reason, layer = "loss is not finite", self._first_bad_param()
            else:  # an Inf/NaN entry, or entries so large that the sum of their squares overflows
                reason, layer = "gradient is not finite", self._first_bad_segment(grad_squares)
            return self._diverged({"epoch": self.epoch + 1, "step": self.step, "train_loss": loss_value}, reason, layer)
        exploded = self._exploded(loss_value, total_norm, grad_squares)
        if exploded is not None:
            return self._diverged({"epoch": self.epoch + 1, "step": self.step, "train_loss": loss_value}, *exploded)
        self.grad_norm_sum += total_norm
        self.grad_norm_count += 1
        if self._histograms is not None and (self.step - 1) % self.histograms_every == 0:
            rows = self._histograms.rows(self.step, self.epoch + 1)
            for cb in self.callbacks:
                cb.on_histograms(rows)
        if log:  # before the update, while the workspace holds this step's forward pass
            model.layer_statistics(self.step_log.layers[self.step_log.count])
        if self.clip_grad_norm is not None:
            clip_by_global_norm(model.grads, self.clip_grad_norm, total_norm)
        if self.clip_grad_value is not None:
            clip_by_value(model.grads, self.clip_grad_value)
        self.optimizer.step(model.params, model.grads, self.opt_state, lr, norms=self._update_norms if log else None)
        if log:
            param_norms, update_norms = self._update_norms.result()
            if not np.isfinite(param_norms).all():
                bad = self._first_bad_param()  # None: huge but finite (the norm overflowed); the next loss tells
                if bad is not None:
                    return self._diverged({"epoch": self.epoch + 1, "step": self.step, "train_loss": loss_value},
                                          "a parameter is not finite after the update", bad)
            self._log_step(np.sqrt(grad_squares), param_norms, update_norms)
        if self.schedule.per_step:
            row = dict(zip(schema.STEP_COLUMNS, (self.step, self.epoch + 1, lr, loss_value), strict=True))
            for cb in self.callbacks:
                cb.on_step(row)
        if self.stop_rule is not None and self._stop_reason is None:
            reason = self.stop_rule.update(loss_value)
            if reason is not None:
                self._stopped_by_rule = reason
                self._stop_reason = "completed"
        return None

    def _log_step(self, grad_norms: np.ndarray, param_norms: np.ndarray, update_norms: np.ndarray) -> None:
        """Put a logged step's gradient rows in the step log (its layer rows are already there)."""
        log = self.step_log
        slot = log.count
        log.steps[slot] = self.step
        log.epochs[slot] = self.epoch + 1  # the epoch this step belongs to
        rows = log.grads[slot]
        index = self._row_index
        rows[:, 0] = grad_norms[index]
        norms = param_norms[index]
        rows[:, 1] = norms
        ratio = np.full(len(index), np.nan)
        np.divide(update_norms[index], norms, out=ratio, where=norms > 0)
        rows[:, 2] = ratio
        log.count += 1
        if self._row_listeners:
            grad_rows, layer_rows = log.rows(slot)
            for cb in self._row_listeners:
                cb.on_step_rows(grad_rows, layer_rows)
        if log.full:
            self._hand_over_steps()

    def _hand_over_steps(self) -> None:
        """Give the logged steps to the listeners (``on_step_log``) and empty the log."""
        if self.step_log.count:
            for cb in self.callbacks:
                cb.on_step_log(self.step_log)
            self.step_log.clear()

    def _record_epoch(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        for cb in self.callbacks:
            cb.on_epoch(row)

    def _finite_row(self, row: dict[str, Any]) -> bool:
        values = [row["train_loss"]] + ([row["val_loss"]] if self._has_val else [])
        return all(math.isfinite(v) for v in values)

    def _first_bad(self, flat: np.ndarray) -> str | None:
        for name in self.model.param_names:
            if not np.isfinite(self.model.view_of(flat, name)).all():
                return name
        return None

    def _first_bad_segment(self, squares: np.ndarray) -> str | None:
        """The first parameter, in layer order, whose sum of squared entries is not finite."""
        for k, _layer, _param in self._row_order:
            if not math.isfinite(squares[k]):
                return self.model.memory_order[k]
        return None

    def _exploded(self, loss_value: float, total_norm: float, squares: np.ndarray) -> tuple[str, str | None] | None:
        """(reason, parameter) when a finite step breaks a ``training.divergence`` rule, else None."""
        factor, bound = self.divergence_loss_factor, self.divergence_grad_norm
        initial = self.history[0]["train_loss"] if self.history else math.nan
        if factor is not None and initial > 0 and loss_value > factor * initial:
            reason = (f"loss {loss_value:.3g} is above {factor:g} × the initial loss {initial:.3g} "
                      "(training.divergence.loss_factor)")
            return reason, None
        if bound is not None and total_norm > bound:
            largest = self.model.memory_order[int(np.argmax(squares))]
            return f"gradient norm {total_norm:.3g} is above {bound:g} (training.divergence.grad_norm_max)", largest
        return None

    def _first_bad_param(self) -> str | None:
        return self._first_bad(self.model.params)

    def _diverged(self, row: dict[str, Any], reason: str, layer: str | None) -> FitResult:
        result = self._result("diverged")
        result.divergence = {"step": self.step, "epoch": row.get("epoch", self.epoch), "reason": reason,
                             "layer": layer}
        return result

    def _result(self, status: str) -> FitResult:
        final = self.history[-1] if self.history else {}
        best = dict(self.stopper.best)
        result = FitResult(status=status, epochs=self.epoch, steps=self.step, final=dict(final), best=best)
        if status == "completed" and self._stopped_by_rule is not None:
            result.stopped_early, result.stop_reason = True, self._stopped_by_rule
        return result

    # -- checkpoints (dlexp.rundir.checkpoint) ------------------------------------------------

    def checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to continue bit for bit, as named arrays for ``.npz``."""
        return checkpoint.trainer_arrays(self)

    def restore(self, arrays: dict[str, np.ndarray], n_train: int | None = None) -> None:
        """Load :meth:`checkpoint_arrays`' output (see :func:`dlexp.rundir.checkpoint.restore_trainer`)."""
        checkpoint.restore_trainer(self, arrays, n_train)


_PARAM_ORDER = {"W": 0, "b": 1, "gamma": 2, "beta": 3}
