"""Float64 central-difference checks of every backward in the engine. Tolerance: relative error ≤ 1e-6
(defined in dlexp.nn.gradcheck: max |g − n| / max(|g|, |n|)), step h = 1e-6."""

import numpy as np
import pytest

from dlexp.nn import ACTIVATIONS, LOSSES, MLP, make_activation, make_loss
from dlexp.nn.batchnorm import batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train
from dlexp.nn.gradcheck import check_model, relative_error
from dlexp.nn.layernorm import layernorm_backward, layernorm_forward

TOL = 1e-6
H = 1e-6


def numeric_grad(f, x, h=H):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


ACTIVATION_SPECS = ["identity", "sigmoid", "tanh", "relu", {"name": "leaky_relu", "negative_slope": 0.1},
                    {"name": "elu", "alpha": 1.3}, "softplus", "silu", "selu", "gelu",
                    {"name": "gelu", "approximate": "tanh"}]


@pytest.mark.parametrize("spec", ACTIVATION_SPECS, ids=lambda s: s if isinstance(s, str) else s["name"])
def test_activation_backward_matches_finite_differences(spec):
    act = make_activation(spec)
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, size=(6, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the ReLU kink, where the derivative is undefined
    weights = rng.normal(size=z.shape)

    def f():
        return float((act.forward(z, np.empty_like(z)) * weights).sum())

    a = act.forward(z, np.empty_like(z))
    analytic = act.backward(z, a, weights.copy(), np.empty_like(z))
    assert relative_error(analytic, numeric_grad(f, z)) <= TOL
    # derivative() agrees with backward()
    np.testing.assert_allclose(act.derivative(z, a) * weights, analytic, rtol=1e-12, atol=1e-15)


def test_every_registered_activation_is_checked():
    checked = {s if isinstance(s, str) else s["name"] for s in ACTIVATION_SPECS}
    assert checked == set(ACTIVATIONS.names())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu", "selu", "gelu",
                                  {"name": "gelu", "approximate": "tanh"}], ids=str)
def test_activations_stable_at_large_inputs(name, dtype):
    act = make_activation(name)
    z = np.array([[-1e3, -100.0, -30.0, 0.0, 30.0, 100.0, 1e3]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = act.forward(z, np.empty_like(z))
        d = act.derivative(z, a)
        g = act.backward(z, a, np.ones_like(z), np.empty_like(z))
    assert np.isfinite(a).all() and np.isfinite(d).all() and np.isfinite(g).all()
    assert a.dtype == dtype


def test_activation_maximum_derivatives():
    z = np.linspace(-10, 10, 200001).reshape(1, -1)
    for name, bound in [("sigmoid", 0.25), ("tanh", 1.0)]:
        act = make_activation(name)
        d = act.derivative(z, act.forward(z, np.empty_like(z)))
        assert d.max() == pytest.approx(bound, rel=1e-9)
        assert act.max_derivative == bound
    # SELU's slope is largest just left of 0 (λα); GELU's near z = 1.5 (the grid step is 1e-4)
    for spec, rel in [("selu", 1e-4), ("gelu", 1e-9), ({"name": "gelu", "approximate": "tanh"}, 1e-9)]:
        act = make_activation(spec)
        d = act.derivative(z, act.forward(z, np.empty_like(z)))
        assert d.max() == pytest.approx(act.max_derivative, rel=rel)


def _targets_for(loss, rng, n, k):
    if loss.name == "sparse_cce":
        return rng.integers(0, k, n)
    if loss.name == "bce":
        return rng.integers(0, 2, (n, k)).astype(float)
    if loss.name == "cce":
        p = rng.random((n, k))
        return p / p.sum(axis=1, keepdims=True)  # probability targets, not only one-hot
    return rng.normal(size=(n, k))


LOSS_SPECS = ["mse", "mae", "huber", {"name": "huber", "delta": 0.3}, "bce", "cce", "sparse_cce"]


def test_every_registered_loss_is_checked():
    checked = {s if isinstance(s, str) else s["name"] for s in LOSS_SPECS}
    assert checked == set(LOSSES.names())


@pytest.mark.parametrize("spec", LOSS_SPECS, ids=str)
def test_loss_gradient_matches_finite_differences(spec):
    loss = make_loss(spec)
    rng = np.random.default_rng(2)
    out = rng.normal(0, 2, size=(7, 3))
    t = _targets_for(loss, rng, 7, 3)
    grad = np.empty_like(out)
    value = loss.value_and_grad(out, t, grad)
    assert value == pytest.approx(loss.value(out, t), rel=1e-14)
    assert relative_error(grad, numeric_grad(lambda: loss.value(out, t), out)) <= TOL


def test_losses_match_hand_computed_values():
    out = np.array([[0.5, -1.0], [2.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert make_loss("mse").value(out, y) == pytest.approx((0.25 + 1 + 4 + 0) / 4, rel=1e-15)
    assert make_loss("mae").value(out, y) == pytest.approx((0.5 + 1 + 2 + 0) / 4, rel=1e-15)
    # huber delta 1: 0.5*0.25, 0.5*1 (|d|=1 is not < 1: linear branch 1*(1-0.5)=0.5), 1*(2-0.5), 0
    assert make_loss("huber").value(out, y) == pytest.approx((0.125 + 0.5 + 1.5 + 0) / 4, rel=1e-15)
    bce = -np.mean(y * np.log(1 / (1 + np.exp(-out))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-out))))
    assert make_loss("bce").value(out, y) == pytest.approx(bce, rel=1e-13)
    p = np.exp(out) / np.exp(out).sum(axis=1, keepdims=True)
    labels = np.array([0, 1])
    assert make_loss("sparse_cce").value(out, labels) == pytest.approx(-np.mean(np.log(p[[0, 1], labels])), rel=1e-13)
    assert make_loss("cce").value(out, np.eye(2)[labels]) == pytest.approx(-np.mean(np.log(p[[0, 1], labels])), rel=1e-13)
    assert make_loss("log_loss").name == "bce"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_losses_do_not_overflow(dtype):
    out = np.array([[1e3, -1e3], [-1e3, 1e3]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for name, t in [("bce", np.array([[1.0, 0.0], [0.0, 1.0]], dtype=dtype)), ("sparse_cce", np.array([0, 1])),
                        ("cce", np.eye(2, dtype=dtype))]:
            loss = make_loss(name)
            grad = np.empty_like(out)
            value = loss.value_and_grad(out, t, grad)
            assert np.isfinite(value) and np.isfinite(grad).all()
            assert value == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_backward(training):
    rng = np.random.default_rng(3)
    n, m = 8, 4
    z = rng.normal(1.0, 2.0, size=(n, m))
    gamma, beta = rng.normal(size=m), rng.normal(size=m)
    rm, rv = rng.normal(size=m), rng.random(m) + 0.5
    w = rng.normal(size=(n, m))
    ones = np.ones(n)

    def forward():
        xhat, out = np.empty_like(z), np.empty_like(z)
        if training:
            inv = batchnorm_forward_train(z, gamma, beta, rm.copy(), rv.copy(), xhat, out, ones)
        else:
            inv = batchnorm_forward_eval(z, gamma, beta, rm, rv, xhat, out)
        return out, xhat, inv

    f = lambda: float((forward()[0] * w).sum())
    _out, xhat, inv = forward()
    dgamma, dbeta, dz = np.empty(m), np.empty(m), np.empty_like(z)
    batchnorm_backward(w.copy(), xhat, inv, gamma, dgamma, dbeta, dz, ones, training)
    assert relative_error(dz, numeric_grad(f, z)) <= TOL
    assert relative_error(dgamma, numeric_grad(f, gamma)) <= TOL
    assert relative_error(dbeta, numeric_grad(f, beta)) <= TOL


def test_layernorm_backward():
    rng = np.random.default_rng(3)
    n, m = 6, 5
    z = rng.normal(1.0, 2.0, size=(n, m))
    gamma, beta = rng.normal(size=m), rng.normal(size=m)
    w = rng.normal(size=(n, m))

    def forward():
        xhat, out = np.empty_like(z), np.empty_like(z)
        inv = layernorm_forward(z, gamma, beta, xhat, out)
        return out, xhat, inv

    f = lambda: float((forward()[0] * w).sum())
    _out, xhat, inv = forward()
    dgamma, dbeta, dz = np.empty(m), np.empty(m), np.empty_like(z)
    layernorm_backward(w.copy(), xhat, inv, gamma, dgamma, dbeta, dz, np.ones(n))
    assert relative_error(dz, numeric_grad(f, z)) <= TOL
    assert relative_error(dgamma, numeric_grad(f, gamma)) <= TOL
    assert relative_error(dbeta, numeric_grad(f, beta)) <= TOL


MODEL_CASES = [
    {"hidden": [], "activation": "relu"},  # logistic / linear model
    {"hidden": [5], "activation": "tanh"},
    {"hidden": [6, 5, 4], "activation": "sigmoid"},
    {"hidden": [5] * 6, "activation": "silu", "init": "he_normal"},
    {"hidden": [4, 4], "activation": "elu", "batchnorm": True},
    {"hidden": [6, 5], "activation": "tanh", "dropout": 0.3},
    {"hidden": [6, 5], "activation": "softplus", "dropout": 0.5, "dropout_mode": "scale_at_inference", "batchnorm": True},
    {"hidden": [5, 5], "activation": {"name": "leaky_relu", "negative_slope": 0.2}, "init": "torch_default"},
    {"hidden": [5, 5, 5], "activation": "tanh", "residual": 1},
    {"hidden": [4, 4, 4, 4, 4], "activation": "selu", "init": "lecun_normal", "residual": 2, "dropout": 0.3,
     "dropout_mode": "alpha"},
    {"hidden": [5, 4], "activation": "gelu", "norm": "layernorm"},
    {"hidden": [5, 5, 5], "activation": {"name": "gelu", "approximate": "tanh"}, "norm": "layernorm",
     "residual": 1, "dropout": 0.2},
    {"hidden": [4, 4, 4], "activation": "relu", "init": "he_normal", "batchnorm": True, "residual": 2},
]


def _case_id(case: dict) -> str:
    act = case["activation"] if isinstance(case["activation"], str) else case["activation"]["name"]
    extras = [k for k in ("batchnorm", "norm", "residual", "dropout") if k in case]
    return "-".join([f"{len(case['hidden'])}x{act}", *extras])


@pytest.mark.parametrize("case", MODEL_CASES, ids=_case_id)
@pytest.mark.parametrize("loss_name,out_act", [("sparse_cce", "softmax"), ("bce", "sigmoid"), ("mse", "identity"),
                                               ("mse", "sigmoid"), ("huber", "softmax")])
def test_whole_model_gradients(case, loss_name, out_act):
    rng = np.random.default_rng(4)
    n_out = 1 if loss_name == "bce" else 3
    model = MLP(3, output_activation=out_act, n_outputs=n_out, rng=rng, **case)
    X = rng.normal(size=(9, 3))
    loss = make_loss(loss_name)
    labels = rng.integers(0, n_out if n_out > 1 else 2, 9)
    t = loss.targets(labels, n_out, np.float64) if loss_name != "mse" else rng.normal(size=(9, n_out))
    results = check_model(model, X, t, loss, l1=0.01, l2=0.02)
    worst = max(results, key=lambda r: r.rel_error)
    assert worst.rel_error <= TOL, worst


@pytest.mark.parametrize("loss_name,out_act", [("sparse_cce", "softmax"), ("bce", "sigmoid"), ("mse", "sigmoid"),
                                               ("mse", "identity")])
def test_loss_value_is_loss_and_grads_value_without_touching_the_grads(loss_name, out_act):
    """What the central differences evaluate: the same loss, bit for bit (fused and not, BatchNorm and
    dropout in training mode), and the gradients left as they were."""
    rng = np.random.default_rng(8)
    n_out = 1 if loss_name == "bce" else 3
    model = MLP(3, [6, 5], n_out, activation="tanh", batchnorm=True, dropout=0.3, output_activation=out_act,
                rng=rng)
    X = rng.normal(size=(9, 3))
    loss = make_loss(loss_name)
    t = loss.targets(rng.integers(0, max(n_out, 2), 9), n_out, np.float64) if loss_name != "mse" \
        else rng.normal(size=(9, n_out))
    model.grads[...] = 7.0
    value = model.loss_value(X, t, loss, training=True, rng=np.random.default_rng(1))
    assert (model.grads == 7.0).all()
    assert value == model.loss_and_grads(X, t, loss, training=True, rng=np.random.default_rng(1))


def test_penalty_value_and_gradient_weights_only():
    rng = np.random.default_rng(5)
    model = MLP(3, [4], 2, rng=rng, init="torch_default")
    W0, W1 = model.param("layers.0.W"), model.param("layers.1.W")
    expected = 0.1 * (np.abs(W0).sum() + np.abs(W1).sum()) + 0.2 * ((W0**2).sum() + (W1**2).sum())
    assert model.penalty(0.1, 0.2) == pytest.approx(expected, rel=1e-14)
    model.grads[...] = 0
    model.add_penalty_grad(0.1, 0.2)
    np.testing.assert_allclose(model.grad("layers.0.W"), 0.1 * np.sign(W0) + 0.4 * W0, rtol=1e-15)
    assert not model.grad("layers.0.b").any()  # biases carry no penalty


def test_check_model_detects_a_broken_backward(monkeypatch):
    rng = np.random.default_rng(6)
    model = MLP(3, [4, 4], 2, activation="tanh", rng=rng)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    act = model.activation
    original = act.backward

    def broken(z, a, grad_a, out):
        result = original(z, a, grad_a, out)
        result *= 1.01  # a 1% error in one derivative
        return result

    monkeypatch.setattr(act, "backward", broken)
    results = check_model(model, X, y, make_loss("sparse_cce"))
    assert not all(r.passed for r in results)
    assert results[-1].passed  # the output layer is upstream of the broken activation, so still right
