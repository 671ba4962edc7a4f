"""The step log's bulk formatter writes exactly the bytes the row-by-row path writes (CsvLog.write
with dicts), on random and edge values, and a trained run's step rows equal the dict rows."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.rundir import CsvLog, schema
from dlexp.rundir.csvlog import format_value
from dlexp.rundir.stepformat import block_text
from dlexp.rundir.steplog import StepLog

EDGES = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e16, 1e-5, 1e-4, 9.999999999999999e15, 1234567890123456.0, 5e-324,
         1.7976931348623157e308, 0.1, 1 / 3, 100.0, 1e22, -2.5e-300, 2.0**-1074, float(np.float32(0.1))]


def _values(rng: np.random.Generator, n: int) -> np.ndarray:
    wide = rng.lognormal(0.0, 30.0, n) * rng.choice([-1.0, 1.0], n)
    plain = rng.standard_normal(n)
    from_float32 = rng.standard_normal(n).astype(np.float32).astype(np.float64)
    return np.concatenate([wide, plain, from_float32, EDGES])


def test_block_text_writes_each_value_as_format_value():
    values = _values(np.random.default_rng(0), 3000)
    text = block_text([7], [1], ["0,W,"], values.tolist(), len(values))
    assert text == "7,1,0,W," + ",".join(format_value(v) for v in values.tolist()) + "\n"
    assert block_text([], [], ["0,W,"], [], 3) == ""


@pytest.mark.parametrize("seed", [0, 1])
def test_step_log_text_is_byte_identical_to_row_by_row_writing(tmp_path, seed):
    rng = np.random.default_rng(seed)
    grad_layers, grad_params = [0, 0, 1, 1, 2, 2], ["W", "b", "W", "b", "W", "b"]
    activations = ["tanh", "tanh", "sigmoid"]
    log = StepLog(grad_layers, grad_params, activations, capacity=64)
    steps = 40
    log.steps[:steps] = np.arange(1, steps + 1) * 7
    log.epochs[:steps] = np.arange(steps) // 9 + 1
    values = _values(rng, 400)
    log.grads[:steps] = rng.choice(values, log.grads[:steps].shape)
    log.layers[:steps] = rng.choice(values, log.layers[:steps].shape)
    log.layers[:steps, :, 1] = np.abs(log.layers[:steps, :, 1])  # a variance: never negative
    log.count = steps
    old_grads = CsvLog(tmp_path / "old_g.csv", schema.GRAD_COLUMNS)
    old_layers = CsvLog(tmp_path / "old_l.csv", schema.LAYER_COLUMNS)
    for slot in range(steps):
        grad_rows, layer_rows = log.rows(slot)
        old_grads.write(grad_rows)
        old_layers.write(layer_rows)
    old_grads.close()
    old_layers.close()
    new_grads = CsvLog(tmp_path / "new_g.csv", schema.GRAD_COLUMNS)
    new_layers = CsvLog(tmp_path / "new_l.csv", schema.LAYER_COLUMNS)
    grad_text, layer_text = log.texts()
    new_grads.write_text(grad_text)
    new_layers.write_text(layer_text)
    new_grads.close()
    new_layers.close()
    assert (tmp_path / "new_g.csv").read_bytes() == (tmp_path / "old_g.csv").read_bytes()
    assert (tmp_path / "new_l.csv").read_bytes() == (tmp_path / "old_l.csv").read_bytes()
    # the std column is the square root of the stored variance, taken as Python does
    row = log.rows(3)[1][2]
    assert row["act_std"] == log.layers[3, 2, 1].item() ** 0.5 or np.isnan(row["act_std"])


def test_a_text_column_that_needs_quotes_is_quoted():
    log = StepLog([0], ["W"], ['odd,"name"'], capacity=4)
    log.steps[0], log.epochs[0], log.count = 1, 1, 1
    log.layers[0] = [0.5, 0.25, np.nan, 0.0]
    assert log.texts()[1] == '1,1,0,"odd,""name""",0.5,0.5,,0.0\n'


def test_trained_rows_equal_the_dict_rows_and_the_model_statistics():
    from dlexp.callbacks import Callback
    from dlexp.nn import MLP, make_loss
    from dlexp.optim import make_optimizer
    from dlexp.optim.schedules import make_schedule
    from dlexp.trainer import Split, Trainer

    class Both(Callback):
        def __init__(self):
            self.rows, self.text = [], []

        def on_step_rows(self, grad_rows, layer_rows):
            self.rows.append((grad_rows, layer_rows))

        def on_step_log(self, log):
            self.text.append(log.texts())

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, 50)
    model = MLP(4, [6, 5], 3, activation="relu", output_activation="softmax", rng=np.random.default_rng(1))
    loss = make_loss("sparse_cce")
    both = Both()
    trainer = Trainer(model, loss, make_optimizer("adam"), make_schedule(None), epochs=3, batch_size=16,
                      grad_every=2, shuffle_rng=np.random.default_rng(2), dropout_rng=np.random.default_rng(3),
                      callbacks=[both])
    trainer.step_log = StepLog(trainer.step_log.grad_layers, trainer.step_log.grad_params,
                               trainer.step_log.activations, capacity=3)  # several hand-overs per epoch
    trainer.fit(Split(X, loss.targets(y, 3, model.dtype), y))
    grads_old = "".join(",".join(format_value(r[c]) for c in schema.GRAD_COLUMNS) + "\n"
                        for g, _ in both.rows for r in g)
    layers_old = "".join(",".join(format_value(r[c]) for c in schema.LAYER_COLUMNS) + "\n"
                         for _, rows in both.rows for r in rows)
    assert "".join(g for g, _ in both.text) == grads_old
    assert "".join(layer for _, layer in both.text) == layers_old
    assert len(both.rows) == 6  # 4 batches per epoch, steps 1, 3, 5, ... of 12
