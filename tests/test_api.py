import numpy as np

from dlexp.api import build_model, evaluate, fit, predict


def xor_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    return X, (X[:, 0] * X[:, 1] > 0).astype(np.int64)


def test_fit_predict_evaluate_learns_xor():
    X, y = xor_data()
    model = build_model(2, [16, 16], 1, activation="tanh", output_activation="sigmoid", seed=1)
    history = fit(model, X, y, loss="bce", optimizer={"name": "adam", "lr": 0.03}, epochs=60, seed=2)
    assert [row["epoch"] for row in history] == list(range(61))
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    result = evaluate(model, X, y, loss="bce")
    assert result["accuracy"] >= 0.93
    assert result["loss"] == history[-1]["train_loss"]
    assert predict(model, X).shape == (400,)


def test_same_seed_gives_bit_identical_parameters():
    X, y = xor_data()
    params = []
    for _ in range(2):
        model = build_model(2, [8], 2, output_activation="softmax", dropout=0.3, seed=5)
        fit(model, X, y, loss="sparse_cce", epochs=3, seed=9)
        params.append(model.params.copy())
    np.testing.assert_array_equal(params[0], params[1])


def test_regression_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = build_model(3, [], 1, seed=0)  # a linear model
    fit(model, X, y, loss="mse", optimizer={"name": "sgd", "lr": 0.1}, epochs=100, batch_size="full")
    np.testing.assert_allclose(model.param("layers.0.W")[:, 0], [1.0, -2.0, 0.5], atol=1e-6)
    assert evaluate(model, X, y)["loss"] < 1e-12
