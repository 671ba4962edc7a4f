"""Whole training trajectories against PyTorch in float64: same weights, same batches, same optimizer.

Skipped where torch is absent. Tolerance: parameters agree to rtol 1e-10 after 25 steps (the
difference is summation order in matmuls, amplified a little by each step).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlexp.nn import MLP, make_loss
from dlexp.optim import make_optimizer

TORCH_ACT = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU,
             "silu": torch.nn.SiLU, "softplus": torch.nn.Softplus}


def torch_copy(model: MLP):
    layers = []
    for i in range(model.n_layers):
        lin = torch.nn.Linear(model.sizes[i], model.sizes[i + 1], bias=f"layers.{i}.b" in model.param_names,
                              dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(model.param(f"layers.{i}.W").T.copy()))
            if lin.bias is not None:
                lin.bias.copy_(torch.from_numpy(model.param(f"layers.{i}.b").copy()))
        layers.append(lin)
        if model.is_hidden(i):
            if model.batchnorm:
                layers.append(torch.nn.BatchNorm1d(model.sizes[i + 1], dtype=torch.float64))
            layers.append(TORCH_ACT[model.activation.name]())
    return torch.nn.Sequential(*layers)


def torch_params_in_our_order(net, model):
    out = []
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    bns = [m for m in net if isinstance(m, torch.nn.BatchNorm1d)]
    for name in model.param_names:
        _, i, p = name.split(".")
        i = int(i)
        tensor = {"W": lambda i=i: linears[i].weight.T, "b": lambda i=i: linears[i].bias,
                  "gamma": lambda i=i: bns[i].weight, "beta": lambda i=i: bns[i].bias}[p]()
        out.append(tensor.detach().numpy().reshape(-1))
    return out


@pytest.fixture
def float64_default():
    """torch.optim.NAdam keeps its running momentum product in the default dtype (float32 unless
    changed); dlexp keeps it in float64, so compare with torch's default dtype set to float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


CASES = [
    ("sigmoid", False, "bce", {"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": True}, torch.optim.SGD,
     {"lr": 0.5, "momentum": 0.9, "nesterov": True}),
    ("tanh", False, "sparse_cce", {"name": "adam", "lr": 0.01, "amsgrad": True}, torch.optim.Adam,
     {"lr": 0.01, "amsgrad": True}),
    ("relu", True, "sparse_cce", {"name": "rmsprop", "lr": 0.003, "momentum": 0.5, "centered": True},
     torch.optim.RMSprop, {"lr": 0.003, "momentum": 0.5, "centered": True}),
    ("elu", False, "mse", {"name": "adamw", "lr": 0.01}, torch.optim.AdamW, {"lr": 0.01}),
    ("silu", True, "mse", {"name": "nadam"}, torch.optim.NAdam, {}),
    ("softplus", False, "bce", {"name": "adadelta"}, torch.optim.Adadelta, {}),
    ("tanh", False, "sparse_cce", {"name": "adamax"}, torch.optim.Adamax, {}),
    ("relu", False, "mse", {"name": "adagrad", "lr_decay": 0.01}, torch.optim.Adagrad, {"lr_decay": 0.01}),
]


@pytest.mark.parametrize("act,bn,loss_name,spec,torch_opt,torch_kwargs", CASES, ids=lambda c: str(c)[:12])
def test_training_trajectory_matches_torch(act, bn, loss_name, spec, torch_opt, torch_kwargs, float64_default):
    rng = np.random.default_rng(0)
    n_out = 1 if loss_name == "bce" else 3
    out_act = {"bce": "sigmoid", "sparse_cce": "softmax", "mse": "identity"}[loss_name]
    model = MLP(4, [8, 6], n_out, activation=act, batchnorm=bn, output_activation=out_act, rng=rng,
                init="torch_default")
    net = torch_copy(model)
    loss = make_loss(loss_name)
    opt = make_optimizer(spec)
    state = opt.init(model.params)
    topt = torch_opt(net.parameters(), **torch_kwargs)
    tloss = {"bce": torch.nn.BCEWithLogitsLoss(), "sparse_cce": torch.nn.CrossEntropyLoss(),
             "mse": torch.nn.MSELoss()}[loss_name]
    X = rng.normal(size=(64, 4))
    y = rng.integers(0, 2 if loss_name == "bce" else 3, 64)
    targets = loss.targets(y, n_out, np.float64) if loss_name != "mse" else rng.normal(size=(64, 3))
    for step in range(25):
        idx = slice((step % 4) * 16, (step % 4 + 1) * 16)
        ours = model.loss_and_grads(X[idx], targets[idx], loss)
        opt.step(model.params, model.grads, state, opt.lr)
        topt.zero_grad()
        tt = torch.from_numpy(targets[idx]) if loss_name != "sparse_cce" else torch.from_numpy(y[idx])
        theirs = tloss(net(torch.from_numpy(X[idx])), tt)
        theirs.backward()
        topt.step()
        assert ours == pytest.approx(theirs.item(), rel=1e-10)
    for ours, theirs in zip([model.param(n).reshape(-1) for n in model.param_names],
                            torch_params_in_our_order(net, model)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-13)
