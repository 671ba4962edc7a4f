"""Dropout, BatchNorm, initializers and persistence: behaviour, with the numbers written out."""

import numpy as np
import pytest

from dlexp.nn import INITIALIZERS, MLP
from dlexp.nn.initializers import make_initializer


def _identity_net(p, mode, width=2000, n=400):
    """One hidden identity layer whose weights are the identity matrix: output = dropout(x) summed."""
    model = MLP(width, [width], 1, activation="identity", dropout=p, dropout_mode=mode, rng=np.random.default_rng(0))
    model.param("layers.0.W")[...] = np.eye(width)
    model.param("layers.0.b")[...] = 0
    model.param("layers.1.W")[...] = 1.0 / width
    model.param("layers.1.b")[...] = 0
    return model


def test_inverted_dropout_preserves_expectation_and_is_identity_at_eval():
    p = 0.5
    model = _identity_net(p, "inverted")
    X = np.ones((400, 2000))
    train_out = model.forward(X, training=True, rng=np.random.default_rng(1)).copy()
    # mean of 2000 Bernoulli(0.5)/0.5 per row: expectation 1, std sqrt(p/(1-p)/2000) = 0.0224 per row;
    # averaged over 400 rows: std 0.00112, so 5 sigma = 0.0056
    assert train_out.mean() == pytest.approx(1.0, abs=0.0056)
    kept = model._last_ws.mask[0]
    assert set(np.unique(kept)) == {0.0, 2.0}  # kept units scaled by 1/(1-p)
    assert (kept == 0).mean() == pytest.approx(p, abs=0.005)
    eval_out = model.forward(X, training=False)
    np.testing.assert_allclose(eval_out, 1.0, rtol=1e-12)  # no dropout at evaluation


def test_scale_at_inference_dropout_and_the_two_modes_agree_in_expectation():
    p = 0.3
    X = np.ones((400, 2000))
    paper = _identity_net(p, "scale_at_inference")
    train_out = paper.forward(X, training=True, rng=np.random.default_rng(2)).copy()
    assert set(np.unique(paper._last_ws.mask[0])) == {0.0, 1.0}  # no scaling while training
    assert train_out.mean() == pytest.approx(1 - p, abs=0.005)
    eval_out = paper.forward(X, training=False)
    np.testing.assert_allclose(eval_out, 1 - p, rtol=1e-12)  # activations scaled by (1 - p) at evaluation
    inverted = _identity_net(p, "inverted")
    inv_train = inverted.forward(X, training=True, rng=np.random.default_rng(2)).copy()
    # same masks (same generator), so inverted training output = paper training output / (1 - p)
    np.testing.assert_allclose(inv_train, train_out / (1 - p), rtol=1e-12)
    # and each mode's evaluation output equals its own training expectation
    assert inv_train.mean() == pytest.approx(inverted.forward(X, training=False).mean(), abs=0.006)


def test_dropout_masks_come_from_the_passed_generator_only():
    model = MLP(5, [50, 50], 2, dropout=0.5, rng=np.random.default_rng(0))
    X = np.random.default_rng(9).normal(size=(20, 5))
    np.random.seed(123)
    a = model.forward(X, training=True, rng=np.random.default_rng(7)).copy()
    np.random.seed(456)  # global state must not matter
    b = model.forward(X, training=True, rng=np.random.default_rng(7)).copy()
    c = model.forward(X, training=True, rng=np.random.default_rng(8)).copy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_batchnorm_train_vs_eval_and_running_statistics():
    rng = np.random.default_rng(3)
    model = MLP(3, [4], 2, activation="identity", batchnorm=True, rng=rng)
    assert "layers.0.b" not in model.param_names  # beta replaces the Dense bias
    X = rng.normal(2.0, 3.0, size=(16, 3))
    model.forward(X, training=True)
    z = X @ model.param("layers.0.W")
    u = model._last_ws.u[0]
    np.testing.assert_allclose(u.mean(axis=0), 0, atol=1e-12)  # gamma 1, beta 0: normalised
    np.testing.assert_allclose(u.var(axis=0), z.var(axis=0) / (z.var(axis=0) + 1e-5), rtol=1e-12)
    rm = model.buffers["layers.0.running_mean"]
    rv = model.buffers["layers.0.running_var"]
    np.testing.assert_allclose(rm, 0.1 * z.mean(axis=0), rtol=1e-12)  # momentum 0.1 from 0
    np.testing.assert_allclose(rv, 0.9 + 0.1 * z.var(axis=0, ddof=1), rtol=1e-12)  # unbiased, from 1
    # evaluation uses running statistics, not the batch's
    model.forward(X, training=False)
    expected = (z - rm) / np.sqrt(rv + 1e-5)
    np.testing.assert_allclose(model._last_ws.u[0], expected, rtol=1e-12)


def test_batchnorm_matches_torch_batchnorm1d():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    model = MLP(3, [5], 2, activation="identity", batchnorm=True, rng=rng)
    model.param("layers.0.gamma")[...] = rng.normal(size=5)
    model.param("layers.0.beta")[...] = rng.normal(size=5)
    bn = torch.nn.BatchNorm1d(5, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(model.param("layers.0.gamma").copy()))
        bn.bias.copy_(torch.from_numpy(model.param("layers.0.beta").copy()))
    for _ in range(3):
        X = rng.normal(1, 2, size=(8, 3))
        model.forward(X, training=True)
        z = torch.from_numpy(X @ model.param("layers.0.W"))
        ours = model._last_ws.u[0]
        np.testing.assert_allclose(ours, bn.train()(z).detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.buffers["layers.0.running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(model.buffers["layers.0.running_var"], bn.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name,fan_in,fan_out,expected_std", [
    ("xavier_uniform", 300, 200, np.sqrt(2 / 500)),
    ("xavier_normal", 300, 200, np.sqrt(2 / 500)),
    ("he_uniform", 300, 200, np.sqrt(2 / 300)),
    ("he_normal", 300, 200, np.sqrt(2 / 300)),
    ("lecun_normal", 300, 200, np.sqrt(1 / 300)),
    ("normal", 300, 200, 0.01),
    ("uniform", 300, 200, 0.05 / np.sqrt(3)),
    ("torch_default", 300, 200, 1 / np.sqrt(300) / np.sqrt(3)),
])
def test_initializer_scales(name, fan_in, fan_out, expected_std):
    W, b = make_initializer(name)(fan_in, fan_out, np.random.default_rng(0))
    assert W.shape == (fan_in, fan_out) and b.shape == (fan_out,)
    # 60000 draws: the sample std is within 1.5% of the true std (> 5 standard errors)
    assert W.std() == pytest.approx(expected_std, rel=0.015)
    assert abs(W.mean()) < 4 * expected_std / np.sqrt(W.size)
    if name == "torch_default":
        assert np.abs(b).max() <= 1 / np.sqrt(fan_in) and b.std() > 0
    else:
        assert not b.any()


def test_every_initializer_is_tested():
    assert set(INITIALIZERS.names()) == {"xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal",
                                         "normal", "uniform", "torch_default"}


def test_unknown_names_are_refused_with_a_suggestion():
    with pytest.raises(ValueError, match="did you mean 'he_normal'"):
        make_initializer("he_norml")
    with pytest.raises(ValueError, match="has no argument 'slope'"):
        MLP(2, [2], 1, activation={"name": "leaky_relu", "slope": 0.1})


def test_parameter_names_layout_and_flat_buffer():
    model = MLP(4, [3, 3], 2, batchnorm=True, rng=np.random.default_rng(0))
    assert model.param_names == ["layers.0.W", "layers.0.gamma", "layers.0.beta", "layers.1.W", "layers.1.gamma",
                                 "layers.1.beta", "layers.2.W", "layers.2.b"]
    assert model.n_params == 4 * 3 + 3 + 3 + 3 * 3 + 3 + 3 + 3 * 2 + 2
    assert model.n_weights == 4 * 3 + 3 * 3 + 3 * 2  # weights come first in memory
    model.param("layers.1.W")[0, 0] = 42.0  # views write through to the flat buffer
    assert 42.0 in model.params


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_and_load_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    model = MLP(3, [4, 4], 2, batchnorm=True, dropout=0.2, activation="elu", dtype=dtype, rng=rng)
    X = rng.normal(size=(10, 3))
    model.forward(X, training=True, rng=rng)  # move the running statistics
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = MLP.load(path)
    assert loaded.param_names == model.param_names
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    with np.load(path, allow_pickle=False) as data:
        assert {"layers.0.W", "layers.0.running_mean", "layers.2.b"} <= set(data.files)
        assert data["layers.0.W"].dtype == np.dtype(dtype)
    first = path.read_bytes()
    model.save(path)
    assert path.read_bytes() == first  # byte-reproducible npz


def test_predict_and_predict_proba():
    rng = np.random.default_rng(0)
    model = MLP(2, [3], 3, output_activation="softmax", rng=rng)
    X = rng.normal(size=(5, 2))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(model.predict(X), proba.argmax(axis=1))
    binary = MLP(2, [3], 1, output_activation="sigmoid", rng=rng)
    p = binary.predict_proba(X)[:, 0]
    np.testing.assert_array_equal(binary.predict(X), (p >= 0.5).astype(int))


def test_layer_stats_saturation_and_dead_units():
    model = MLP(2, [4], 1, activation="relu", rng=np.random.default_rng(0))
    model.param("layers.0.W")[...] = np.array([[1.0, -1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    model.param("layers.0.b")[...] = np.array([0.0, 0.0, -100.0, 0.0])
    X = np.array([[1.0, 0.0], [2.0, 0.0]])  # unit 0 alive; 1, 2, 3 zero for every sample
    model.forward(X, training=True)
    stats = model.layer_stats()
    assert stats[0]["dead_fraction"] == 0.75
    assert stats[0]["saturated_fraction"] == 0.75  # relu' = 0 < 5% of 1 on 6 of 8 entries
    sig = MLP(1, [2], 1, activation="sigmoid", rng=np.random.default_rng(0))
    sig.param("layers.0.W")[...] = [[10.0, 0.1]]
    sig.param("layers.0.b")[...] = 0
    sig.forward(np.array([[1.0], [-1.0]]), training=True)
    # sigmoid'(±10) = 4.5e-5 < 0.0125: saturated; sigmoid'(±0.1) ~ 0.249: not
    assert sig.layer_stats()[0]["saturated_fraction"] == 0.5


@pytest.mark.parametrize("name", ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "silu"])
def test_fast_saturated_count_equals_the_derivative_definition(name):
    from dlexp.nn.activations import SATURATION_LEVEL, make_activation

    act = make_activation(name)
    z = np.linspace(-12, 12, 4801).reshape(1, -1)
    a = act.forward(z, np.empty_like(z))
    by_definition = int(np.count_nonzero(act.derivative(z, a) < SATURATION_LEVEL * act.max_derivative))
    assert act.saturated_count(z, a) == by_definition


@pytest.mark.parametrize("hidden", [[4, 4], [300, 300]])  # reduceat branch and per-segment dot branch
def test_segment_norms_equal_per_parameter_norms(hidden):
    model = MLP(50, hidden, 3, batchnorm=True, rng=np.random.default_rng(0))
    norms = np.sqrt(model.segment_squares(model.params, np.empty_like(model.params)))
    expected = [np.linalg.norm(model.param(name)) for name in model.memory_order]
    np.testing.assert_allclose(norms, expected, rtol=1e-12)


@pytest.mark.parametrize("hidden,act,bn", [([5, 7, 3], "sigmoid", False), ([200, 150], "relu", False),
                                           ([6, 6], "tanh", True), ([300, 64], "elu", True)])
def test_layer_stats_equal_direct_computation(hidden, act, bn):
    """Both the reduceat path (small layers) and the per-layer path (large layers)."""
    from dlexp.nn.activations import SATURATION_LEVEL

    rng = np.random.default_rng(0)
    model = MLP(4, hidden, 2, activation=act, batchnorm=bn, init={"name": "normal", "std": 1.5}, rng=rng)
    model.forward(rng.normal(size=(50, 4)), training=True)
    ws = model._last_ws
    for i, row in enumerate(model.layer_stats()[:-1]):
        a, u = ws.a[i], ws.u[i]
        assert row["act_mean"] == pytest.approx(a.mean(), rel=1e-9, abs=1e-12)
        assert row["act_std"] == pytest.approx(a.std(), rel=1e-6)
        d = model.activation.derivative(u, a)
        assert row["saturated_fraction"] == np.mean(d < SATURATION_LEVEL * model.activation.max_derivative)
        expected_dead = np.mean(~a.any(axis=0)) if act == "relu" else 0.0
        assert row["dead_fraction"] == expected_dead


def test_layernorm_normalises_each_sample_and_keeps_the_dense_bias():
    rng = np.random.default_rng(5)
    model = MLP(3, [6], 2, activation="identity", norm="layernorm", rng=rng)
    assert {"layers.0.b", "layers.0.gamma", "layers.0.beta"} <= set(model.param_names)
    assert model.buffers == {}  # no running statistics
    X = rng.normal(2.0, 3.0, size=(16, 3))
    train = model.forward(X, training=True).copy()
    u = model._last_ws.u[0]
    z = X @ model.param("layers.0.W") + model.param("layers.0.b")
    np.testing.assert_allclose(u.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(u.var(axis=1), z.var(axis=1) / (z.var(axis=1) + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(model.forward(X, training=False), train)  # one function in both modes


def test_selu_keeps_mean_0_and_variance_1_through_many_layers():
    """Klambauer et al. (2017): with LeCun-normal weights, SELU maps mean 0 / variance 1 to itself.
    64 layers of width 256 on 500 standard-normal samples: every layer's mean within 0.1 of 0 and
    variance within 0.2 of 1 (sampling error of the weights is about 1/sqrt(256) per layer; each layer's
    statistics pool 128,000 values, so the sample count hardly matters: 2000 samples give a worst
    |mean| of 0.033 and |var − 1| of 0.043, 500 give 0.041 and 0.043)."""
    rng = np.random.default_rng(6)
    model = MLP(256, [256] * 64, 1, activation="selu", init="lecun_normal", rng=rng)
    model.forward(rng.normal(size=(500, 256)), training=False)
    for a in model._last_ws.a[:-1]:
        assert abs(a.mean()) < 0.1 and abs(a.var() - 1.0) < 0.2


def test_alpha_dropout_keeps_mean_and_variance_and_is_the_identity_at_evaluation():
    rng = np.random.default_rng(7)
    model = MLP(4, [4], 1, activation="identity", dropout=0.3, dropout_mode="alpha", rng=rng)
    ws = model._workspace(200_000)
    x = rng.normal(size=(200_000, 4))
    out = model._dropout_forward(0, x, ws, True, np.random.default_rng(8)).copy()
    assert abs(out.mean()) < 0.01 and abs(out.var() - 1.0) < 0.01  # std error ~0.002 on 800,000 values
    dropped = out[ws.mask[0] == 0]
    assert 0.29 < dropped.size / out.size < 0.31
    np.testing.assert_allclose(dropped, dropped[0])  # every dropped unit takes one value
    assert model._dropout_forward(0, x, ws, False, None) is x


def test_residual_block_adds_its_input():
    rng = np.random.default_rng(9)
    plain = MLP(3, [4, 4, 4], 2, activation="tanh", rng=np.random.default_rng(1))
    res = MLP(3, [4, 4, 4], 2, activation="tanh", residual=2, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(plain.params, res.params)  # same layout: skips have no parameters
    X = rng.normal(size=(5, 3))
    res.forward(X)
    ws = res._last_ws
    h0 = ws.a[0]
    np.testing.assert_allclose(ws.inputs[3], h0 + ws.a[2], rtol=1e-15)  # h ← h + f(h) around layers 1-2
    assert res.blocks == [(1, 2)]


def test_residual_refuses_widths_and_depths_that_do_not_fit():
    with pytest.raises(ValueError, match=r"hidden layer 1 adds layer 0's output to layer 1's.*\[8, 4\]"):
        MLP(3, [8, 4], 2, residual=1)
    with pytest.raises(ValueError, match=r"1 \+ a multiple of 3 \(got 3; e.g. 4\)"):
        MLP(3, [4, 4, 4], 2, residual=3)


def test_new_pieces_round_trip_through_save_and_load(tmp_path):
    rng = np.random.default_rng(10)
    model = MLP(3, [5, 5, 5], 2, activation={"name": "gelu", "approximate": "tanh"}, norm="layernorm",
                residual=1, dropout=0.2, dropout_mode="alpha", output_activation="softmax", rng=rng)
    model.save(tmp_path / "m.npz")
    loaded = MLP.load(tmp_path / "m.npz")
    X = rng.normal(size=(7, 3))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert (loaded.norm, loaded.residual, loaded.dropout_mode) == ("layernorm", 1, "alpha")
    # a model without the new pieces writes no new architecture keys (its checkpoints keep their bytes)
    assert not {"norm", "residual"} & set(MLP(3, [4], 2).architecture)
