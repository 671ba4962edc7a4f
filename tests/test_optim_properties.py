"""Identities between optimizers, a convergence table, range checks, the factory, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlexp.optim import (
    CONVENTIONS,
    Optimizer,
    default_lr,
    make_optimizer,
    make_schedule,
    optimizer_names,
)
from dlexp.optim.base import Optimizer as BaseOptimizer

RNG_SEED = 12
SIZE = 37


def run(spec, convention="torch", steps=20, lrs=None, seed=RNG_SEED, dtype=np.float64):
    """Params and state after ``steps`` steps on fixed random gradients."""
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(SIZE).astype(dtype)
    grads = rng.standard_normal((steps, SIZE)).astype(dtype)
    opt = make_optimizer(spec, convention)
    state = opt.init(p)
    for k in range(steps):
        opt.step(p, grads[k].copy(), state, opt.lr if lrs is None else lrs[k])
    return p, state


ALL = [(c, n) for c in CONVENTIONS for n in optimizer_names(c)]
ALL_IDS = [f"{c}-{n}" for c, n in ALL]

# Every optional state slot switched on, so resume and chunking cover it.
FULL_SPECS = {
    "torch": {
        "sgd": {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        "adam": {"amsgrad": True, "weight_decay": 0.01},
        "adamw": {"amsgrad": True},
        "rmsprop": {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
        "adagrad": {"lr_decay": 0.01, "initial_accumulator_value": 0.1},
        "nadam": {"weight_decay": 0.01, "decoupled_weight_decay": True},
    },
    "keras": {
        "sgd": {"momentum": 0.9, "weight_decay": 0.01},
        "adam": {"amsgrad": True, "weight_decay": 0.01},
        "adamw": {"amsgrad": True},
        "rmsprop": {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
        "nadam": {"weight_decay": 0.01},
    },
}


def full_spec(convention, name):
    return {"name": name, **FULL_SPECS[convention].get(name, {})}


# ------------------------------------------------------------------ identities


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_sgd_momentum_zero_is_plain_sgd(convention):
    lr_key = "lr" if convention == "torch" else "learning_rate"
    p_momentum0, state = run({"name": "sgd", lr_key: 0.05, "momentum": 0.0}, convention)
    rng = np.random.default_rng(RNG_SEED)
    p = rng.standard_normal(SIZE)
    for g in rng.standard_normal((20, SIZE)):
        p = p - 0.05 * g
    np.testing.assert_array_equal(p_momentum0, p)  # same single rounding per step
    assert sorted(state) == ["step"]


def test_torch_sgd_dampening_is_irrelevant_without_momentum():
    a, _ = run({"name": "sgd", "lr": 0.05})
    b, _ = run({"name": "sgd", "lr": 0.05, "dampening": 0.5})
    np.testing.assert_array_equal(a, b)


def test_torch_and_keras_sgd_momentum_agree_at_constant_lr():
    """torch: b = m b + g, p -= lr b.  Keras: v = m v - lr g, p += v.  So v = -lr b."""
    a, _ = run({"name": "sgd", "lr": 0.05, "momentum": 0.9})
    b, _ = run({"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}, "keras")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    a, _ = run({"name": "nesterov", "lr": 0.05})
    b, _ = run({"name": "nesterov", "learning_rate": 0.05}, "keras")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_torch_and_keras_sgd_momentum_differ_when_lr_changes():
    lrs = [0.05 * 0.5**k for k in range(20)]
    a, _ = run({"name": "sgd", "lr": 0.05, "momentum": 0.9}, lrs=lrs)
    b, _ = run({"name": "sgd", "learning_rate": 0.05, "momentum": 0.9}, "keras", lrs=lrs)
    assert np.max(np.abs(a - b)) > 1e-3  # Keras' velocity remembers the old, larger lrs


def test_adam_with_beta1_zero_is_bias_corrected_rmsprop():
    """betas=(0, b2): m = g, so Adam = lr * g / (sqrt(v / (1 - b2^t)) + eps), v RMSprop's average."""
    b2, eps, lr = 0.99, 1e-8, 0.01
    rng = np.random.default_rng(5)
    p_adam = rng.standard_normal(SIZE)
    p_rms = p_adam.copy()
    adam = make_optimizer({"name": "adam", "lr": lr, "betas": [0.0, b2], "eps": eps})
    rms = make_optimizer({"name": "rmsprop", "lr": lr, "alpha": b2, "eps": eps})
    s_adam, s_rms = adam.init(p_adam), rms.init(p_rms)
    for t in range(1, 31):
        g = rng.standard_normal(SIZE)
        before = p_adam.copy()
        adam.step(p_adam, g.copy(), s_adam, lr)
        rms.step(p_rms, g.copy(), s_rms, lr)
        v = s_rms["square_avg"]
        np.testing.assert_array_equal(s_adam["exp_avg_sq"], v)
        # m + (1 - 0) * (g - m) is g up to one rounding of m's size
        np.testing.assert_allclose(s_adam["exp_avg"], g, rtol=1e-15, atol=1e-15)
        want = before - lr * g / (np.sqrt(v / (1 - b2**t)) + eps)
        np.testing.assert_allclose(p_adam, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_adamw_with_zero_decay_is_adam(convention):
    p_w, s_w = run({"name": "adamw", "weight_decay": 0.0}, convention)
    p_a, s_a = run({"name": "adam"}, convention)
    np.testing.assert_array_equal(p_w, p_a)
    for key in s_a:
        np.testing.assert_array_equal(s_w[key], s_a[key])


def test_torch_adamw_is_adam_with_decoupled_decay():
    p_w, _ = run({"name": "adamw", "weight_decay": 0.1})
    p_a, _ = run({"name": "adam", "weight_decay": 0.1, "decoupled_weight_decay": True})
    np.testing.assert_array_equal(p_w, p_a)


@pytest.mark.parametrize(
    ("convention", "slot", "v_slot"),
    [("torch", "max_exp_avg_sq", "exp_avg_sq"), ("keras", "velocity_hat", "velocity")],
)
def test_amsgrad_keeps_running_max_and_never_takes_a_larger_step(convention, slot, v_slot):
    opt = make_optimizer({"name": "adam", "amsgrad": True}, convention)
    plain = make_optimizer("adam", convention)
    p, q = np.zeros(4), np.zeros(4)
    s, s_plain = opt.init(p), plain.init(q)
    running_max = np.zeros(4)
    # Large gradients first, then small ones: v decays but v_max must not.
    for scale in [10.0, 10.0, 0.1, 0.1, 0.1, 0.1]:
        g = np.array([1.0, -1.0, 0.5, 2.0]) * scale
        p_before, q_before = p.copy(), q.copy()
        opt.step(p, g.copy(), s, opt.lr)
        plain.step(q, g.copy(), s_plain, plain.lr)
        np.testing.assert_array_equal(s[v_slot], s_plain[v_slot])
        running_max = np.maximum(running_max, s[v_slot])
        np.testing.assert_array_equal(s[slot], running_max)
        assert np.all(np.abs(p - p_before) <= np.abs(q - q_before) * (1 + 1e-15))
    assert np.all(s[slot] > s[v_slot])  # v has decayed below its past maximum


def test_weight_decay_l2_vs_decoupled_with_zero_gradient():
    """With g = 0, L2 decay enters Adam's normalisation (a step of ~lr whatever wd is);
    decoupled decay is exactly p * (1 - lr * wd) and the Adam part is 0 / (0 + eps) = 0."""
    p0 = np.array([1.0, -2.0, 0.5])
    lr, wd = 0.01, 0.1
    for spec, expected in [
        (
            {"name": "adam", "lr": lr, "weight_decay": wd},
            p0 - lr * np.sign(p0) * (wd * np.abs(p0)) / (wd * np.abs(p0) + 1e-8),
        ),
        ({"name": "adamw", "lr": lr, "weight_decay": wd}, p0 * (1 - lr * wd)),
    ]:
        opt = make_optimizer(spec)
        p = p0.copy()
        opt.step(p, np.zeros(3), opt.init(p), lr)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=0)


def test_sgd_l2_equals_decoupled_decay():
    """For plain SGD the two forms coincide: p - lr (g + wd p) = p (1 - lr wd) - lr g."""
    a, _ = run({"name": "sgd", "lr": 0.05, "weight_decay": 0.1})
    b, _ = run({"name": "sgd", "learning_rate": 0.05, "weight_decay": 0.1}, "keras")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_keras_adam_epsilon_hat_vs_torch_eps():
    """Keras' eps-hat equals torch's eps scaled by sqrt(1 - b2^t); at eps = 0 they coincide."""
    a, _ = run({"name": "adam", "lr": 0.01, "eps": 0.0})
    b, _ = run({"name": "adam", "learning_rate": 0.01, "epsilon": 0.0}, "keras")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    a, _ = run({"name": "adam", "lr": 0.01, "eps": 1e-1})
    b, _ = run({"name": "adam", "learning_rate": 0.01, "epsilon": 1e-1}, "keras")
    assert np.max(np.abs(a - b)) > 1e-4


# ------------------------------------------------------------------ convergence table

H = np.array([1.0, 10.0])


def quadratic(x, g):
    """f = (x0^2 + 10 x1^2) / 2, minimum at 0."""
    np.multiply(H, x, out=g)


def rosenbrock(x, g):
    """f = (1 - a)^2 + 100 (b - a^2)^2, minimum at (1, 1)."""
    a, b = x
    g[0] = -2 * (1 - a) - 400 * a * (b - a * a)
    g[1] = 200 * (b - a * a)


PROBLEMS = {
    "quadratic": (quadratic, (1.0, -0.7), (0.0, 0.0), 300),
    "rosenbrock": (rosenbrock, (-1.2, 1.0), (1.0, 1.0), 3000),
}

# (problem, convention, optimizer): (constant lr, distance to the minimum after the steps above).
# Tolerances are ~2-3x the measured distances. With a constant lr plain SGD crawls along the
# Rosenbrock valley, Adagrad's steps shrink, Adadelta starts from sqrt(eps)-sized steps,
# RMSprop oscillates across the valley, and AdamW's decay (0.01 / 0.004) moves the fixed point.
CONVERGENCE = {
    ("quadratic", "torch", "sgd"): (0.1, 1e-10),
    ("quadratic", "torch", "momentum"): (0.01, 1e-6),
    ("quadratic", "torch", "nesterov"): (0.02, 1e-8),
    ("quadratic", "torch", "adam"): (0.05, 1e-6),
    ("quadratic", "torch", "adamw"): (0.05, 1e-6),
    ("quadratic", "torch", "adamax"): (0.05, 1e-6),
    ("quadratic", "torch", "adadelta"): (2.0, 2e-2),
    ("quadratic", "torch", "rmsprop"): (0.01, 1e-8),
    ("quadratic", "torch", "adagrad"): (0.2, 1e-10),
    ("quadratic", "torch", "nadam"): (0.05, 1e-10),
    ("quadratic", "keras", "sgd"): (0.1, 1e-10),
    ("quadratic", "keras", "momentum"): (0.01, 1e-6),
    ("quadratic", "keras", "nesterov"): (0.02, 1e-8),
    ("quadratic", "keras", "adam"): (0.05, 1e-6),
    ("quadratic", "keras", "adamw"): (0.05, 1e-6),
    ("quadratic", "keras", "adamax"): (0.05, 1e-6),
    ("quadratic", "keras", "adadelta"): (5.0, 2e-2),
    ("quadratic", "keras", "rmsprop"): (0.005, 5e-3),
    ("quadratic", "keras", "adagrad"): (0.2, 1e-10),
    ("quadratic", "keras", "nadam"): (0.1, 1e-8),
    ("rosenbrock", "torch", "sgd"): (0.002, 0.2),
    ("rosenbrock", "torch", "momentum"): (0.0015, 1e-6),
    ("rosenbrock", "torch", "nesterov"): (0.001, 1e-4),
    ("rosenbrock", "torch", "adam"): (0.03, 1e-4),
    ("rosenbrock", "torch", "adamw"): (0.05, 0.1),
    ("rosenbrock", "torch", "adamax"): (0.1, 3e-3),
    ("rosenbrock", "torch", "adadelta"): (0.2, 0.4),
    ("rosenbrock", "torch", "rmsprop"): (0.005, 0.1),
    ("rosenbrock", "torch", "adagrad"): (1.0, 0.15),
    ("rosenbrock", "torch", "nadam"): (0.02, 0.06),
    ("rosenbrock", "keras", "sgd"): (0.002, 0.2),
    ("rosenbrock", "keras", "momentum"): (0.0015, 1e-6),
    ("rosenbrock", "keras", "nesterov"): (0.001, 1e-4),
    ("rosenbrock", "keras", "adam"): (0.03, 1e-4),
    ("rosenbrock", "keras", "adamw"): (0.05, 0.05),
    ("rosenbrock", "keras", "adamax"): (0.1, 3e-3),
    ("rosenbrock", "keras", "adadelta"): (0.5, 0.6),
    ("rosenbrock", "keras", "rmsprop"): (0.005, 0.1),
    ("rosenbrock", "keras", "adagrad"): (1.0, 0.15),
    ("rosenbrock", "keras", "nadam"): (0.02, 3e-3),
}


def test_convergence_table_covers_every_optimizer():
    assert {(p, c, n) for p in PROBLEMS for c, n in ALL} == set(CONVERGENCE)


@pytest.mark.parametrize(("problem", "convention", "name"), sorted(CONVERGENCE), ids="-".join)
def test_converges(problem, convention, name):
    lr, tol = CONVERGENCE[problem, convention, name]
    grad_fn, start, minimum, steps = PROBLEMS[problem]
    opt = make_optimizer({"name": name, ("lr" if convention == "torch" else "learning_rate"): lr}, convention)
    x = np.array(start)
    g = np.empty(2)
    state = opt.init(x)
    for _ in range(steps):
        grad_fn(x, g)
        opt.step(x, g, state, lr)
    distance = float(np.linalg.norm(x - np.array(minimum)))
    start_distance = float(np.linalg.norm(np.array(start) - np.array(minimum)))
    assert distance < tol, f"{distance:.3g} >= {tol} after {steps} steps (started {start_distance:.3g} away)"


# ------------------------------------------------------------------ range checks and factory

BAD_VALUES = [
    ("torch", {"name": "adam", "lr": -0.1}, "lr must be > 0 (got -0.1)"),
    ("torch", {"name": "adam", "lr": 0}, "lr must be > 0 (got 0)"),
    ("torch", {"name": "adam", "betas": [1.5, 0.9]}, "betas[0] must be in [0, 1) (got 1.5)"),
    ("torch", {"name": "nadam", "betas": [0.9, 1.0]}, "betas[1] must be in [0, 1) (got 1.0)"),
    ("torch", {"name": "adamax", "betas": [0.9]}, "betas must be a pair of numbers (got [0.9])"),
    ("torch", {"name": "adam", "eps": -1e-8}, "eps must be >= 0 (got -1e-08)"),
    ("torch", {"name": "adamw", "weight_decay": -0.01}, "weight_decay must be >= 0 (got -0.01)"),
    ("torch", {"name": "adam", "amsgrad": "yes"}, "amsgrad must be true or false (got 'yes')"),
    ("torch", {"name": "sgd", "momentum": -0.9}, "momentum must be >= 0 (got -0.9)"),
    ("torch", {"name": "sgd", "dampening": 2}, "dampening must be in [0, 1] (got 2)"),
    ("torch", {"name": "sgd", "nesterov": True}, "nesterov=True needs momentum > 0 and dampening == 0"),
    ("torch", {"name": "nesterov", "dampening": 0.1}, "nesterov=True needs momentum > 0 and dampening == 0"),
    ("torch", {"name": "rmsprop", "alpha": 1.01}, "alpha must be in [0, 1] (got 1.01)"),
    ("torch", {"name": "adadelta", "rho": -0.1}, "rho must be in [0, 1] (got -0.1)"),
    ("torch", {"name": "adagrad", "lr_decay": -1}, "lr_decay must be >= 0 (got -1)"),
    (
        "torch",
        {"name": "adagrad", "initial_accumulator_value": -1},
        "initial_accumulator_value must be >= 0 (got -1)",
    ),
    ("torch", {"name": "nadam", "momentum_decay": -0.004}, "momentum_decay must be >= 0 (got -0.004)"),
    ("torch", {"name": "adam", "lr": "fast"}, "lr must be a number (got 'fast')"),
    ("torch", {"name": "adam", "lr": float("nan")}, "lr must be finite (got nan)"),
    ("torch", {"name": "adam", "lr": True}, "lr must be a number (got True)"),
    ("keras", {"name": "adam", "learning_rate": -1.0}, "learning_rate must be > 0 (got -1.0)"),
    ("keras", {"name": "adam", "beta_1": 1.0}, "beta_1 must be in [0, 1) (got 1.0)"),
    ("keras", {"name": "nadam", "beta_2": -0.5}, "beta_2 must be in [0, 1) (got -0.5)"),
    ("keras", {"name": "sgd", "momentum": 1.5}, "momentum must be in [0, 1] (got 1.5)"),
    ("keras", {"name": "rmsprop", "rho": 2.0}, "rho must be in [0, 1] (got 2.0)"),
    ("keras", {"name": "adagrad", "epsilon": -1e-7}, "epsilon must be >= 0 (got -1e-07)"),
    ("keras", {"name": "adamw", "weight_decay": -0.004}, "weight_decay must be >= 0 (got -0.004)"),
]


@pytest.mark.parametrize(("convention", "spec", "message"), BAD_VALUES, ids=[m for _, _, m in BAD_VALUES])
def test_range_checks_name_argument_rule_and_value(convention, spec, message):
    with pytest.raises(ValueError) as info:
        make_optimizer(spec, convention)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("spec", "convention", "message"),
    [
        (
            "adamm",
            "torch",
            "unknown torch optimizer 'adamm'; did you mean 'adam'? (accepted: adadelta, adagrad, adam,",
        ),
        ("rmsprob", "keras", "unknown keras optimizer 'rmsprob'; did you mean 'rmsprop'?"),
        (
            {"name": "adam", "beta": [0.9, 0.99]},
            "torch",
            "torch optimizer 'adam' has no argument 'beta'; did you mean 'betas'?",
        ),
        (
            {"name": "adam", "betas": [0.9, 0.99]},
            "keras",
            "keras optimizer 'adam' has no argument 'betas'; did you mean 'beta_",
        ),
        (
            {"name": "adam", "lr": 0.1},
            "keras",
            "(accepted: learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay)",
        ),
        ({"name": "adam", "learning_rate": 0.1}, "torch", "has no argument 'learning_rate'"),
        (
            {"name": "adam", "convention": "kears"},
            "torch",
            "unknown optimizer convention 'kears'; did you mean 'keras'? (accepted: torch, keras)",
        ),
        ({"lr": 0.1}, "torch", "needs a 'name' key"),
    ],
)
def test_unknown_names_and_arguments(spec, convention, message):
    with pytest.raises(ValueError) as info:
        make_optimizer(spec, convention)
    assert message in str(info.value)


def test_convention_key_in_spec_overrides_argument():
    opt = make_optimizer({"name": "adam", "convention": "keras", "learning_rate": 0.01}, "torch")
    assert (opt.convention, opt.name, opt.lr) == ("keras", "adam", 0.01)
    assert opt.hyperparams == {
        "learning_rate": 0.01,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
        "weight_decay": 0.0,
    }
    assert make_optimizer({"name": "adam", "convention": "torch"}, "keras").convention == "torch"


def test_hyperparams_round_trip_through_the_factory():
    for convention, name in ALL:
        opt = make_optimizer(full_spec(convention, name), convention)
        again = make_optimizer({"name": name, **opt.hyperparams}, convention)
        assert again.hyperparams == opt.hyperparams
        assert isinstance(opt, (Optimizer, BaseOptimizer)) and opt.name == name


def test_presets_and_defaults():
    assert make_optimizer("momentum").hyperparams["momentum"] == 0.9
    assert make_optimizer("nesterov").hyperparams["nesterov"] is True
    assert make_optimizer("nesterov", "keras").hyperparams == {
        "learning_rate": 0.01,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0,
    }
    torch_lrs = {
        "sgd": 1e-3,
        "momentum": 1e-3,
        "nesterov": 1e-3,
        "adam": 1e-3,
        "adamw": 1e-3,
        "adamax": 2e-3,
        "adadelta": 1.0,
        "rmsprop": 1e-2,
        "adagrad": 1e-2,
        "nadam": 2e-3,
    }
    keras_lrs = {
        "sgd": 0.01,
        "momentum": 0.01,
        "nesterov": 0.01,
        "adam": 1e-3,
        "adamw": 1e-3,
        "adamax": 1e-3,
        "adadelta": 1e-3,
        "rmsprop": 1e-3,
        "adagrad": 1e-3,
        "nadam": 1e-3,
    }
    assert {n: default_lr(n, "torch") for n in optimizer_names("torch")} == torch_lrs
    assert {n: default_lr(n, "keras") for n in optimizer_names("keras")} == keras_lrs
    assert make_optimizer("adamw").hyperparams["weight_decay"] == 0.01
    assert make_optimizer("adamw", "keras").hyperparams["weight_decay"] == 0.004
    assert make_optimizer({"name": "adam", "weight_decay": None}, "keras").hyperparams["weight_decay"] == 0.0


def test_init_rejects_non_flat_params():
    opt = make_optimizer("adam")
    with pytest.raises(ValueError, match="flat 1-D float32 or float64"):
        opt.init(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="flat 1-D float32 or float64"):
        opt.init(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="contiguous"):
        opt.init(np.zeros(6)[::2])


# ------------------------------------------------------------------ state, resume, chunking


@pytest.mark.parametrize(("convention", "name"), ALL, ids=ALL_IDS)
def test_state_is_flat_arrays_and_scalar_step(convention, name):
    opt = make_optimizer(full_spec(convention, name), convention)
    p = np.zeros(5, dtype=np.float32)
    state = opt.init(p)
    assert state["step"].shape == () and state["step"].dtype == np.int64
    for key, arr in state.items():
        assert isinstance(arr, np.ndarray)
        if key in opt.slots:
            assert arr.shape == (5,) and arr.dtype == np.float32
        else:
            assert arr.shape == ()
    opt.step(p, np.ones(5, dtype=np.float32), state, opt.lr)
    assert int(state["step"]) == 1 and p.dtype == np.float32


@pytest.mark.parametrize(("convention", "name"), ALL, ids=ALL_IDS)
def test_resume_from_npz_is_bit_identical(convention, name, tmp_path):
    spec = full_spec(convention, name)
    schedule = make_schedule({"name": "cosine", "T_max": 7})
    base = make_optimizer(spec, convention).lr
    lrs = [schedule.lr_at(base, k // 3) for k in range(20)]  # 3 "steps per epoch"
    p_all, s_all = run(spec, convention, steps=20, lrs=lrs)

    rng = np.random.default_rng(RNG_SEED)
    p = rng.standard_normal(SIZE)
    grads = rng.standard_normal((20, SIZE))
    opt = make_optimizer(spec, convention)
    state = opt.init(p)
    for k in range(10):
        opt.step(p, grads[k].copy(), state, lrs[k])
    path = tmp_path / "ckpt.npz"
    np.savez(path, params=p, **{f"opt.{k}": v for k, v in state.items()})

    # A new process: fresh optimizer object, everything else from disk.
    with np.load(path, allow_pickle=False) as saved:
        p2 = saved["params"].copy()
        state2 = {k.removeprefix("opt."): saved[k].copy() for k in saved.files if k.startswith("opt.")}
    opt2 = make_optimizer(spec, convention)
    opt2.check_state(p2, state2)
    for k in range(10, 20):
        opt2.step(p2, grads[k].copy(), state2, lrs[k])

    np.testing.assert_array_equal(p2, p_all)
    assert sorted(state2) == sorted(s_all)
    for key in s_all:
        np.testing.assert_array_equal(state2[key], s_all[key])


def test_check_state_rejects_mismatched_state():
    opt = make_optimizer({"name": "adam", "amsgrad": True})
    p = np.zeros(4)
    state = opt.init(p)
    del state["max_exp_avg_sq"]
    with pytest.raises(ValueError, match="expects state keys"):
        opt.check_state(p, state)
    state = opt.init(p)
    state["exp_avg"] = np.zeros(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"'exp_avg' must be float64\[4\] \(got float32\[4\]\)"):
        opt.check_state(p, state)


@pytest.mark.parametrize(("convention", "name"), ALL, ids=ALL_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_chunked_update_is_bit_identical(convention, name, dtype, monkeypatch):
    spec = full_spec(convention, name)
    whole_p, whole_s = run(spec, convention, steps=5, dtype=dtype)
    # 8-element chunks over 37 elements: 4 full chunks and a ragged tail.
    monkeypatch.setattr(BaseOptimizer, "chunk_bytes", 8 * np.dtype(dtype).itemsize)
    chunk_p, chunk_s = run(spec, convention, steps=5, dtype=dtype)
    np.testing.assert_array_equal(chunk_p, whole_p)
    for key in whole_s:
        np.testing.assert_array_equal(chunk_s[key], whole_s[key])


@pytest.mark.parametrize(("convention", "name"), ALL, ids=ALL_IDS)
def test_step_leaves_params_finite_on_zero_gradient(convention, name):
    opt = make_optimizer(full_spec(convention, name), convention)
    p = np.linspace(-1, 1, 9)
    state = opt.init(p)
    for _ in range(3):
        opt.step(p, np.zeros(9), state, opt.lr)
    assert np.all(np.isfinite(p))
    assert math.isfinite(float(state["step"]))
