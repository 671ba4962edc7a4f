"""Golden values: the first two steps of every optimizer, derived by hand from its equations.

Each expected value below is the closed form of one or two steps written straight from the
optimizer's docstring equations (not by calling dlexp). Inputs are explicit numbers:

    p0 = [1.0, -2.0, 0.5]   g1 = [0.1, -0.3, 2.0]   g2 = [-0.2, 0.4, 0.01]

(g2[2]^2 is small enough that Adam's second moment *decreases* on step 2, which exercises
AMSGrad.) Tolerances: float64 rtol 1e-12; float32 rtol 2e-6 (a few float32 ulps per step).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlexp.optim import make_optimizer, optimizer_names

P0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.1, -0.3, 2.0])
G2 = np.array([-0.2, 0.4, 0.01])
RTOL64 = 1e-12
RTOL32 = 2e-6


def two_steps(spec: dict, convention: str, dtype=np.float64):
    """Parameters after step 1 and after step 2, at the spec's own base learning rate."""
    opt = make_optimizer(spec, convention)
    p = P0.astype(dtype)
    state = opt.init(p)
    out = []
    for g in (G1, G2):
        opt.step(p, g.astype(dtype), state, opt.lr)
        out.append(p.copy())
    return out


# ------------------------------------------------------------------ torch convention


def torch_sgd():
    lr = 0.1
    p1 = P0 - lr * G1
    return p1, p1 - lr * G2


def torch_sgd_momentum_dampening_wd():
    lr, mom, damp, wd = 0.1, 0.9, 0.1, 0.01
    d1 = G1 + wd * P0
    b1 = d1  # first step copies the gradient, undampened
    p1 = P0 - lr * b1
    d2 = G2 + wd * p1
    b2 = mom * b1 + (1 - damp) * d2
    return p1, p1 - lr * b2


def torch_momentum():
    lr, mom = 0.1, 0.9
    b1 = G1
    p1 = P0 - lr * b1
    return p1, p1 - lr * (mom * b1 + G2)


def torch_nesterov():
    lr, mom = 0.1, 0.9
    b1 = G1
    p1 = P0 - lr * (G1 + mom * b1)
    b2 = mom * b1 + G2
    return p1, p1 - lr * (G2 + mom * b2)


def _adam_pair(m2, v2, p1, lr, eps):
    # step 2 bias corrections: 1 - 0.9^2 = 0.19, 1 - 0.999^2 = 0.001999
    return p1 - lr / 0.19 * m2 / (np.sqrt(v2) / math.sqrt(0.001999) + eps)


def torch_adam():
    lr, eps = 0.01, 1e-8
    p1 = P0 - lr * G1 / (np.abs(G1) + eps)  # m_hat = g1, sqrt(v_hat) = |g1|
    m2 = 0.09 * G1 + 0.1 * G2
    v2 = 0.000999 * G1**2 + 0.001 * G2**2
    return p1, _adam_pair(m2, v2, p1, lr, eps)


def torch_adam_amsgrad():
    lr, eps = 0.01, 1e-8
    p1 = P0 - lr * G1 / (np.abs(G1) + eps)
    m2 = 0.09 * G1 + 0.1 * G2
    v_max = np.maximum(0.001 * G1**2, 0.000999 * G1**2 + 0.001 * G2**2)
    return p1, _adam_pair(m2, v_max, p1, lr, eps)


def torch_adam_l2():
    lr, eps, wd = 0.01, 1e-8, 0.1
    d1 = G1 + wd * P0
    p1 = P0 - lr * d1 / (np.abs(d1) + eps)
    d2 = G2 + wd * p1
    m2 = 0.09 * d1 + 0.1 * d2
    v2 = 0.000999 * d1**2 + 0.001 * d2**2
    return p1, _adam_pair(m2, v2, p1, lr, eps)


def torch_adamw():
    lr, eps, wd = 0.01, 1e-8, 0.01
    p1 = P0 * (1 - lr * wd) - lr * G1 / (np.abs(G1) + eps)
    m2 = 0.09 * G1 + 0.1 * G2
    v2 = 0.000999 * G1**2 + 0.001 * G2**2
    return p1, _adam_pair(m2, v2, p1 * (1 - lr * wd), lr, eps)


def torch_adamax():
    lr, eps = 0.002, 1e-8
    u1 = np.abs(G1) + eps
    p1 = P0 - lr / 0.1 * (0.1 * G1) / u1
    u2 = np.maximum(0.999 * u1, np.abs(G2) + eps)
    return p1, p1 - lr / 0.19 * (0.09 * G1 + 0.1 * G2) / u2


def torch_adadelta():
    lr, rho, eps = 1.0, 0.9, 1e-6
    v1 = 0.1 * G1**2
    d1 = math.sqrt(eps) / np.sqrt(v1 + eps) * G1
    a1 = 0.1 * d1**2
    p1 = P0 - lr * d1
    v2 = rho * v1 + 0.1 * G2**2
    d2 = np.sqrt(a1 + eps) / np.sqrt(v2 + eps) * G2
    return p1, p1 - lr * d2


def torch_rmsprop():
    lr, eps = 0.01, 1e-8
    v1 = 0.01 * G1**2
    p1 = P0 - lr * G1 / (0.1 * np.abs(G1) + eps)
    v2 = 0.99 * v1 + 0.01 * G2**2
    return p1, p1 - lr * G2 / (np.sqrt(v2) + eps)


def torch_rmsprop_centered_momentum():
    lr, eps, mom = 0.01, 1e-8, 0.5
    v1, c1 = 0.01 * G1**2, 0.01 * G1
    b1 = G1 / (np.sqrt(v1 - c1**2) + eps)  # sqrt(0.0099) |g1|
    p1 = P0 - lr * b1
    v2, c2 = 0.99 * v1 + 0.01 * G2**2, 0.99 * c1 + 0.01 * G2
    b2 = mom * b1 + G2 / (np.sqrt(v2 - c2**2) + eps)
    return p1, p1 - lr * b2


def torch_adagrad():
    lr, lr_decay, init, eps = 0.01, 0.5, 0.1, 1e-10
    s1 = init + G1**2
    p1 = P0 - lr * G1 / (np.sqrt(s1) + eps)
    s2 = s1 + G2**2
    return p1, p1 - lr / (1 + lr_decay) * G2 / (np.sqrt(s2) + eps)


def _torch_mu(t):
    return 0.9 * (1 - 0.5 * 0.96 ** (t * 0.004))


def torch_nadam():
    lr, eps = 0.002, 1e-8
    mu1, mu2, mu3 = _torch_mu(1), _torch_mu(2), _torch_mu(3)
    denom1 = np.abs(G1) + eps  # sqrt(v1 / (1 - beta2)) = |g1|
    p1 = P0 - lr * (1 - mu1) / (1 - mu1) * G1 / denom1 - lr * mu2 / (1 - mu1 * mu2) * (0.1 * G1) / denom1
    m2 = 0.09 * G1 + 0.1 * G2
    denom2 = np.sqrt((0.000999 * G1**2 + 0.001 * G2**2) / 0.001999) + eps
    prod2 = mu1 * mu2
    p2 = p1 - lr * (1 - mu2) / (1 - prod2) * G2 / denom2 - lr * mu3 / (1 - prod2 * mu3) * m2 / denom2
    return p1, p2


TORCH_CASES = {
    "sgd": ({"name": "sgd", "lr": 0.1}, torch_sgd),
    "sgd-momentum-dampening-wd": (
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        torch_sgd_momentum_dampening_wd,
    ),
    "momentum": ({"name": "momentum", "lr": 0.1}, torch_momentum),
    "nesterov": ({"name": "nesterov", "lr": 0.1}, torch_nesterov),
    "adam": ({"name": "adam", "lr": 0.01}, torch_adam),
    "adam-amsgrad": ({"name": "adam", "lr": 0.01, "amsgrad": True}, torch_adam_amsgrad),
    "adam-l2": ({"name": "adam", "lr": 0.01, "weight_decay": 0.1}, torch_adam_l2),
    "adamw": ({"name": "adamw", "lr": 0.01}, torch_adamw),
    "adamax": ({"name": "adamax"}, torch_adamax),
    "adadelta": ({"name": "adadelta"}, torch_adadelta),
    "rmsprop": ({"name": "rmsprop"}, torch_rmsprop),
    "rmsprop-centered-momentum": (
        {"name": "rmsprop", "centered": True, "momentum": 0.5},
        torch_rmsprop_centered_momentum,
    ),
    "adagrad": ({"name": "adagrad", "lr_decay": 0.5, "initial_accumulator_value": 0.1}, torch_adagrad),
    "nadam": ({"name": "nadam"}, torch_nadam),
}


# ------------------------------------------------------------------ keras convention


def keras_sgd_wd():
    lr, wd = 0.01, 0.1
    p1 = P0 - P0 * wd * lr - lr * G1
    return p1, p1 - p1 * wd * lr - lr * G2


def keras_momentum():
    lr, mom = 0.01, 0.9
    v1 = -lr * G1
    p1 = P0 + v1
    v2 = mom * v1 - lr * G2
    return p1, p1 + v2


def keras_nesterov():
    lr, mom = 0.01, 0.9
    v1 = -lr * G1
    p1 = P0 + mom * v1 - lr * G1
    v2 = mom * v1 - lr * G2
    return p1, p1 + mom * v2 - lr * G2


def _keras_adam_steps(v2_used, decay=0.0):
    lr, eps = 0.001, 1e-7
    alpha1 = lr * math.sqrt(0.001) / 0.1
    alpha2 = lr * math.sqrt(0.001999) / 0.19
    q0 = P0 - P0 * decay * lr
    p1 = q0 - (0.1 * G1) * alpha1 / (np.sqrt(0.001 * G1**2) + eps)
    q1 = p1 - p1 * decay * lr
    m2 = 0.09 * G1 + 0.1 * G2
    return p1, q1 - m2 * alpha2 / (np.sqrt(v2_used) + eps)


def keras_adam():
    return _keras_adam_steps(0.000999 * G1**2 + 0.001 * G2**2)


def keras_adam_amsgrad():
    return _keras_adam_steps(np.maximum(0.001 * G1**2, 0.000999 * G1**2 + 0.001 * G2**2))


def keras_adamw():
    return _keras_adam_steps(0.000999 * G1**2 + 0.001 * G2**2, decay=0.004)


def keras_adamax():
    lr, eps = 0.001, 1e-7
    u1 = np.abs(G1)
    p1 = P0 - lr * (0.1 * G1) / (0.1 * (u1 + eps))
    u2 = np.maximum(0.999 * u1, np.abs(G2))
    return p1, p1 - lr * (0.09 * G1 + 0.1 * G2) / (0.19 * (u2 + eps))


def keras_adadelta():
    lr, rho, eps = 1.0, 0.95, 1e-7
    ag1 = 0.05 * G1**2
    d1 = -math.sqrt(eps) * G1 / np.sqrt(ag1 + eps)
    ad1 = 0.05 * d1**2
    p1 = P0 + lr * d1
    ag2 = rho * ag1 + 0.05 * G2**2
    d2 = -np.sqrt(ad1 + eps) * G2 / np.sqrt(ag2 + eps)
    return p1, p1 + lr * d2


def keras_rmsprop():
    lr, eps = 0.001, 1e-7
    v1 = 0.1 * G1**2
    p1 = P0 - lr * G1 / np.sqrt(v1 + eps)
    v2 = 0.9 * v1 + 0.1 * G2**2
    return p1, p1 - lr * G2 / np.sqrt(v2 + eps)


def keras_rmsprop_centered_momentum():
    lr, eps, mom = 0.001, 1e-7, 0.5
    v1, c1 = 0.1 * G1**2, 0.1 * G1
    b1 = lr * G1 / np.sqrt(v1 - c1**2 + eps)
    p1 = P0 - b1
    v2, c2 = 0.9 * v1 + 0.1 * G2**2, 0.9 * c1 + 0.1 * G2
    b2 = mom * b1 + lr * G2 / np.sqrt(v2 - c2**2 + eps)
    return p1, p1 - b2


def keras_adagrad():
    lr, eps = 0.001, 1e-7
    a1 = 0.1 + G1**2
    p1 = P0 - lr * G1 / np.sqrt(a1 + eps)
    return p1, p1 - lr * G2 / np.sqrt(a1 + G2**2 + eps)


def keras_nadam():
    lr, eps = 0.001, 1e-7
    u1, u2, u3 = (0.9 * (1 - 0.5 * 0.96**t) for t in (1, 2, 3))
    m1 = 0.1 * G1
    m_hat1 = u2 * m1 / (1 - u1 * u2) + (1 - u1) * G1 / (1 - u1)
    p1 = P0 - m_hat1 * lr / (np.sqrt(0.001 * G1**2 / 0.001) + eps)
    m2 = 0.09 * G1 + 0.1 * G2
    prod2 = u1 * u2
    m_hat2 = u3 * m2 / (1 - prod2 * u3) + (1 - u2) * G2 / (1 - prod2)
    v_hat2 = (0.000999 * G1**2 + 0.001 * G2**2) / 0.001999
    return p1, p1 - m_hat2 * lr / (np.sqrt(v_hat2) + eps)


KERAS_CASES = {
    "sgd-wd": ({"name": "sgd", "weight_decay": 0.1}, keras_sgd_wd),
    "momentum": ({"name": "momentum"}, keras_momentum),
    "nesterov": ({"name": "nesterov"}, keras_nesterov),
    "adam": ({"name": "adam"}, keras_adam),
    "adam-amsgrad": ({"name": "adam", "amsgrad": True}, keras_adam_amsgrad),
    "adamw": ({"name": "adamw"}, keras_adamw),
    "adamax": ({"name": "adamax"}, keras_adamax),
    "adadelta": ({"name": "adadelta", "learning_rate": 1.0}, keras_adadelta),
    "rmsprop": ({"name": "rmsprop"}, keras_rmsprop),
    "rmsprop-centered-momentum": (
        {"name": "rmsprop", "centered": True, "momentum": 0.5},
        keras_rmsprop_centered_momentum,
    ),
    "adagrad": ({"name": "adagrad"}, keras_adagrad),
    "nadam": ({"name": "nadam"}, keras_nadam),
}

ALL_CASES = [("torch", key, *case) for key, case in TORCH_CASES.items()] + [
    ("keras", key, *case) for key, case in KERAS_CASES.items()
]
IDS = [f"{conv}-{key}" for conv, key, _, _ in ALL_CASES]


@pytest.mark.parametrize(("convention", "key", "spec", "expected"), ALL_CASES, ids=IDS)
def test_two_steps_float64(convention, key, spec, expected):
    want1, want2 = expected()
    got1, got2 = two_steps(spec, convention)
    np.testing.assert_allclose(got1, want1, rtol=RTOL64, atol=0)
    np.testing.assert_allclose(got2, want2, rtol=RTOL64, atol=0)
    assert not np.array_equal(got2, got1)  # step 2 moved the parameters


@pytest.mark.parametrize(("convention", "key", "spec", "expected"), ALL_CASES, ids=IDS)
def test_two_steps_float32(convention, key, spec, expected):
    want1, want2 = expected()
    got1, got2 = two_steps(spec, convention, np.float32)
    assert got2.dtype == np.float32
    np.testing.assert_allclose(got1, want1, rtol=RTOL32, atol=0)
    np.testing.assert_allclose(got2, want2, rtol=RTOL32, atol=0)


@pytest.mark.parametrize(("convention", "cases"), [("torch", TORCH_CASES), ("keras", KERAS_CASES)])
def test_every_registered_optimizer_has_a_golden_case(convention, cases):
    assert {spec["name"] for spec, _ in cases.values()} == set(optimizer_names(convention))
