"""Cross-check the torch convention against the installed torch.optim (skipped without torch).

torch runs with ``foreach=False`` (its ``_single_tensor_*`` code, the default on CPU) and with
default dtype float64, so that NAdam's ``mu_product`` (kept in the default dtype) is float64.
torch fuses some multiply-adds (FMA) where NumPy rounds twice, so parameters agree to float64
rounding, not bit for bit. Measured after 50 steps (these cases, this machine): largest
absolute difference 9e-16 on O(1) parameters, whole-vector relative difference 2e-16, worst
single-coordinate relative difference 2e-13 (a coordinate near zero).
Tolerances: rtol 1e-12 per coordinate (atol 1e-14 for coordinates near zero) and 1e-14 for
the whole-vector relative difference.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.optim import clip_by_global_norm, clip_by_value, global_norm, make_optimizer, make_schedule

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-12, 1e-14
VECTOR_RTOL = 1e-14
STEPS, SIZE = 50, 301

TORCH_CLASS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "adadelta": "Adadelta",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "nadam": "NAdam",
}

CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("sgd", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adam", {"amsgrad": True, "weight_decay": 0.05}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True, "weight_decay": 0.1, "betas": (0.5, 0.9)}),
    ("adamax", {}),
    ("adamax", {"betas": (0.8, 0.9), "weight_decay": 0.1, "eps": 1e-3}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.5, "eps": 1e-4, "weight_decay": 0.1}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.5}),
    ("rmsprop", {"alpha": 0.9, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("nadam", {}),
    ("nadam", {"betas": (0.8, 0.99), "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
]


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.usefixtures("float64_default")
@pytest.mark.parametrize(
    ("seed", "name", "kwargs"),
    [(i, *c) for i, c in enumerate(CASES)],
    ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)],
)
def test_matches_torch_over_50_steps(seed, name, kwargs):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(SIZE)
    grads = rng.standard_normal((STEPS, SIZE))
    # A per-step lr (as a schedule would give) also checks that lr is taken from each call.
    lrs = 0.03 * 0.97 ** np.arange(STEPS)

    opt = make_optimizer({"name": name, "lr": float(lrs[0]), **kwargs})
    p = p0.copy()
    state = opt.init(p)

    t_param = torch.tensor(p0, requires_grad=True)
    t_opt = getattr(torch.optim, TORCH_CLASS[name])([t_param], lr=float(lrs[0]), foreach=False, **kwargs)
    for k in range(STEPS):
        opt.step(p, grads[k].copy(), state, float(lrs[k]))
        for group in t_opt.param_groups:
            group["lr"] = float(lrs[k])
        t_param.grad = torch.tensor(grads[k])
        t_opt.step()
        if k in (0, 1):
            np.testing.assert_allclose(p, t_param.detach().numpy(), rtol=RTOL, atol=ATOL)
    want = t_param.detach().numpy()
    np.testing.assert_allclose(p, want, rtol=RTOL, atol=ATOL)
    assert np.linalg.norm(p - want) <= VECTOR_RTOL * np.linalg.norm(want)
    assert int(state["step"]) == STEPS


@pytest.mark.parametrize("name", sorted(TORCH_CLASS))
def test_defaults_match_torch_signature(name):
    import inspect

    opt = make_optimizer(name)
    torch_params = inspect.signature(getattr(torch.optim, TORCH_CLASS[name]).__init__).parameters
    for key, value in opt.hyperparams.items():
        default = torch_params[key].default
        assert value == (list(default) if isinstance(default, tuple) else default), key


def test_float32_close_to_torch_float32():
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(SIZE).astype(np.float32)
    grads = rng.standard_normal((STEPS, SIZE)).astype(np.float32)
    opt = make_optimizer({"name": "adam", "lr": 0.01})
    p = p0.copy()
    state = opt.init(p)
    t_param = torch.tensor(p0, requires_grad=True)
    t_opt = torch.optim.Adam([t_param], lr=0.01, foreach=False)
    for k in range(STEPS):
        opt.step(p, grads[k].copy(), state, 0.01)
        t_param.grad = torch.tensor(grads[k])
        t_opt.step()
    # float32: scalars are float64 here, float32/float64 mixed in torch; a few ulps per step.
    np.testing.assert_allclose(p, t_param.detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ schedules

SCHEDULE_CASES = [
    ({"name": "step", "step_size": 3, "gamma": 0.5}, "StepLR", {"step_size": 3, "gamma": 0.5}),
    ({"name": "step", "step_size": 1}, "StepLR", {"step_size": 1}),
    (
        {"name": "multistep", "milestones": [2, 5, 11], "gamma": 0.3},
        "MultiStepLR",
        {"milestones": [2, 5, 11], "gamma": 0.3},
    ),
    ({"name": "exponential", "gamma": 0.93}, "ExponentialLR", {"gamma": 0.93}),
    ({"name": "cosine", "T_max": 10}, "CosineAnnealingLR", {"T_max": 10}),
    ({"name": "cosine", "T_max": 7, "eta_min": 1e-3}, "CosineAnnealingLR", {"T_max": 7, "eta_min": 1e-3}),
    ({"name": "cosine", "T_max": 1}, "CosineAnnealingLR", {"T_max": 1}),
]


@pytest.mark.parametrize(
    ("spec", "cls", "kwargs"), SCHEDULE_CASES, ids=[c[1] + str(i) for i, c in enumerate(SCHEDULE_CASES)]
)
@pytest.mark.parametrize("base_lr", [0.1, 0.0371])
def test_schedule_matches_torch(spec, cls, kwargs, base_lr):
    param = torch.zeros(1, requires_grad=True)
    t_opt = torch.optim.SGD([param], lr=base_lr)
    sched = getattr(torch.optim.lr_scheduler, cls)(t_opt, **kwargs)
    ours = make_schedule(spec)
    for epoch in range(45):  # several cosine periods
        want = t_opt.param_groups[0]["lr"]
        # Same recursion in the same Python float operations: equal, not just within 1e-12.
        assert ours.lr_at(base_lr, epoch) == want, epoch
        t_opt.step()
        sched.step()
    # Asked out of order (as on resume), the value is the same.
    assert ours.lr_at(base_lr, 17) == make_schedule(spec).lr_at(base_lr, 17)


# ------------------------------------------------------------------ clipping


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_by_global_norm_matches_torch(max_norm):
    rng = np.random.default_rng(3)
    shapes = [(7, 5), (5,), (5, 3), (3,)]
    tensors = [torch.tensor(rng.standard_normal(s)) for s in shapes]
    for t in tensors:
        t.grad = t.clone()
    flat = np.concatenate([t.grad.numpy().ravel() for t in tensors])
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    norm = global_norm(flat)
    assert norm == pytest.approx(float(total), rel=1e-14)
    clip_by_global_norm(flat, max_norm, norm)
    want = np.concatenate([t.grad.numpy().ravel() for t in tensors])
    np.testing.assert_allclose(flat, want, rtol=1e-14, atol=0)


def test_clip_by_value_matches_torch():
    rng = np.random.default_rng(4)
    grads = rng.standard_normal(50) * 3
    t = torch.tensor(grads.copy(), requires_grad=True)
    t.grad = torch.tensor(grads.copy())
    torch.nn.utils.clip_grad_value_([t], 1.5)
    clip_by_value(grads, 1.5)
    np.testing.assert_array_equal(grads, t.grad.numpy())
