"""Layer normalisation over a (batch, units) array, PyTorch LayerNorm semantics (eps 1e-5, affine).

Each row (one sample) is normalised over its units; there are no running statistics, so training
and evaluation compute the same function.
Forward:   mu = mean_units(z), var = mean_units((z − mu)²) (biased), x̂ = (z − mu)/sqrt(var + eps),
           u = gamma·x̂ + beta   (mu, var, inv_std: one value per row).
Backward:  dgamma = Σ_B du·x̂,  dbeta = Σ_B du,  dx̂ = du·gamma,
           dz = (inv_std/m)·(m·dx̂ − Σ_units dx̂ − x̂·Σ_units dx̂·x̂)   (m units).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-5


def layernorm_forward(z, gamma, beta, xhat, out):
    """Normalise each row of ``z`` (n, m); fills ``xhat`` and ``out``; returns inv_std (n, 1)."""
    m = z.shape[1]
    mu = z.sum(axis=1, keepdims=True)
    mu *= 1.0 / m
    np.subtract(z, mu, out=xhat)
    np.multiply(xhat, xhat, out=out)
    var = out.sum(axis=1, keepdims=True)
    var *= 1.0 / m
    inv_std = 1.0 / np.sqrt(var + EPS)
    xhat *= inv_std
    np.multiply(xhat, gamma, out=out)
    out += beta
    return inv_std


def layernorm_backward(du, xhat, inv_std, gamma, dgamma, dbeta, dz, ones):
    """Gradients of u = LN(z): writes dgamma, dbeta (m,) and dz (n, m); ``du`` may be overwritten."""
    m = du.shape[1]
    np.matmul(ones, du, out=dbeta)
    np.multiply(du, xhat, out=dz)
    np.matmul(ones, dz, out=dgamma)
    du *= gamma  # du now holds dx̂
    sum_dxhat = du.sum(axis=1, keepdims=True)
    np.multiply(du, xhat, out=dz)
    sum_dxhat_xhat = dz.sum(axis=1, keepdims=True)
    np.multiply(xhat, sum_dxhat_xhat, out=dz)
    np.subtract(du * m, dz, out=dz)
    dz -= sum_dxhat
    dz *= inv_std * (1.0 / m)
    return dz
