"""Gradient clipping on the flat gradient array: small transforms the trainer composes
before ``optimizer.step`` (never pasted into each optimizer).

    total = global_norm(grads)                    # log it, check it is finite
    clip_by_global_norm(grads, max_norm, total)   # then optimizer.step(...)
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.optim.base import check_positive

# torch.nn.utils.clip_grad_norm_ adds this to the norm before dividing.
NORM_EPS = 1e-6


def global_norm(grads: np.ndarray) -> float:
    """Euclidean norm of all gradients, ``sqrt(g . g)`` (one BLAS dot; accumulates in grads' dtype)."""
    flat = grads.ravel()
    return math.sqrt(float(np.dot(flat, flat)))


def clip_by_global_norm(grads: np.ndarray, max_norm: float, total_norm: float) -> None:
    """Scale ``grads`` in place by ``max_norm / (total_norm + 1e-6)`` when that is < 1.

    torch.nn.utils.clip_grad_norm_ semantics. An infinite ``total_norm`` zeroes finite
    gradients; a NaN one leaves them alone (torch would turn them into NaN). Either way the
    trainer's divergence check is what should stop the run.
    """
    max_norm = check_positive("max_norm", max_norm)
    coef = max_norm / (total_norm + NORM_EPS)
    if coef < 1.0:
        grads *= coef


def clip_by_value(grads: np.ndarray, clip_value: float) -> None:
    """Clamp every gradient into ``[-clip_value, clip_value]`` in place (torch clip_grad_value_)."""
    clip_value = check_positive("clip_value", clip_value)
    np.clip(grads, -clip_value, clip_value, out=grads)
