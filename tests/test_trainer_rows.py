"""The per-step gradient rows the trainer hands to callbacks, recomputed independently.

Full-batch training without shuffling or dropout makes every step's batch known, so each row can
be rebuilt from parameter snapshots: ``grad_norm`` from a fresh forward/backward at the previous
step's parameters (plus the L2 term), ``param_norm`` from the parameters after the step, and
``update_ratio`` from the change between snapshots.

Tolerances (float64): norms rtol 1e-12 (summation order). The update is measured as the step the
optimizer added, which differs from the rounded change by at most u * ||theta|| (u = eps / 2), so
update_ratio gets an absolute tolerance of u on top of rtol 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.nn import MLP, make_loss
from dlexp.optim import make_optimizer
from dlexp.optim.schedules import make_schedule
from dlexp.trainer import Callback, Split, Trainer

U = np.finfo(np.float64).eps / 2


class Snapshots(Callback):
    def __init__(self, model):
        self.model = model
        self.params = []
        self.rows = []

    def on_step_rows(self, grad_rows, layer_rows):
        self.params.append(self.model.params.copy())
        self.rows.append(grad_rows)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "nadam"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_step_rows_match_an_independent_recomputation(optimizer, batchnorm):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    model = MLP(5, [16, 8], 3, activation="tanh", batchnorm=batchnorm, output_activation="softmax",
                rng=np.random.default_rng(1))
    loss = make_loss("sparse_cce")
    spec = {"name": optimizer, "lr": 0.01} | ({"momentum": 0.9} if optimizer == "sgd" else {})
    snaps = Snapshots(model)
    l2 = 1e-3
    trainer = Trainer(model, loss, make_optimizer(spec), make_schedule(None), epochs=5, batch_size="full",
                      shuffle=False, l2=l2, grad_every=1, shuffle_rng=np.random.default_rng(2),
                      dropout_rng=np.random.default_rng(3), callbacks=[snaps])
    start = model.params.copy()
    targets = loss.targets(y, 3, model.dtype)
    trainer.fit(Split(X, targets, y))
    assert len(snaps.rows) == 5

    probe = MLP(5, [16, 8], 3, activation="tanh", batchnorm=batchnorm, output_activation="softmax",
                rng=np.random.default_rng(1))
    before = start
    for after, rows in zip(snaps.params, snaps.rows):
        probe.params[...] = before
        probe.loss_and_grads(X, targets, loss, training=True, rng=None)
        probe.add_penalty_grad(0.0, l2)
        assert len(rows) == len(model.param_names)
        for row in rows:
            name = f"layers.{row['layer']}.{row['param']}"
            grad = probe.view_of(probe.grads, name)
            theta = model.view_of(after, name)
            change = theta - model.view_of(before, name)
            assert row["grad_norm"] == pytest.approx(np.linalg.norm(grad), rel=1e-12)
            assert row["param_norm"] == pytest.approx(np.linalg.norm(theta), rel=1e-12)
            want = np.linalg.norm(change) / np.linalg.norm(theta)
            assert abs(row["update_ratio"] - want) <= U + 1e-12 * want
        before = after
