"""SELU, GELU, LayerNorm, alpha dropout and residual blocks against their PyTorch counterparts in float64.

Skipped where torch is absent. Tolerances: activations, alpha dropout and LayerNorm's forward
agree to rtol 1e-13 (LayerNorm's input gradient to 1e-11: row sums in another order); whole networks'
losses to rtol 1e-12 and gradients to rtol 1e-10.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlexp.nn import MLP, make_activation, make_loss
from dlexp.nn.layernorm import layernorm_backward, layernorm_forward

RTOL = 1e-13


def _activation_and_grad(module, z: np.ndarray, weights: np.ndarray):
    t = torch.from_numpy(z.copy()).requires_grad_(True)
    out = module(t)
    (out * torch.from_numpy(weights)).sum().backward()
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("spec,module", [
    ("selu", torch.nn.SELU()),
    ("gelu", torch.nn.GELU()),
    ({"name": "gelu", "approximate": "tanh"}, torch.nn.GELU(approximate="tanh")),
], ids=["selu", "gelu", "gelu-tanh"])
def test_activation_matches_torch(spec, module):
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 3, size=(8, 16)), np.linspace(-30, 30, 16)[None, :]])
    weights = rng.normal(size=z.shape)
    act = make_activation(spec)
    a = act.forward(z, np.empty_like(z))
    grad = act.backward(z, a, weights.copy(), np.empty_like(z))
    expected_a, expected_grad = _activation_and_grad(module, z, weights)
    # atol 1e-14: for z << 0 GELU's tanh-form slope is a difference of two terms near 0.5 (cancellation)
    np.testing.assert_allclose(a, expected_a, rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(grad, expected_grad, rtol=RTOL, atol=1e-14)


def test_layernorm_matches_torch():
    rng = np.random.default_rng(1)
    n, m = 7, 6
    z = rng.normal(2.0, 3.0, size=(n, m))
    gamma, beta, weights = rng.normal(size=m), rng.normal(size=m), rng.normal(size=(n, m))
    xhat, out = np.empty_like(z), np.empty_like(z)
    inv_std = layernorm_forward(z, gamma, beta, xhat, out)
    dgamma, dbeta, dz = np.empty(m), np.empty(m), np.empty_like(z)
    layernorm_backward(weights.copy(), xhat, inv_std, gamma, dgamma, dbeta, dz, np.ones(n))

    layer = torch.nn.LayerNorm(m, dtype=torch.float64)  # eps 1e-5, elementwise affine: the defaults
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(gamma))
        layer.bias.copy_(torch.from_numpy(beta))
    t = torch.from_numpy(z.copy()).requires_grad_(True)
    result = layer(t)
    (result * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(out, result.detach().numpy(), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(dz, t.grad.numpy(), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(dgamma, layer.weight.grad.numpy(), rtol=RTOL, atol=1e-14)
    np.testing.assert_allclose(dbeta, layer.bias.grad.numpy(), rtol=RTOL, atol=1e-14)


class _FixedUniform:
    """Stands in for a numpy Generator: ``random(out=...)`` writes prescribed numbers (0 drops, 1 keeps)."""

    def __init__(self, values: np.ndarray):
        self.values = values

    def random(self, out, dtype):
        out[...] = self.values


def test_alpha_dropout_matches_torch():
    p = 0.2
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 8))
    torch.manual_seed(0)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    result = torch.nn.AlphaDropout(p).train()(t)
    weights = rng.normal(size=x.shape)
    (result * torch.from_numpy(weights)).sum().backward()
    theirs = result.detach().numpy()
    # torch's mask, read back: a dropped unit's output is one constant whatever its input
    values, counts = np.unique(theirs, return_counts=True)
    dropped_value = values[counts.argmax()]
    keep = theirs != dropped_value
    assert 0.6 < keep.mean() < 0.95

    model = MLP(8, [8], 1, activation="identity", dropout=p, dropout_mode="alpha", rng=rng)
    ws = model._workspace(len(x))
    ours = model._dropout_forward(0, x, ws, True, _FixedUniform(keep.astype(np.float64)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=1e-15)
    # the gradient through alpha dropout is the mask's multiplicative part: torch's dL/dx
    np.testing.assert_allclose(weights * ws.mask[0], t.grad.numpy(), rtol=RTOL, atol=1e-15)
    # evaluation: the identity, as torch
    assert model._dropout_forward(0, x, ws, False, None) is x


class _TorchMLP(torch.nn.Module):
    """An MLP built like dlexp's: Linear → [LayerNorm] → activation, h ← h + block(h) on residual blocks."""

    def __init__(self, model: MLP, activation: torch.nn.Module):
        super().__init__()
        self.model = model
        self.linears = torch.nn.ModuleList()
        self.norms = torch.nn.ModuleList()
        for i in range(model.n_layers):
            lin = torch.nn.Linear(model.sizes[i], model.sizes[i + 1], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(model.param(f"layers.{i}.W").T.copy()))
                lin.bias.copy_(torch.from_numpy(model.param(f"layers.{i}.b").copy()))
            self.linears.append(lin)
            if model.is_hidden(i) and model.norm == "layernorm":
                norm = torch.nn.LayerNorm(model.sizes[i + 1], dtype=torch.float64)
                with torch.no_grad():
                    norm.weight.copy_(torch.from_numpy(model.param(f"layers.{i}.gamma").copy()))
                    norm.bias.copy_(torch.from_numpy(model.param(f"layers.{i}.beta").copy()))
                self.norms.append(norm)
        self.activation = activation
        self.block_start = {last: start for start, last in model.blocks}

    def forward(self, x):
        h = x
        inputs = {}
        for i, lin in enumerate(self.linears):
            inputs[i] = h
            z = lin(h)
            if i == len(self.linears) - 1:
                return z
            if len(self.norms):
                z = self.norms[i](z)
            h = self.activation(z)
            if i in self.block_start:
                h = h + inputs[self.block_start[i]]
        raise AssertionError("unreachable")

    def grads_in_order(self):
        out = []
        for name in self.model.param_names:
            _, i, p = name.split(".")
            i = int(i)
            if p in ("W", "b"):
                tensor = self.linears[i].weight.grad.T if p == "W" else self.linears[i].bias.grad
            else:
                tensor = self.norms[i].weight.grad if p == "gamma" else self.norms[i].bias.grad
            out.append((name, tensor.numpy()))
        return out


@pytest.mark.parametrize("hidden,residual,norm,act,module", [
    ([6, 6, 6, 6, 6], 2, "none", "selu", torch.nn.SELU()),
    ([6, 6, 6, 6], 1, "layernorm", "gelu", torch.nn.GELU()),
    ([5, 7, 7], 0, "layernorm", {"name": "gelu", "approximate": "tanh"}, torch.nn.GELU(approximate="tanh")),
    ([8, 8, 8, 8], 3, "layernorm", "relu", torch.nn.ReLU()),
], ids=["selu-res2", "gelu-ln-res1", "gelu-tanh-ln", "relu-ln-res3"])
def test_network_loss_and_gradients_match_torch(hidden, residual, norm, act, module):
    rng = np.random.default_rng(3)
    model = MLP(4, hidden, 3, activation=act, norm=norm, residual=residual, output_activation="softmax",
                init="lecun_normal", rng=rng)
    if norm == "layernorm":  # move gamma and beta off 1 and 0 so that they are exercised
        for i in range(len(hidden)):
            model.param(f"layers.{i}.gamma")[...] = rng.uniform(0.5, 1.5, hidden[i])
            model.param(f"layers.{i}.beta")[...] = rng.normal(0, 0.3, hidden[i])
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    loss = make_loss("sparse_cce")
    ours = model.loss_and_grads(X, loss.targets(y, 3, np.float64), loss)
    net = _TorchMLP(model, module)
    theirs = torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y))
    theirs.backward()
    assert ours == pytest.approx(theirs.item(), rel=1e-12)
    for name, expected in net.grads_in_order():
        np.testing.assert_allclose(model.grad(name), expected, rtol=1e-10, atol=1e-13, err_msg=name)
