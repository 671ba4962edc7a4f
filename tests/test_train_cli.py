"""`dlexp train` end to end: the run directory, its files and columns, reproducibility, datasets."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CONFIGS, write_config


def only_run(runs: Path) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir() and d.name != "sweeps"]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_run_directory_is_complete_and_consistent(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("train", tiny_config, "--runs-dir", runs, "--quiet")
    assert result.code == 0, result.stderr
    run = only_run(runs)
    assert run.name.startswith("tiny-")
    for name in ["config.yaml", "metrics.csv", "grad_norms.csv", "layer_stats.csv", "summary.json", "timing.csv",
                 "checkpoints/init.npz", "checkpoints/final.npz", "checkpoints/last.npz"]:
        assert (run / name).is_file(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "step", "train_loss", "val_loss", "train_acc", "val_acc", "penalty",
                                     "lr", "grad_norm_total"]
    # 120 samples, val 0.2 -> 96 train rows, batch 16 -> 6 steps per epoch
    assert metrics["epoch"].tolist() == [0, 1, 2, 3]
    assert metrics["step"].tolist() == [0, 6, 12, 18]
    assert math.isnan(metrics["grad_norm_total"][0]) and (metrics["grad_norm_total"][1:] > 0).all()
    grads = pd.read_csv(run / "grad_norms.csv")
    assert list(grads.columns) == ["step", "epoch", "layer", "param", "grad_norm", "param_norm", "update_ratio"]
    assert sorted(grads["step"].unique()) == list(range(1, 19))
    per_step = grads[grads.step == 1]
    assert list(zip(per_step.layer, per_step.param)) == [(0, "W"), (0, "b"), (1, "W"), (1, "b"), (2, "W"), (2, "b")]
    assert (grads.groupby("step").size() == 6).all()
    assert grads.loc[grads.step <= 6, "epoch"].eq(1).all() and grads.loc[grads.step > 12, "epoch"].eq(3).all()
    stats = pd.read_csv(run / "layer_stats.csv")
    assert list(stats.columns) == ["step", "epoch", "layer", "activation", "act_mean", "act_std",
                                   "saturated_fraction", "dead_fraction"]
    assert stats[stats.step == 1].activation.tolist() == ["tanh", "tanh", "sigmoid"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 3 and summary["steps"] == 18
    assert summary["final"]["val_acc"] == pytest.approx(metrics["val_acc"].iloc[-1], rel=1e-15)
    first = grads[(grads.param == "W") & (grads.layer == 0) & (grads.epoch == 3)].grad_norm.mean()
    last = grads[(grads.param == "W") & (grads.layer == 2) & (grads.epoch == 3)].grad_norm.mean()
    assert summary["grad_ratio"] == pytest.approx(first / last, rel=1e-12)
    assert set(summary["versions"]) == {"dlexp", "numpy", "python"}
    init = np.load(run / "checkpoints/init.npz")
    final = np.load(run / "checkpoints/final.npz")
    assert {"layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b"} <= set(final.files)
    assert not np.array_equal(init["layers.0.W"], final["layers.0.W"])


def test_overrides_seed_and_name(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("train", tiny_config, "--runs-dir", runs, "--quiet", "--set", "training.epochs=1",
                 "--set", "model.activation={name: leaky_relu, negative_slope: 0.2}", "--set", "training.optimizer.lr=0.05",
                 "--seed", "11", "--name", "custom")
    assert result.code == 0, result.stderr
    run = only_run(runs)
    assert run.name.startswith("custom-")
    import yaml

    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["seed"] == 11 and resolved["training"]["epochs"] == 1
    assert resolved["model"]["activation"] == {"name": "leaky_relu", "negative_slope": 0.2}
    assert resolved["training"]["optimizer"] == {"name": "adam", "lr": 0.05}
    assert resolved["dlexp_version"]
    assert len(pd.read_csv(run / "metrics.csv")) == 2


def test_resolved_config_reproduces_the_run_bit_for_bit(cli, tmp_path):
    cfg = write_config(tmp_path / "rep.yaml", """\
seed: 5
data: {source: synthetic, kind: spirals, n_samples: 150, n_classes: 3}
model: {hidden: [16, 16], activation: relu, init: he_normal, dropout: 0.2, batchnorm: true}
training: {epochs: 3, batch_size: 20, optimizer: momentum, l2: 0.001, schedule: {name: step, step_size: 1, gamma: 0.5}}
logging: {grad_every: 2}
""")
    assert cli("train", cfg, "--runs-dir", tmp_path / "a", "--quiet").code == 0
    first = only_run(tmp_path / "a")
    assert cli("train", first / "config.yaml", "--runs-dir", tmp_path / "b", "--quiet").code == 0
    second = only_run(tmp_path / "b")
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "checkpoints/final.npz", "checkpoints/init.npz"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    grads = pd.read_csv(first / "grad_norms.csv")
    assert sorted(grads.step.unique())[:3] == [1, 3, 5]  # step 1, then every 2nd
    lrs = pd.read_csv(first / "metrics.csv").lr.tolist()
    assert lrs == [0.001, 0.001, 0.0005, 0.00025]  # momentum preset: torch sgd default lr 1e-3, halved each epoch


def test_new_pieces_reproduce_from_the_resolved_config_and_old_configs_resolve_as_before(cli, tmp_path):
    cfg = write_config(tmp_path / "new.yaml", """\
seed: 2
data: {source: synthetic, kind: spirals, n_samples: 120, n_classes: 3}
model: {hidden: [12, 12, 12], activation: selu, init: lecun_normal, norm: layernorm, residual: {every: 2},
        dropout: 0.1, dropout_mode: alpha}
training: {epochs: 2, batch_size: 20}
""")
    assert cli("train", cfg, "--runs-dir", tmp_path / "a", "--quiet").code == 0
    first = only_run(tmp_path / "a")
    text = (first / "config.yaml").read_text()
    assert "norm: layernorm" in text and "every: 2" in text and "dropout_mode: alpha" in text
    assert cli("train", first / "config.yaml", "--runs-dir", tmp_path / "b", "--quiet").code == 0
    second = only_run(tmp_path / "b")
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "checkpoints/final.npz"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    # keys added later are left out at their defaults; `norm: batchnorm` is written as `batchnorm: true`
    old = write_config(tmp_path / "old.yaml", "model: {hidden: [4], norm: batchnorm}\ntraining: {epochs: 1}\n")
    assert cli("train", old, "--runs-dir", tmp_path / "c", "--quiet").code == 0
    text = (only_run(tmp_path / "c") / "config.yaml").read_text()
    assert "batchnorm: true" in text
    assert not any(f"\n  {key}:" in text for key in ("norm", "residual", "histograms_every"))


def test_two_runs_in_the_same_second_get_different_directories(tmp_path):
    from dlexp.rundir import create_run_dir

    a = create_run_dir(tmp_path, "x", now=1_700_000_000)
    b = create_run_dir(tmp_path, "x", now=1_700_000_000)
    assert a != b and b.name == a.name + "-1"


def test_json_output_and_checks(cli, tiny_config, tmp_path):
    result = cli("train", tiny_config, "--runs-dir", tmp_path / "r", "--json", "--check", "epochs==3",
                 "--check", "val_acc>=0.5")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["epochs"] == 3
    failing = cli("train", tiny_config, "--runs-dir", tmp_path / "r", "--quiet", "--check", "val_acc>1.5")
    assert failing.code == 1 and "check failed: val_acc>1.5" in failing.stderr
    bad = cli("train", tiny_config, "--runs-dir", tmp_path / "r2", "--check", "val_acc>>1")
    assert bad.code == 2 and bad.stderr.startswith("error: --check") and not (tmp_path / "r2").exists()


def test_no_validation_split_leaves_val_columns_empty(cli, tmp_path):
    cfg = write_config(tmp_path / "noval.yaml", """\
data: {kind: xor, n_samples: 64, val_fraction: 0}
model: {hidden: [4]}
training: {epochs: 2, batch_size: full}
""")
    assert cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet").code == 0
    metrics = pd.read_csv(only_run(tmp_path / "r") / "metrics.csv")
    assert metrics.val_loss.isna().all() and metrics.train_loss.notna().all()
    assert metrics.step.tolist() == [0, 1, 2]  # batch GD: one step per epoch


@pytest.mark.parametrize("config,min_acc", [("iris.yaml", 0.9), ("breast_cancer.yaml", 0.93)])
def test_shipped_datasets_train_to_a_sensible_accuracy(cli, tmp_path, config, min_acc):
    result = cli("train", CONFIGS / config, "--runs-dir", tmp_path / "r", "--json", "--quiet")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["final"]["val_acc"] >= min_acc
    assert summary["class_names"]


def test_regression_run(cli, tmp_path):
    result = cli("train", CONFIGS / "regression_sine.yaml", "--runs-dir", tmp_path / "r", "--json", "--quiet",
                 "--set", "training.epochs=40")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["task"] == "regression" and "val_acc" not in summary["final"]
    assert summary["final"]["val_loss"] < 0.05  # noise variance is 0.01


def test_validate_and_init(cli, tmp_path):
    result = cli("init", tmp_path / "starter.yaml")
    assert result.code == 0
    assert cli("init", tmp_path / "starter.yaml").code == 2  # never overwrites silently
    checked = cli("validate", tmp_path / "starter.yaml")
    assert checked.code == 0 and "# ok:" in checked.stdout and "hidden:" in checked.stdout
    run = cli("train", tmp_path / "starter.yaml", "--runs-dir", tmp_path / "r", "--quiet", "--set", "training.epochs=1")
    assert run.code == 0, run.stderr


def test_divergence_is_caught_and_reported(cli, tmp_path):
    cfg = write_config(tmp_path / "boom.yaml", """\
data: {kind: moons, n_samples: 100}
model: {depth: 4, width: 16, activation: relu, init: {name: normal, std: 3.0}}
training: {epochs: 20, batch_size: 10, optimizer: {name: sgd, lr: 1.0e+6}, loss: mse}
""")
    result = cli("train", cfg, "--runs-dir", tmp_path / "r", "--quiet")
    assert result.code == 1
    assert "diverged:" in result.stderr
    run = only_run(tmp_path / "r")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "diverged"
    div = summary["divergence"]
    assert div["step"] >= 1
    assert div["layer"] is None or div["layer"].startswith("layers.")
    assert len(pd.read_csv(run / "metrics.csv")) >= 1  # what was logged is kept
    allowed = cli("train", cfg, "--runs-dir", tmp_path / "r2", "--quiet", "--allow-divergence")
    assert allowed.code == 0


def test_regression_loss_on_a_classification_task_reports_accuracy(cli, tmp_path):
    cfg = write_config(tmp_path / "mse.yaml", """\
data: {kind: blobs, n_samples: 150, n_classes: 3, noise: 0.1}
model: {hidden: [16]}
training: {epochs: 30, batch_size: 16, loss: mse, optimizer: {name: adam, lr: 0.01}}
""")
    result = cli("train", cfg, "--runs-dir", tmp_path / "r", "--json", "--quiet")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["final"]["val_acc"] >= 0.9  # one-hot targets, argmax of 3 outputs


def test_resolved_config_of_a_csv_run_reproduces_from_any_folder(cli, tmp_path, monkeypatch):
    assert cli("train", CONFIGS / "iris.yaml", "--runs-dir", tmp_path / "a", "--quiet",
               "--set", "training.epochs=3").code == 0
    first = only_run(tmp_path / "a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data.path in the resolved config is relative to the run directory
    assert cli("train", first / "config.yaml", "--runs-dir", tmp_path / "b", "--quiet").code == 0
    second = only_run(tmp_path / "b")
    for name in ["metrics.csv", "grad_norms.csv", "checkpoints/final.npz"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
