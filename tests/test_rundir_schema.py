"""The run directory's declarations (dlexp.rundir.schema) hold: rows whose keys differ from a file's
columns are refused, summaries and checkpoints carry exactly the declared keys, and the one
per-(layer, epoch) mean gives what summing row by row gives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dlexp.callbacks import EarlyStopping
from dlexp.rundir import CsvLog, schema
from dlexp.rundir.summary import grad_ratio, grad_ratios, layer_epoch_means

MAPPING = {"seed": 3, "data": {"kind": "blobs", "n_samples": 60, "n_classes": 3},
           "model": {"hidden": [5, 4]}, "training": {"epochs": 2, "batch_size": 16}}


def test_a_row_with_a_missing_or_unknown_key_is_refused(tmp_path):
    log = CsvLog(tmp_path / "g.csv", schema.GRAD_COLUMNS)
    row = dict(zip(schema.GRAD_COLUMNS, (1, 1, 0, "W", 0.5, 1.0, 0.01)))
    log.write([row])
    missing = {k: v for k, v in row.items() if k != "update_ratio"}
    with pytest.raises(ValueError, match=r"missing \['update_ratio'\], unknown \[\]"):
        log.write([missing])
    renamed = {**missing, "update_ration": 0.01}
    with pytest.raises(ValueError, match=r"missing \['update_ratio'\], unknown \['update_ration'\]"):
        log.write([renamed])
    log.close()
    assert (tmp_path / "g.csv").read_text() == ",".join(schema.GRAD_COLUMNS) + "\n1,1,0,W,0.5,1.0,0.01\n"


def test_text_columns_come_from_the_declared_types():
    assert schema.TEXT_COLUMNS == {"param", "activation", "kind"}
    assert schema.GRAD_STATISTICS == ("grad_norm", "param_norm", "update_ratio")
    assert schema.LAYER_STATISTICS == ("act_mean", "act_std", "saturated_fraction", "dead_fraction")
    assert schema.metrics_columns(True) == ["epoch", "step", "train_loss", "val_loss", "train_acc", "val_acc",
                                            "penalty", "lr", "grad_norm_total"]


def test_summary_keys_are_checked():
    running = {"status": "running", "name": "x", "run_dir": "r", "versions": {}}
    schema.check_summary(running)
    with pytest.raises(ValueError, match="not the declared fields"):
        schema.check_summary({**running, "extra": 1})
    with pytest.raises(ValueError, match="not the declared fields"):
        schema.check_summary({"status": "completed", "name": "x"})


def _run(tmp_path: Path, mapping: dict):
    from dlexp.config import validate_mapping
    from dlexp.experiment import run

    return run(validate_mapping(mapping, "m"), base_dir=Path("."), runs_dir=tmp_path)


def test_a_run_writes_the_declared_columns_summary_and_checkpoint_keys(tmp_path):
    result = _run(tmp_path, MAPPING)
    run_dir = result.run_dir
    for file in (schema.GRAD_NORMS_FILE, schema.LAYER_STATS_FILE, schema.TIMING_FILE, schema.metrics_file(True)):
        assert (run_dir / file.name).read_text().split("\n")[0] == ",".join(file.columns)
    summary = json.loads((run_dir / schema.SUMMARY).read_text())
    schema.check_summary(summary)
    assert list(summary) == [k for k in schema.SUMMARY_FIELDS if k in summary]
    with np.load(run_dir / schema.CHECKPOINTS / schema.LAST_CHECKPOINT) as npz:
        keys = set(npz.files)
        state = json.loads(str(npz[schema.TRAINER_STATE]))
    assert tuple(state) == schema.TRAINER_COUNTERS
    assert {schema.TRAINER_STATE, schema.TRAINER_PERM, schema.TRAINER_HAS_PERM, schema.ELAPSED,
            schema.CONFIG_RECORD, schema.CONFIG_DIGEST} <= keys
    rest = keys - {schema.TRAINER_STATE, schema.TRAINER_PERM, schema.TRAINER_HAS_PERM, schema.ELAPSED,
                   schema.CONFIG_RECORD, schema.CONFIG_DIGEST}
    assert all(k.startswith(("layers.", schema.OPTIMIZER_PREFIX)) for k in rest)
    # the summary's grad_ratio is the shared per-(layer, epoch) mean of the file's rows
    assert summary["grad_ratio"] == grad_ratios(run_dir / schema.GRAD_NORMS)["last"]


def test_layer_epoch_means_sum_row_by_row_and_skip_missing_values():
    rng = np.random.default_rng(0)
    epochs = rng.integers(1, 4, 500)
    layers = rng.integers(0, 5, 500)
    values = rng.lognormal(0.0, 3.0, 500)
    values[::17] = np.nan
    got_layers, got_epochs, means = layer_epoch_means(epochs, layers, values)
    assert got_layers == [0, 1, 2, 3, 4] and got_epochs == [1, 2, 3]
    for i, layer in enumerate(got_layers):
        for j, epoch in enumerate(got_epochs):
            total, count = 0.0, 0
            for e, la, v in zip(epochs.tolist(), layers.tolist(), values.tolist()):
                if e == epoch and la == layer and v == v:
                    total += v
                    count += 1
            assert means[i, j] == total / count  # exactly: same additions in the same order
    # a (layer, epoch) with no row is NaN; the ratio needs both ends and a positive last layer
    _, _, sparse = layer_epoch_means([1, 2], [0, 1], [1.0, 2.0])
    assert math.isnan(sparse[0, 1]) and math.isnan(sparse[1, 0])
    assert grad_ratio([0, 1], [1, 2], sparse) == {}
    assert grad_ratio([0, 1], [1], np.array([[3.0], [0.0]])) == {}
    assert grad_ratio([0, 1], [1, 2], np.array([[3.0, 1.0], [1.5, 4.0]])) == {"first": 2.0, "last": 0.25}
    assert grad_ratio([], [], np.empty((0, 0))) == {}


def test_early_stopping_state_round_trips_and_decides_alike():
    rows = [{"epoch": e, "val_loss": v, "train_loss": v} for e, v in enumerate([3.0, 2.0, 2.5, 2.4, 1.0, 1.1, 1.2])]
    settings = {"monitor": "val_loss", "patience": 2, "min_delta": 0.0}
    whole = EarlyStopping(settings)
    decisions = [whole.update(row) for row in rows]
    assert decisions == [False, False, False, True, False, False, True]
    for cut in range(1, len(rows)):
        first = EarlyStopping(settings)
        for row in rows[:cut]:
            first.update(row)
        second = EarlyStopping(settings)
        second.load_state_dict(json.loads(json.dumps(first.state_dict())))
        assert [second.update(row) for row in rows[cut:]] == decisions[cut:]
        assert second.best == whole.best
    assert list(whole.state_dict()) == ["wait", "best"]
    # without settings it only tracks the best row (the summary's "best"), never stops
    tracker = EarlyStopping(None)
    assert not any(tracker.update(row) for row in rows) and tracker.best["epoch"] == 4
