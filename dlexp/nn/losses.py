r"""Losses: value and gradient side by side, means exactly as PyTorch's defaults (reduction='mean').

Every loss sees the model's output ``out`` of shape (n, k) and returns the mean loss; ``grad``
writes dL/d(out) into a preallocated (n, k) array.

Elementwise losses average over samples *and* outputs (N = n·k), like torch's MSELoss/L1Loss/
HuberLoss/BCEWithLogitsLoss; cross-entropies average over samples only (n), like CrossEntropyLoss.

Classification losses are *fused*: ``out`` holds logits and the output activation (sigmoid for
bce, softmax for cce and sparse_cce) is folded into a log-sum-exp formula, so nothing overflows
and the gradient is (p − y)/N.

| name               | targets             | loss (before the mean)                         | d/d out               |
|--------------------|---------------------|------------------------------------------------|-----------------------|
| mse                | float (n, k)        | (o − y)²                                       | 2 (o − y)             |
| mae                | float (n, k)        | \|o − y\|                                      | sign(o − y)           |
| huber(delta=1)     | float (n, k)        | ½d² if \|d\| < δ else δ(\|d\| − ½δ), d = o − y | d or δ·sign(d)        |
| bce (log_loss)     | 0/1 float (n, k)    | max(z,0) − z·y + log(1 + e^−\|z\|)             | σ(z) − y              |
| cce                | one-hot/probs (n,C) | Σ_c y_c (lse(z) − z_c)                         | softmax(z)·Σy − y     |
| sparse_cce         | int labels (n,)     | lse(z) − z_y                                   | softmax(z) − onehot   |
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.registry import Registry

LOSSES: Registry[Loss] = Registry("loss")


class Loss:
    name = "loss"
    #: activation the model applies to get predictions; fused losses take logits instead
    output_activation = "identity"
    fused = False
    classification = False
    params: dict = {}  # noqa: RUF012 (instances assign their own dict; this one is never mutated)

    def targets(self, y: np.ndarray, n_outputs: int, dtype) -> np.ndarray:
        """Convert dataset targets (int labels or float (n, k)) to what this loss expects."""
        if y.ndim == 1 and y.dtype.kind in "iu":  # class labels used with an elementwise loss
            if n_outputs == 1:
                return y.astype(dtype).reshape(-1, 1)
            return one_hot(y, n_outputs, dtype)
        return np.asarray(y, dtype=dtype).reshape(len(y), -1)

    def value(self, out: np.ndarray, t: np.ndarray) -> float:
        raise NotImplementedError

    def value_and_grad(self, out: np.ndarray, t: np.ndarray, grad: np.ndarray) -> float:
        raise NotImplementedError

    def spec(self) -> dict:
        return {"name": self.name, **self.params}


def one_hot(labels: np.ndarray, n_classes: int, dtype) -> np.ndarray:
    out = np.zeros((len(labels), n_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


@LOSSES.register("mse")
class MSE(Loss):
    """mean((o − y)²);  grad 2(o − y)/N."""

    name = "mse"

    def value(self, out, t):
        d = out - t
        return float(np.vdot(d, d) / d.size)

    def value_and_grad(self, out, t, grad):
        np.subtract(out, t, out=grad)
        value = float(np.vdot(grad, grad) / grad.size)
        np.multiply(grad, 2.0 / grad.size, out=grad)
        return value


@LOSSES.register("mae", "l1")
class MAE(Loss):
    """mean(|o − y|);  grad sign(o − y)/N (0 where o = y, as torch)."""

    name = "mae"

    def value(self, out, t):
        return float(np.abs(out - t).mean())

    def value_and_grad(self, out, t, grad):
        np.subtract(out, t, out=grad)
        value = float(np.abs(grad).sum() / grad.size)
        np.sign(grad, out=grad)
        np.multiply(grad, 1.0 / grad.size, out=grad)
        return value


@LOSSES.register("huber")
class Huber(Loss):
    """torch.nn.HuberLoss: ½d² where |d| < delta, else delta(|d| − ½delta);  grad clip(d, ±delta)/N."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not isinstance(delta, (int, float)) or not (delta > 0) or not math.isfinite(delta):
            raise ValueError(f"delta must be a finite number > 0 (got {delta!r})")
        self.delta = float(delta)
        self.params = {"delta": self.delta}

    def value(self, out, t):
        d = np.abs(out - t)
        quad = d < self.delta
        return float(np.where(quad, 0.5 * d * d, self.delta * (d - 0.5 * self.delta)).mean())

    def value_and_grad(self, out, t, grad):
        value = self.value(out, t)
        np.subtract(out, t, out=grad)
        np.clip(grad, -self.delta, self.delta, out=grad)
        np.multiply(grad, 1.0 / grad.size, out=grad)
        return value


def _sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.exp(np.negative(z, out=out), out=out)
    np.add(out, 1.0, out=out)
    return np.reciprocal(out, out=out)


@LOSSES.register("bce", "log_loss", "binary_crossentropy")
class BCE(Loss):
    """torch.nn.BCEWithLogitsLoss on logits z: mean(max(z,0) − z·y + log1p(exp(−|z|)));  grad (σ(z) − y)/N."""

    name = "bce"
    output_activation = "sigmoid"
    fused = True
    classification = True

    def value(self, out, t):
        elementwise = np.maximum(out, 0.0) - out * t + np.log1p(np.exp(-np.abs(out)))
        return float(elementwise.sum() / out.size)

    def value_and_grad(self, out, t, grad):
        value = self.value(out, t)
        _sigmoid(out, out=grad)
        np.subtract(grad, t, out=grad)
        np.multiply(grad, 1.0 / grad.size, out=grad)
        return value


def log_softmax_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shifted exp e = exp(z − max), lse per row), both stable for any finite z."""
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    return e / s, (m + np.log(s))


@LOSSES.register("cce", "categorical_crossentropy", "cross_entropy")
class CCE(Loss):
    """torch.nn.CrossEntropyLoss with probability targets: mean_i Σ_c y_ic (lse(z_i) − z_ic);
    grad (softmax(z)·Σ_c y − y)/n, i.e. (p − y)/n for one-hot rows."""

    name = "cce"
    output_activation = "softmax"
    fused = True
    classification = True

    def targets(self, y, n_outputs, dtype):
        if y.ndim == 1:
            return one_hot(y, n_outputs, dtype)
        return np.asarray(y, dtype=dtype)

    def value(self, out, t):
        _, lse = log_softmax_parts(out)
        return float((t * (lse - out)).sum() / len(out))

    def value_and_grad(self, out, t, grad):
        p, lse = log_softmax_parts(out)
        value = float((t * (lse - out)).sum() / len(out))
        np.multiply(p, t.sum(axis=1, keepdims=True), out=grad)
        np.subtract(grad, t, out=grad)
        np.multiply(grad, 1.0 / len(out), out=grad)
        return value


@LOSSES.register("sparse_cce", "sparse_categorical_crossentropy")
class SparseCCE(Loss):
    """torch.nn.CrossEntropyLoss with integer labels: mean_i (lse(z_i) − z_{i,y_i});  grad (p − onehot)/n."""

    name = "sparse_cce"
    output_activation = "softmax"
    fused = True
    classification = True

    def targets(self, y, n_outputs, dtype):
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise ValueError("sparse_cce needs integer class labels")
        return y.astype(np.int64, copy=False)

    def value(self, out, t):
        _, lse = log_softmax_parts(out)
        picked = out[np.arange(len(out)), t]
        return float((lse[:, 0] - picked).sum() / len(out))

    def value_and_grad(self, out, t, grad):
        p, lse = log_softmax_parts(out)
        rows = np.arange(len(out))
        value = float((lse[:, 0] - out[rows, t]).sum() / len(out))
        np.copyto(grad, p)
        grad[rows, t] -= 1.0
        np.multiply(grad, 1.0 / len(out), out=grad)
        return value


def make_loss(spec) -> Loss:
    return LOSSES.build(spec)
