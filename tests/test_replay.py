"""A CSV run with ``shuffle: false`` replayed batch by batch elsewhere, in file order.

The run trains on every row of data/iris.csv (no val or test split) with standardized features.
The replay reads the CSV itself, standardizes with the training rows' mean and population std as
the run does, starts from the run's ``checkpoints/init.npz`` and takes the batches in file order:
through ``dlexp.nn`` / ``dlexp.optim`` the final weights are bit-identical to ``final.npz``; through
torch.optim in float64 (skipped without torch) they agree to rtol 1e-12 (atol 1e-14 for
coordinates near zero): the same tolerances as tests/test_optim_torch.py, where torch's fused
multiply-adds round differently from NumPy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_config

from dlexp.nn import MLP, make_loss
from dlexp.optim import make_optimizer

CSV = REPO / "data" / "iris.csv"
EPOCHS, BATCH = 3, 16  # 150 rows: 9 batches of 16 and a last one of 6 per epoch
OPTIMIZERS = {
    "adam": ({"name": "adam", "lr": 0.01}, "Adam", {"lr": 0.01}),
    "momentum": ({"name": "sgd", "lr": 0.05, "momentum": 0.9}, "SGD", {"lr": 0.05, "momentum": 0.9}),
}


def train_run(cli, tmp_path, optimizer: dict):
    config = write_config(tmp_path / "replay.yaml", f"""\
name: replay
seed: 4
data: {{source: csv, path: {CSV}, target: species, val_fraction: 0.0}}
model: {{hidden: [8, 8], activation: tanh, init: xavier_uniform}}
training:
  epochs: {EPOCHS}
  batch_size: {BATCH}
  shuffle: false
  loss: cce
  optimizer: {json.dumps(optimizer)}
""")
    result = cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet", "--json")
    assert result.code == 0, result.stderr
    return Path(json.loads(result.stdout)["run_dir"])


def file_order_data() -> tuple[np.ndarray, np.ndarray]:
    """Features standardized as the run does it, and class indices (sorted species names)."""
    with open(CSV, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    X = np.array([[float(row[k]) for k in row if k != "species"] for row in rows])
    species = [row["species"] for row in rows]
    classes = sorted(set(species))
    y = np.array([classes.index(s) for s in species])
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, np.eye(len(classes))[y]


def batches():
    X, targets = file_order_data()
    for _ in range(EPOCHS):
        for start in range(0, len(X), BATCH):
            yield X[start : start + BATCH], targets[start : start + BATCH]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_run_replays_bit_for_bit_in_file_order(cli, tmp_path, name):
    spec = OPTIMIZERS[name][0]
    run_dir = train_run(cli, tmp_path, spec)
    model = MLP.load(run_dir / "checkpoints" / "init.npz")
    loss, opt = make_loss("cce"), make_optimizer(spec)
    state = opt.init(model.params)
    for Xb, tb in batches():
        model.loss_and_grads(np.ascontiguousarray(Xb), np.ascontiguousarray(tb), loss, training=True)
        opt.step(model.params, model.grads, state, opt.lr)
    final = MLP.load(run_dir / "checkpoints" / "final.npz")
    assert model.params.tobytes() == final.params.tobytes()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_run_replays_in_torch_optim(cli, tmp_path, name):
    torch = pytest.importorskip("torch")
    spec, torch_class, torch_kwargs = OPTIMIZERS[name]
    run_dir = train_run(cli, tmp_path, spec)
    init = np.load(run_dir / "checkpoints" / "init.npz")
    linears = []
    for i in range(3):
        W = init[f"layers.{i}.W"]  # (in, out): torch keeps the transpose
        lin = torch.nn.Linear(*W.shape, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(init[f"layers.{i}.b"]))
        linears.append(lin)
    net = torch.nn.Sequential(linears[0], torch.nn.Tanh(), linears[1], torch.nn.Tanh(), linears[2])
    opt = getattr(torch.optim, torch_class)(net.parameters(), foreach=False, **torch_kwargs)
    loss = torch.nn.CrossEntropyLoss()
    for Xb, tb in batches():
        opt.zero_grad()
        loss(net(torch.from_numpy(Xb)), torch.from_numpy(tb)).backward()
        opt.step()
    final = np.load(run_dir / "checkpoints" / "final.npz")
    for i, lin in enumerate(linears):
        np.testing.assert_allclose(lin.weight.detach().numpy().T, final[f"layers.{i}.W"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(lin.bias.detach().numpy(), final[f"layers.{i}.b"], rtol=1e-12, atol=1e-14)
