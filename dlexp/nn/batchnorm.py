"""Batch normalisation over a (batch, units) array, PyTorch BatchNorm1d semantics.

Training:  mu = mean_B(z), var = mean_B((z − mu)²) (biased), x̂ = (z − mu)/sqrt(var + eps),
           u = gamma·x̂ + beta;  running_mean ← (1 − m)·running_mean + m·mu,
           running_var ← (1 − m)·running_var + m·var·n/(n − 1)  (unbiased), m = momentum = 0.1.
Evaluation: u = gamma·(z − running_mean)/sqrt(running_var + eps) + beta.
Backward (training):  dgamma = Σ_B du·x̂,  dbeta = Σ_B du,
           dz = (inv_std/n)·(n·dx̂ − Σ_B dx̂ − x̂·Σ_B dx̂·x̂),  dx̂ = du·gamma.
Backward (evaluation): dz = du·gamma/sqrt(running_var + eps).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-5
MOMENTUM = 0.1


def batchnorm_forward_train(z, gamma, beta, running_mean, running_var, xhat, out, ones):
    """Normalise ``z`` (n, m) with batch statistics; fills ``xhat`` and ``out``; returns inv_std (m,)."""
    n = z.shape[0]
    mu = ones @ z
    mu *= 1.0 / n
    np.subtract(z, mu, out=xhat)
    np.multiply(xhat, xhat, out=out)
    var = ones @ out
    var *= 1.0 / n
    inv_std = 1.0 / np.sqrt(var + EPS)
    xhat *= inv_std
    np.multiply(xhat, gamma, out=out)
    out += beta
    running_mean *= 1.0 - MOMENTUM
    running_mean += MOMENTUM * mu
    running_var *= 1.0 - MOMENTUM
    running_var += (MOMENTUM * n / (n - 1)) * var
    return inv_std


def batchnorm_forward_eval(z, gamma, beta, running_mean, running_var, xhat, out):
    inv_std = 1.0 / np.sqrt(running_var + EPS)
    np.subtract(z, running_mean, out=xhat)
    xhat *= inv_std
    np.multiply(xhat, gamma, out=out)
    out += beta
    return inv_std


def batchnorm_backward(du, xhat, inv_std, gamma, dgamma, dbeta, dz, ones, training: bool):
    """Gradients of u = BN(z): writes dgamma, dbeta (m,) and dz (n, m); ``du`` may be overwritten."""
    n = du.shape[0]
    np.matmul(ones, du, out=dbeta)
    np.multiply(du, xhat, out=dz)
    np.matmul(ones, dz, out=dgamma)
    du *= gamma  # du now holds dx̂
    if not training:
        return np.multiply(du, inv_std, out=dz)
    sum_dxhat = ones @ du
    np.multiply(du, xhat, out=dz)
    sum_dxhat_xhat = ones @ dz
    np.multiply(xhat, sum_dxhat_xhat, out=dz)
    np.subtract(du * n, dz, out=dz)
    dz -= sum_dxhat
    dz *= inv_std / n
    return dz
