"""``logging.eval_every`` (thinned evaluation) and ``training.checkpoint_every_s`` (checkpoints spaced in
time): what the run files hold, that training itself is unchanged, and that resume stays exact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlexp.config import resolved_dict, validate_mapping
from dlexp.experiment import resume, run
from dlexp.rundir import schema

BASE = {"seed": 4, "data": {"kind": "blobs", "n_samples": 120, "n_classes": 3},
        "model": {"hidden": [6, 5]}, "training": {"epochs": 7, "batch_size": 16}}


def _config(**sections) -> dict:
    config = json.loads(json.dumps(BASE))
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


def _run(tmp_path: Path, name: str, config: dict):
    return run(validate_mapping(config, name), base_dir=Path("."), runs_dir=tmp_path / name)


def test_defaults_are_left_out_of_the_resolved_config():
    data = resolved_dict(validate_mapping(BASE, "m"))
    assert "eval_every" not in data["logging"] and "checkpoint_every_s" not in data["training"]
    data = resolved_dict(validate_mapping(_config(logging={"eval_every": 3}, training={"checkpoint_every_s": 0}), "m"))
    assert data["logging"]["eval_every"] == 3 and data["training"]["checkpoint_every_s"] == 0.0


def test_eval_every_thins_the_evaluation_and_changes_nothing_else(tmp_path):
    every = _run(tmp_path, "every", _config())
    thin = _run(tmp_path, "thin", _config(logging={"eval_every": 3}))
    a = pd.read_csv(every.run_dir / schema.METRICS)
    b = pd.read_csv(thin.run_dir / schema.METRICS)
    assert list(b["epoch"]) == list(range(8))  # a row per epoch still
    evaluated = [0, 3, 6, 7]  # initialisation, every third epoch, and the last
    metrics = [c for c in a.columns if c.startswith(("train_", "val_"))]
    pd.testing.assert_frame_equal(a.loc[evaluated, metrics], b.loc[evaluated, metrics])
    assert b.drop(index=evaluated)[metrics].isna().all().all()
    pd.testing.assert_frame_equal(a[["epoch", "step", "penalty", "lr", "grad_norm_total"]],
                                  b[["epoch", "step", "penalty", "lr", "grad_norm_total"]])
    for name in (schema.GRAD_NORMS, schema.LAYER_STATS):  # training itself is untouched
        assert (every.run_dir / name).read_bytes() == (thin.run_dir / name).read_bytes()
    with np.load(every.run_dir / "checkpoints" / "final.npz") as x, np.load(thin.run_dir / "checkpoints" / "final.npz") as y:
        assert all(np.array_equal(x[k], y[k]) for k in x.files if k.startswith("layers."))
    assert thin.summary["final"] == every.summary["final"]
    assert thin.summary["best"]["epoch"] in evaluated


def test_early_stopping_counts_evaluated_epochs_only(tmp_path):
    stopping = {"early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 10.0}, "epochs": 30}
    result = _run(tmp_path, "es", _config(training=stopping, logging={"eval_every": 4}))
    # the first evaluated epoch after training starts (4) sets the best; none improves on it by 10,
    # so the next evaluation (8) stops the run, whatever epochs 5-7 would have shown
    assert result.summary["stopped_early"] and result.summary["epochs"] == 8
    assert result.summary["best"]["epoch"] == 4


class _Count:
    def __init__(self, writer):
        self.calls = []
        original = writer.checkpoint

        def counted(trainer):
            self.calls.append(trainer.epoch)
            original(trainer)

        writer.checkpoint = counted


@pytest.mark.parametrize("seconds,expected", [(0.0, [1, 2, 3, 4, 5, 6, 7]), (1e9, [])])
def test_checkpoints_wait_for_checkpoint_every_s(tmp_path, monkeypatch, seconds, expected):
    from dlexp.rundir import writer as writer_module

    counts = []
    original_init = writer_module.RunWriter.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        counts.append(_Count(self))

    monkeypatch.setattr(writer_module.RunWriter, "__init__", init)
    result = _run(tmp_path, "c", _config(training={"checkpoint_every_s": seconds}))
    # epoch-end checkpoints by the cadence, then the run's end always writes the final state
    assert counts[0].calls == [*expected, 7]
    assert (result.run_dir / "checkpoints" / "last.npz").exists()


def test_a_run_stopped_before_its_first_timed_checkpoint_resumes_exactly(tmp_path, monkeypatch):
    """The default 30 s leaves a short run without an epoch-end checkpoint: a run stopped (as by a
    signal) gets one at its stop, and resume from it ends as the uninterrupted run."""
    from dlexp.trainer import Trainer

    config = _config(logging={"eval_every": 2})
    whole = _run(tmp_path, "whole", config)
    original = Trainer._train_step

    def stop_at_step_20(self, Xb, tb):
        out = original(self, Xb, tb)
        if self.step == 20:
            self.request_stop()
        return out

    monkeypatch.setattr(Trainer, "_train_step", stop_at_step_20)
    stopped = _run(tmp_path, "stopped", config)
    assert stopped.status == "interrupted" and stopped.summary["checkpoint_step"] == 20
    monkeypatch.setattr(Trainer, "_train_step", original)
    resumed = resume(stopped.run_dir)
    assert resumed.status == "completed"
    for name in (schema.METRICS, schema.GRAD_NORMS, schema.LAYER_STATS, "checkpoints/final.npz"):
        assert (resumed.run_dir / name).read_bytes() == (whole.run_dir / name).read_bytes(), name
    assert not math.isnan(resumed.summary["final"]["val_loss"])
