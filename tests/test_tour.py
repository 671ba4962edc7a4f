"""The README's numbers, asserted: the tour's three runs and the compare-optimizers table.

Runs are deterministic for a seed; values are compared at the precision the README prints them
(BLAS summation order may differ in the last bits between machines)."""

import json

import pandas as pd
import pytest
from conftest import CONFIGS


@pytest.mark.parametrize("config,grad_ratio,val_acc", [
    ("sigmoid_depth10.yaml", 1.46e-6, 0.5),
    ("relu_he_depth10.yaml", 3.0, 0.975),
    ("batchnorm_sigmoid_depth10.yaml", None, 0.985),
])
def test_readme_tour_numbers(cli, tmp_path, config, grad_ratio, val_acc):
    result = cli("train", CONFIGS / config, "--runs-dir", tmp_path, "--quiet", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    if grad_ratio is not None:
        assert summary["grad_ratio"] == pytest.approx(grad_ratio, rel=0.02)
    assert summary["final"]["val_acc"] == pytest.approx(val_acc, abs=1e-9)
    if config == "sigmoid_depth10.yaml":  # the README quotes grad-report's verdict on this run
        report = cli("grad-report", summary["run_dir"])
        verdict = " ".join(report.stdout.split())
        assert "layers 0–4 get less than 0.001 of the output layer's gradient (layer 0: 10^-5.8)" in verdict


# optimizer -> (val loss mean, val acc mean, epochs to 0.3 or None) as printed in the README
# (all three seeds reach 0.3 except Adam: one of three)
README_TABLE = {
    "adadelta": (0.1826, 0.9333, 36.0),
    "momentum": (0.1979, 0.9361, 28.7),
    "adam": (0.3858, 0.8750, 59.0),
    "rmsprop": (0.5367, 0.8778, 20.0),
    "adamax": (0.9492, 0.4917, None),
    "sgd": (0.9874, 0.4972, None),
}


def test_readme_compare_optimizers_table(cli, tmp_path):
    result = cli("compare-optimizers", CONFIGS / "quickstart.yaml", "--optimizers", ",".join(README_TABLE),
                 "--lr", "sgd=0.05", "--lr", "momentum=0.05", "--seeds", "3", "--target-loss", "0.3",
                 "--runs-dir", tmp_path, "--jobs", "2", "--json", "--quiet")
    assert result.code == 0, result.stderr
    points = json.loads(result.stdout)["points"]
    order = [p["settings"]["training.optimizer"] for p in points]
    assert order == list(README_TABLE)  # sorted by validation loss, as shown
    for point in points:
        val_loss, val_acc, epochs = README_TABLE[point["settings"]["training.optimizer"]]
        assert point["mean"]["val_loss"] == pytest.approx(val_loss, abs=5e-5)
        assert point["mean"]["val_acc"] == pytest.approx(val_acc, abs=5e-5)
        if epochs is None:
            assert point["reached_target"] == 0
        else:
            assert point["mean"]["epochs_to_target"] == pytest.approx(epochs, abs=0.05)
            assert point["reached_target"] == (1 if point["settings"]["training.optimizer"] == "adam" else 3)
    # the README's words on RMSProp: one seed gets low, then ends at 1.27
    runs = pd.read_csv(next(tmp_path.glob("sweeps/*/sweep.csv")))
    rmsprop = runs[runs["training.optimizer"] == "rmsprop"]
    assert rmsprop["val_loss"].max() == pytest.approx(1.27, abs=0.005)
    assert rmsprop.loc[rmsprop["val_loss"].idxmax(), "best_loss"] < 0.2
