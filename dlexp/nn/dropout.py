"""Dropout (rate p), forward and backward side by side, in three modes.

``inverted`` (default, as PyTorch and Keras) multiplies kept units by 1/(1 − p) while training and
is the identity at evaluation; ``scale_at_inference`` (the original paper) keeps units unscaled
while training and multiplies activations by (1 − p) at evaluation; ``alpha`` (Klambauer et al.
2017, for SELU networks, as torch's ``AlphaDropout``) sets dropped units to SELU's negative
saturation −λα and applies the affine map A·x + B, A = ((1 − p)(1 + p·(λα)²))^−½, B = A·λα·p, that
keeps zero mean and unit variance; it is the identity at evaluation.

Shapes: every array (n, width). Masks are drawn from the generator passed in, never from global state.
"""

from __future__ import annotations

import numpy as np

from dlexp.nn.activations import SELU

DROPOUT_MODES = ("inverted", "scale_at_inference", "alpha")
ALPHA_DROPOUT_VALUE = SELU.SCALE * SELU.ALPHA  # λα: a dropped unit is set to −λα before the affine map


def dropout_forward(a: np.ndarray, p: float, mode: str, training: bool, rng: np.random.Generator | None,
                    uniform: np.ndarray, mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The layer's output for activations ``a`` (``a`` itself where dropout is the identity).

    Training draws ``uniform`` from ``rng`` and leaves in ``mask`` what the backward pass multiplies by.
    """
    if training:
        if rng is None:
            raise ValueError("training with dropout needs a numpy.random.Generator")
        rng.random(out=uniform, dtype=a.dtype)
        np.greater_equal(uniform, p, out=mask, casting="unsafe")
        if mode == "alpha":
            # A·(x·keep + λα·(keep − 1 + p)) = A·(keep·(x + λα) − λα·(1 − p)); the mask keeps A·keep
            scale = 1.0 / np.sqrt((1.0 - p) * (1.0 + p * ALPHA_DROPOUT_VALUE**2))
            np.add(a, ALPHA_DROPOUT_VALUE, out=out)
            out *= mask
            out -= ALPHA_DROPOUT_VALUE * (1.0 - p)
            out *= scale
            mask *= scale
            return out
        if mode == "inverted":
            mask *= 1.0 / (1.0 - p)
        return np.multiply(a, mask, out=out)
    if mode == "scale_at_inference":
        return np.multiply(a, 1.0 - p, out=out)
    return a


def dropout_backward(grad: np.ndarray, p: float, mode: str, training: bool, mask: np.ndarray) -> None:
    """dL/da from dL/d(output), in place on ``grad``: times the mask when training, (1 − p) at
    evaluation in ``scale_at_inference`` mode, unchanged otherwise."""
    if training:
        grad *= mask
    elif mode == "scale_at_inference":
        grad *= 1.0 - p
