"""Backpropagation checked against float64 central differences: the chain rule, verified.

For every parameter θ_k: numerical dL/dθ_k = (L(θ + h e_k) − L(θ − h e_k)) / 2h with h = 1e-6,
against the backprop gradient. The error reported per parameter is
``max_k |g_k − n_k| / max(max_k |g_k|, max_k |n_k|, 1e-12)``; a parameter passes at ≤ 1e-6.

A central difference cannot resolve better than its rounding noise, about ε·|L| / h (ε = 2.2e-16,
h = 1e-6): a vanishing gradient — 10^-7 in the first layer of a deep sigmoid net — is too small for a
relative check at 1e-6 even when backprop is exact. :func:`classify` draws the line, for
``dlexp gradcheck`` and the gallery alike: a parameter whose absolute error stays below the rounding
floor (:func:`rounding_floor`, ``NOISE_FACTOR`` × ε·max(|L|, 1) / h) also passes, *noise-limited*,
while its gradient is more than ten times that floor; one whose gradient is itself within ten times
the floor is *unresolved* (finite differences cannot check it; reported, not failed). A wrong backward
rule shows up as an error far above the floor in every layer it feeds.

Dropout masks are held fixed (the generator is re-seeded for every evaluation) and BatchNorm uses
batch statistics, so the function differentiated is exactly the training-mode loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = 1e-6
STEP = 1e-6
NOISE_FACTOR = 10.0
EPS64 = float(np.finfo(np.float64).eps)
PASS, NOISE_LIMITED, UNRESOLVED, FAIL = "pass", "pass (noise-limited)", "unresolved", "fail"
STATUSES = [PASS, NOISE_LIMITED, UNRESOLVED, FAIL]


def rounding_floor(loss_value: float, step: float = STEP) -> float:
    """The smallest error central differences can promise in float64.

    L(θ ± h) are each rounded to about ε·|L|, so their difference over 2h carries an error of order
    ε·|L|/h whatever the true slope; NOISE_FACTOR× that is the floor (≈ 2e-9 for |L| ≤ 1, h = 1e-6).
    """
    return NOISE_FACTOR * EPS64 * max(abs(loss_value), 1.0) / step


def classify(rel_error: float, max_abs_error: float, max_abs_grad: float, floor: float) -> str:
    """pass / pass (noise-limited) / unresolved / fail, as the module docstring defines them."""
    if rel_error <= TOLERANCE:
        return PASS
    if max_abs_error <= floor:
        return UNRESOLVED if max_abs_grad <= 10 * floor else NOISE_LIMITED
    return FAIL


@dataclass
class ParamCheck:
    name: str
    size: int
    max_abs_grad: float
    max_abs_error: float
    rel_error: float

    @property
    def passed(self) -> bool:
        return self.rel_error <= TOLERANCE

    def status(self, floor: float) -> str:
        """:func:`classify` of this parameter's numbers against the rounding ``floor``."""
        return classify(self.rel_error, self.max_abs_error, self.max_abs_grad, floor)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)), 1e-12)
    return float(np.max(np.abs(analytic - numeric), initial=0.0)) / scale


def check_model(model, X, targets, loss, *, l1: float = 0.0, l2: float = 0.0, seed: int = 0,
                step: float = STEP, max_per_param: int | None = None,
                rng: np.random.Generator | None = None) -> list[ParamCheck]:
    """Compare ``model``'s backprop gradients with central differences (the model must be float64).

    ``max_per_param`` limits the probed entries of each parameter (chosen with ``rng``) for big models.
    """
    if model.dtype != np.float64:
        raise ValueError("gradient checks need a float64 model")
    X = np.asarray(X, dtype=np.float64)

    def objective() -> float:  # the loss alone: a central difference needs no backward pass
        value = model.loss_value(X, targets, loss, training=True, rng=np.random.default_rng(seed))
        return value + model.penalty(l1, l2)

    saved = model.params.copy()
    buffers = {k: v.copy() for k, v in model.buffers.items()}
    model.loss_and_grads(X, targets, loss, training=True, rng=np.random.default_rng(seed))
    model.add_penalty_grad(l1, l2)
    analytic = model.grads.copy()
    results = []
    pick = rng or np.random.default_rng(seed)
    for name in model.param_names:
        start = model.offsets[name]
        size = int(np.prod(model.shapes[name]))
        idx = np.arange(size)
        if max_per_param is not None and size > max_per_param:
            idx = np.sort(pick.choice(size, max_per_param, replace=False))
        numeric = np.empty(len(idx))
        for j, k in enumerate(idx):
            pos = start + k
            original = model.params[pos]
            model.params[pos] = original + step
            plus = objective()
            model.params[pos] = original - step
            minus = objective()
            model.params[pos] = original
            numeric[j] = (plus - minus) / (2 * step)
        a = analytic[start + idx]
        results.append(ParamCheck(name, size, float(np.max(np.abs(a), initial=0.0)),
                                  float(np.max(np.abs(a - numeric), initial=0.0)), relative_error(a, numeric)))
    model.params[...] = saved
    for k, v in buffers.items():
        model.buffers[k][...] = v
    return results
