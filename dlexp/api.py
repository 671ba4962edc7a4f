"""A small Python API for notebooks: build a model, fit it, predict, evaluate.

    from dlexp.api import build_model, fit, evaluate
    model = build_model(2, [32, 32], 1, activation="tanh", output_activation="sigmoid", seed=0)
    history = fit(model, X, y, loss="bce", optimizer={"name": "adam", "lr": 0.01}, epochs=50, seed=0)
    evaluate(model, X, y, loss="bce")   # {'loss': ..., 'accuracy': ...}

    run = load_run("runs/iris-20261130-120000")   # a completed `dlexp train` run
    run.predict("new.csv")                        # class names (or values), one per row
    run.predict_proba(frame)                      # a CSV path, a DataFrame or raw feature rows
    run.evaluate("labelled.csv")                  # loss, acc / rmse, mae, r2, confusion matrix

``y`` is int class labels (n,) for classification or floats (n,) / (n, k) for regression. The
same seed gives bit-identical results. The CLI's `dlexp train` runs the same Trainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlexp.inference import TrainedRun, load_run
from dlexp.nn import MLP, make_loss
from dlexp.optim import make_optimizer
from dlexp.optim.schedules import make_schedule
from dlexp.trainer import Callback, Split, Trainer
from dlexp.trainer import evaluate as evaluate_split

__all__ = ["TrainedRun", "build_model", "evaluate", "fit", "load_run", "predict"]


def build_model(n_inputs: int, hidden: list[int], n_outputs: int, *, seed: int = 0, **kwargs: Any) -> MLP:
    """An :class:`~dlexp.nn.MLP` whose initial weights come from ``seed`` (other kwargs as MLP)."""
    return MLP(n_inputs, hidden, n_outputs, rng=np.random.default_rng(seed), **kwargs)


def _split(model: MLP, loss, X, y) -> Split:
    X = np.ascontiguousarray(X, dtype=model.dtype)
    y = np.asarray(y)
    labels = y if (y.ndim == 1 and y.dtype.kind in "iu") else None
    if y.ndim == 1 and labels is None:
        y = y.reshape(-1, 1)
    return Split(X, loss.targets(y, model.sizes[-1], model.dtype), labels)


def fit(model: MLP, X, y, *, loss="mse", optimizer="adam", epochs: int = 10, batch_size: int | str = 32,
        shuffle: bool = True, X_val=None, y_val=None, l1: float = 0.0, l2: float = 0.0, schedule=None,
        clip_grad_norm: float | None = None, grad_every: int = 1, seed: int = 0,
        callbacks: list[Callback] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns the per-epoch metric rows (epoch 0 = at initialisation)."""
    loss_fn = make_loss(loss)
    shuffle_seq, dropout_seq = np.random.SeedSequence(seed).spawn(2)
    trainer = Trainer(model, loss_fn, make_optimizer(optimizer), make_schedule(schedule), epochs=epochs,
                      batch_size=batch_size, shuffle=shuffle, l1=l1, l2=l2, clip_grad_norm=clip_grad_norm,
                      grad_every=grad_every, shuffle_rng=np.random.default_rng(shuffle_seq),
                      dropout_rng=np.random.default_rng(dropout_seq), callbacks=callbacks)
    val = _split(model, loss_fn, X_val, y_val) if X_val is not None else None
    trainer.fit(_split(model, loss_fn, X, y), val)
    return trainer.history


def evaluate(model: MLP, X, y, *, loss="mse") -> dict[str, float]:
    """Mean data loss (evaluation mode) and, for integer labels, accuracy — as ``dlexp train`` logs them."""
    loss_fn = make_loss(loss)
    split = _split(model, loss_fn, X, y)
    value, acc = evaluate_split(model, loss_fn, split)
    return {"loss": value, "accuracy": acc} if split.labels is not None else {"loss": value}


def predict(model: MLP, X) -> np.ndarray:
    """Class indices (classification) or outputs (regression)."""
    return model.predict(np.asarray(X, dtype=model.dtype))
