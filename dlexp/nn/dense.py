"""Dense (fully connected) layer, forward and backward side by side, over preallocated arrays.

Shapes: x (n, fan_in), W (fan_in, fan_out), b (fan_out,), z and dL/dz (n, fan_out). The bias
gradient is ``ones @ dL/dz`` (a gemv), much cheaper than ``sum(axis=0)`` on small batches.
"""

from __future__ import annotations

import numpy as np


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, z: np.ndarray) -> np.ndarray:
    """z = x·W + b, written into ``z`` (``b`` None: no bias, as before a BatchNorm)."""
    np.matmul(x, W, out=z)
    if b is not None:
        z += b
    return z


def dense_backward(x: np.ndarray, W: np.ndarray, grad_z: np.ndarray, grad_W: np.ndarray, grad_b: np.ndarray | None,
                   ones: np.ndarray, grad_x: np.ndarray | None) -> None:
    """dL/dW = xᵀ·dL/dz, dL/db = 1ᵀ·dL/dz, dL/dx = dL/dz·Wᵀ (``grad_x`` None: not needed, the input layer)."""
    np.matmul(x.T, grad_z, out=grad_W)
    if grad_b is not None:
        np.matmul(ones, grad_z, out=grad_b)
    if grad_x is not None:
        np.matmul(grad_z, W.T, out=grad_x)
