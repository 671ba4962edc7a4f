"""The README's tour, asserted: the 10-layer sigmoid net vanishes, ReLU + He and BatchNorm fix it."""

import json

import pytest

from conftest import CONFIGS


@pytest.mark.parametrize("config,check", [
    ("sigmoid_depth10.yaml", lambda s: s["grad_ratio"] < 1e-4 and s["final"]["val_acc"] <= 0.6),
    ("relu_he_depth10.yaml", lambda s: s["grad_ratio"] > 0.1 and s["final"]["val_acc"] >= 0.95),
    ("batchnorm_sigmoid_depth10.yaml", lambda s: s["grad_ratio"] > 0.1 and s["final"]["val_acc"] >= 0.95),
])
def test_readme_tour_numbers(cli, tmp_path, config, check):
    result = cli("train", CONFIGS / config, "--runs-dir", tmp_path, "--quiet", "--json")
    assert result.code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert check(summary), {k: summary[k] for k in ("grad_ratio", "final")}
