"""Divergence that is not NaN: training.divergence's rules end a run ``diverged`` exactly as NaN does,
a non-finite gradient names its first layer, and grad-report calls huge gradients ``exploding``."""

import json
import math

import numpy as np
import pytest
from conftest import write_config

from dlexp.config import validate_mapping
from dlexp.experiment import make_trainer, prepare
from dlexp.report.gradients import Thresholds, grad_report, judge_layer

# lr 1000 on three blobs: the loss goes from 1.04 to 1.2e34 within the first epoch, all finite
BOOM = """\
seed: 0
data: {{kind: blobs, n_samples: 200, n_classes: 3}}
model: {{hidden: [16, 16]}}
training: {{epochs: 5, optimizer: {{name: sgd, lr: 1000}}{extra}}}
"""
OFF = ", divergence: {loss_factor: null, grad_norm_max: null}"


def only_run(runs):
    (run,) = list(runs.iterdir())
    return run


def test_a_finite_explosion_ends_the_run_diverged_like_nan(cli, tmp_path):
    cfg = write_config(tmp_path / "boom.yaml", BOOM.format(extra=""))
    result = cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet")
    assert result.code == 1, result.stderr
    assert result.stderr.startswith("diverged: loss ") and "training.divergence.loss_factor" in result.stderr
    run = only_run(tmp_path / "r")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged"
    div = summary["divergence"]
    assert set(div) == {"step", "epoch", "reason", "layer"} and (div["step"], div["epoch"]) == (3, 1)
    assert div["reason"].startswith("loss 1.34e+16 is above 1e+06 × the initial loss 1.04")
    assert not (run / "checkpoints" / "final.npz").exists() and "test" not in summary
    assert cli("train", cfg, "--runs-dir", tmp_path / "r2", "--quiet", "--allow-divergence").code == 0


def test_the_rules_can_be_turned_off(cli, tmp_path):
    """With both rules off the same run 'completes' with a loss 400 times its initial one (today's default)."""
    cfg = write_config(tmp_path / "boom.yaml", BOOM.format(extra=OFF))
    result = cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["final"]["train_loss"] > 400


def test_the_gradient_norm_rule_names_the_largest_gradient(cli, tmp_path):
    extra = ", divergence: {loss_factor: null, grad_norm_max: 1000}"
    cfg = write_config(tmp_path / "boom.yaml", BOOM.format(extra=extra))
    result = cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet", "--json")
    assert result.code == 1
    div = json.loads(result.stdout)["divergence"]
    assert "(training.divergence.grad_norm_max)" in div["reason"] and div["reason"].startswith("gradient norm ")
    assert float(div["reason"].split()[2]) > 1000
    assert div["layer"].startswith("layers.") and f", in {div['layer']}" in result.stderr


def _trainer(**training):
    mapping = {"seed": 1, "data": {"kind": "blobs", "n_samples": 60, "n_classes": 3},
               "model": {"hidden": [5, 4]}, "training": {"epochs": 2, "batch_size": 8, **training}}
    p = prepare(validate_mapping(mapping, "m"), ".")
    return p, make_trainer(p, [])


@pytest.mark.parametrize("scale, bad", [(math.inf, "layers.1.b"), (1e200, "layers.1.W")])
def test_a_gradient_that_is_not_finite_names_its_first_layer(scale, bad):
    """An Inf entry, or finite entries whose squares overflow (the norm is Inf though no entry is):
    either way the summary names the first such parameter in layer order."""
    p, trainer = _trainer()
    model = trainer.model
    original = model.loss_and_grads

    def blow_up(*args, **kwargs):
        loss = original(*args, **kwargs)
        if trainer.step == 4:
            model.view_of(model.grads, "layers.2.W")[...] *= scale
            model.view_of(model.grads, bad)[...] = scale
        return loss

    model.loss_and_grads = blow_up
    result = trainer.fit(p.train, p.val)
    assert result.status == "diverged"
    assert result.divergence == {"step": 4, "epoch": 1, "reason": "gradient is not finite", "layer": bad}


def test_healthy_examples_stay_far_below_the_defaults():
    """The defaults (1e6 × the initial loss, gradient norm 1e8) against a run that learns: its worst step."""
    from dlexp.config import DivergenceConfig

    p, trainer = _trainer(optimizer={"name": "sgd", "lr": 0.5})
    seen = {"loss": 0.0, "norm": 0.0}
    original = trainer._exploded

    def watch(loss_value, total_norm, squares):
        seen["loss"] = max(seen["loss"], loss_value / trainer.history[0]["train_loss"])
        seen["norm"] = max(seen["norm"], total_norm)
        return original(loss_value, total_norm, squares)

    trainer._exploded = watch
    assert trainer.fit(p.train, p.val).status == "completed"
    defaults = DivergenceConfig()
    assert seen["loss"] < defaults.loss_factor / 1e4 and seen["norm"] < defaults.grad_norm_max / 1e4


def _row(first, last, ratio=1.0):
    return {"grad_norm_first_epoch": first, "grad_norm_last_epoch": last, "ratio_to_output": ratio,
            "dead_pct": 0.0, "saturated_pct": 0.0, "activation": "relu"}


def test_exploding_fires_on_absolute_size():
    th = Thresholds()
    assert th.explode_norm_above == 1e4
    assert judge_layer(_row(1.0, 6e13), th) == ["exploding"]  # 'healthy' before: the ratio is 1
    assert judge_layer(_row(6e13, 1.0), th) == ["exploding"]  # blew up in the first epoch, then settled
    assert judge_layer(_row(9e3, 9e3), th) == []
    assert judge_layer(_row(np.nan, 2e4), th) == ["exploding"]
    assert judge_layer(_row(1.0, 6e13), Thresholds(explode_norm_above=1e14)) == []


def test_grad_report_calls_a_finite_explosion_exploding(cli, tmp_path):
    cfg = write_config(tmp_path / "boom.yaml", BOOM.format(extra=OFF))
    assert cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet").code == 0
    run = only_run(tmp_path / "r")
    report = grad_report(run)
    assert report.verdict == "exploding"
    assert "a gradient norm above 10000" in report.diagnosis
    assert grad_report(run, Thresholds(explode_norm_above=1e30)).verdict != "exploding"
    result = cli("grad-report", run, "--quiet", "--fail-on", "exploding")
    assert result.code == 1 and "exploding gradients" in result.stdout
    bad = cli("grad-report", run, "--explode-norm-above", "0")
    assert bad.code == 2 and bad.stderr == "error: --explode-norm-above 0: must be a finite number > 0\n"
