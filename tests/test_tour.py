"""The README's numbers, asserted: the tour's three runs and the compare-optimizers table.

Runs are deterministic for a seed; values are compared at the precision the README prints them
(BLAS summation order may differ in the last bits between machines)."""

import json

import pytest
from conftest import CONFIGS


@pytest.mark.parametrize("config,grad_ratio,val_acc", [
    ("sigmoid_depth10.yaml", 2.29e-6, 0.5),
    ("relu_he_depth10.yaml", 3.3, 0.995),
    ("batchnorm_sigmoid_depth10.yaml", None, 0.98),
])
def test_readme_tour_numbers(cli, tmp_path, config, grad_ratio, val_acc):
    result = cli("train", CONFIGS / config, "--runs-dir", tmp_path, "--quiet", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    if grad_ratio is not None:
        assert summary["grad_ratio"] == pytest.approx(grad_ratio, rel=0.02)
    assert summary["final"]["val_acc"] == pytest.approx(val_acc, abs=1e-9)


# optimizer -> (val loss mean, val acc mean, epochs to 0.3 or None) as printed in the README
README_TABLE = {
    "adadelta": (0.1776, 0.9167, 36.3),
    "momentum": (0.1848, 0.9306, 32.0),
    "rmsprop": (0.2781, 0.9000, 17.0),
    "adam": (0.5072, 0.7917, None),
    "adamax": (0.9835, 0.4472, None),
    "sgd": (1.0499, 0.4278, None),
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
