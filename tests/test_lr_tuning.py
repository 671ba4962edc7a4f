"""`dlexp compare-optimizers --tune-lr` and `dlexp lr-find`: the choice on a recorded grid, the test split
left out of tuning, the grid-edge flag, the range test on a quadratic with known curvature, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_config

from dlexp.sweep.lrfind import RangeTestSettings, build_lr_find_plan, suggest
from dlexp.sweep.runner import LocalExecutor
from dlexp.sweep.tuning import (
    build_tuning_plan,
    choose_lr,
    default_grid,
    log_grid,
    parse_lr_grids,
    tuning_records,
)

# ---------------------------------------------------------------------------------------------
# The choice on a recorded grid


def records(table: dict[float, list[float]], optimizer: str = "adam", status: dict | None = None) -> list[dict]:
    """Records of a grid {lr: [val loss per seed]}; ``status`` maps (lr, seed index) to a non-completed status."""
    out = []
    for lr, values in table.items():
        for k, v in enumerate(values):
            out.append({"optimizer": optimizer, "lr": lr, "seed": k, "val_loss": v,
                        "status": (status or {}).get((lr, k), "completed")})
    return out


RECORDED = {  # val losses over three seeds: the best mean is at 1e-2 (0.30), 1e-3 is within one SE of it
    1e-4: [0.90, 0.95, 0.85],
    1e-3: [0.31, 0.36, 0.29],
    1e-2: [0.30, 0.27, 0.33],
    1e-1: [0.40, 0.52, 0.46],
}


def test_the_chosen_lr_is_the_argmin_of_the_mean_validation_loss():
    choice = choose_lr("adam", records(RECORDED))
    means = {lr: np.mean(v) for lr, v in RECORDED.items()}
    assert choice.lr == min(means, key=means.get) == 1e-2
    best = choice.points[choice.best_index]
    assert best["mean_val_loss"] == pytest.approx(0.30, abs=1e-15)
    se = np.std(RECORDED[1e-2], ddof=1) / math.sqrt(3)
    assert best["se_val_loss"] == pytest.approx(se, rel=1e-12)
    # within one SE of the best mean (0.30 + 0.01732): 1e-3's mean 0.32 is not, so the range is 1e-2 alone
    assert choice.within_1se == [1e-2] and choice.edge is None
    wider = {**RECORDED, 1e-3: [0.33, 0.30, 0.27]}  # the same mean exactly: ties go to the smaller lr
    tie = choose_lr("adam", records(wider))
    assert tie.lr == 1e-3 and tie.lr_range == (1e-3, 1e-2)


def test_a_grid_point_with_a_diverged_or_failed_run_is_not_eligible():
    choice = choose_lr("adam", records(RECORDED, status={(1e-2, 1): "diverged"}))
    assert choice.lr == 1e-3  # the best mean is out: one of its seeds diverged
    point = next(p for p in choice.points if p["lr"] == 1e-2)
    assert not point["eligible"] and point["mean_val_loss"] == math.inf and point["diverged"] == 1
    nan = choose_lr("adam", records({**RECORDED, 1e-3: [0.1, math.nan, 0.1]}))
    assert nan.lr == 1e-2
    nothing = choose_lr("adam", records({1e-3: [0.5]}, status={(1e-3, 0): "failed"}))
    assert nothing.lr is None and nothing.best_index is None and nothing.lr_range is None


@pytest.mark.parametrize(("table", "edge"), [
    ({1e-3: [0.2, 0.21], 1e-2: [0.5, 0.5], 1e-1: [0.9, 0.8]}, "low"),
    ({1e-3: [0.9, 0.8], 1e-2: [0.5, 0.5], 1e-1: [0.2, 0.21]}, "high"),
    ({1e-3: [0.9, 0.8], 1e-2: [0.2, 0.21], 1e-1: [0.5, 0.5]}, None),
    ({1e-3: [0.9, 0.8]}, None),  # a one-point grid has no edge to widen
])
def test_a_best_lr_at_the_edge_of_the_grid_is_flagged(table, edge):
    assert choose_lr("sgd", records(table, "sgd")).edge == edge


def test_one_tuning_seed_gives_no_standard_error_and_a_one_point_range():
    choice = choose_lr("adam", records({1e-3: [0.4], 1e-2: [0.3], 1e-1: [0.35]}))
    assert choice.lr == 1e-2 and math.isnan(choice.points[1]["se_val_loss"]) and choice.within_1se == [1e-2]


# ---------------------------------------------------------------------------------------------
# Grids


def test_default_grid_is_centred_on_each_optimizers_default():
    adam = default_grid("adam", "torch")
    assert len(adam) == 9 and adam[4] == 0.001
    np.testing.assert_allclose(adam, 0.001 * 10.0 ** np.linspace(-2, 2, 9), rtol=1e-12)
    assert default_grid("adadelta", "torch")[4] == 1.0
    assert default_grid("adam", "keras")[4] == 0.001


def test_lr_grid_forms():
    grids = parse_lr_grids(["1e-4:1:9", "sgd=0.01:1:3"], ["sgd", "adam", "rmsprop"], "torch")
    np.testing.assert_allclose(grids["adam"], 10.0 ** np.arange(-4, 0.01, 0.5), rtol=1e-12)
    assert grids["rmsprop"] == grids["adam"]
    np.testing.assert_allclose(grids["sgd"], [0.01, 0.1, 1.0], rtol=1e-12)
    assert parse_lr_grids([], ["adam"], "torch")["adam"] == default_grid("adam", "torch")
    assert log_grid(0.5, 0.5, 1) == [0.5]


@pytest.mark.parametrize(("texts", "message"), [
    (["1e-4:1"], "expected LOW:HIGH:N"),
    (["a:1:3"], "LOW and HIGH must be numbers"),
    (["1e-4:1:x"], "N must be a whole number"),
    (["0:1:3"], "must be finite numbers > 0"),
    (["1:1e-4:3"], "HIGH must be above LOW"),
    (["1e-4:1:0"], "N must be from 1 to 50"),
    (["adma=1e-4:1:3"], "did you mean 'adam'"),
    (["nadam=1e-4:1:3"], "not among the compared optimizers"),
    (["1e-4:1:3", "1e-3:1:3"], "a grid for every optimizer is already given"),
    (["adam=1e-4:1:3", "adam=1e-3:1:3"], "a grid for 'adam' is already given"),
])
def test_bad_lr_grids_are_refused_with_the_option_named(texts, message):
    from dlexp.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_lr_grids(texts, ["sgd", "adam"], "torch")
    assert message in str(info.value) and "--lr-grid" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Tuning never reads the test split

WITH_TEST = """\
name: withtest
seed: 5
data: {source: synthetic, kind: moons, n_samples: 120, noise: 0.2, val_fraction: 0.25, test_fraction: 0.25}
model: {hidden: [8], activation: tanh}
training: {epochs: 2, batch_size: 16}
"""


def test_tuning_reads_only_the_validation_loss_never_the_test_split(tmp_path):
    """The values the choice uses are each run's final val loss (checked against its metrics.csv); the test
    metrics its summary also holds can be replaced by anything without changing the records or the choice."""
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.tuning import choose_lrs

    config = write_config(tmp_path / "t.yaml", WITH_TEST)
    grids = {"sgd": [0.01, 0.3], "adam": [1e-3, 0.03]}
    plan = build_tuning_plan(config, grids, "torch", tune_seeds=2, budget=2)
    assert plan.seeds == [5, 6] and {r.config["training"]["epochs"] for r in plan.runs} == {2}
    with LocalExecutor(1) as executor:
        outcome = run_sweep(plan, executor, tmp_path / "runs")
    used = tuning_records(plan, outcome.results)
    assert all(set(r) == {"optimizer", "lr", "seed", "status", "val_loss"} for r in used)
    for record, result in zip(used, outcome.results):
        assert "test" in result["summary"]  # the split exists and the run scored it...
        metrics = pd.read_csv(Path(result["run_dir"]) / "metrics.csv")
        assert record["val_loss"] == metrics["val_loss"].iloc[-1]  # ...but the record holds the val loss
    for result in outcome.results:  # adversarial test scores: best where validation is worst
        result["summary"]["test"] = {"test_loss": -result["summary"]["final"]["val_loss"], "test_acc": 1.0}
    assert tuning_records(plan, outcome.results) == used
    choices = choose_lrs(used, ["sgd", "adam"])
    for name, choice in choices.items():
        means = {lr: np.mean([r["val_loss"] for r in used if r["optimizer"] == name and r["lr"] == lr])
                 for lr in grids[name]}
        assert choice.lr == min(means, key=means.get)


def test_tuning_needs_a_validation_split(tmp_path):
    from dlexp.errors import ConfigError

    config = write_config(tmp_path / "noval.yaml", WITH_TEST.replace("val_fraction: 0.25", "val_fraction: 0"))
    with pytest.raises(ConfigError, match="needs a validation split"):
        build_tuning_plan(config, {"adam": [1e-3]}, "torch", tune_seeds=1, budget=1)


# ---------------------------------------------------------------------------------------------
# lr-find on a quadratic whose curvature is known in closed form

LINEAR = """\
name: linreg
seed: 0
data: {source: synthetic, kind: linear, n_samples: 200, n_features: 5, noise: 0.1}
model: {hidden: []}
training: {batch_size: full, loss: mse, optimizer: {name: sgd, lr: 0.01}}
"""


def test_lr_find_on_linear_regression_suggests_a_stable_gradient_descent_lr(tmp_path):
    """Full-batch gradient descent on MSE = mean((X w + b - y)^2) is gradient descent on a quadratic with
    Hessian H = (2/n) [X 1]^T [X 1]; it converges iff lr < 2/L, L = the largest eigenvalue of H."""
    from dlexp.config import validate_mapping
    from dlexp.experiment import prepare
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.lrfind import analyse

    config = write_config(tmp_path / "lin.yaml", LINEAR)
    settings = RangeTestSettings(start_lr=1e-4, end_lr=10.0, steps=100)
    plan = build_lr_find_plan(config, settings)
    p = prepare(validate_mapping(plan.runs[0].config, "lin"), tmp_path)
    X1 = np.hstack([p.train.X, np.ones((len(p.train.X), 1))])
    L = float(np.linalg.eigvalsh(2.0 / len(X1) * X1.T @ X1).max())
    with LocalExecutor(1) as executor:
        outcome = run_sweep(plan, executor, tmp_path / "runs")
    found = analyse(plan, outcome.rows, settings)["optimizers"][0]
    run = found["runs"][0]
    assert run["end"] in ("blew_up", "diverged")  # the lr went past 2/L and the loss blew up
    assert run["lr"][-1] > 2.0 / L
    assert found["suggested_lr"] < 2.0 / L and found["steep_lr"] < 2.0 / L
    assert found["suggested_lr"] > 2.0 / L / 100  # and not vacuously small
    lo, hi = (float(v) for v in found["lr_grid"].split("=")[1].split(":")[:2])
    assert lo < found["suggested_lr"] < hi


def test_suggest_rules_on_a_made_up_curve():
    lrs = np.logspace(-5, 1, 60)
    # flat, then falling fastest around 1e-3, lowest at 1e-1, then blowing up
    x = np.log10(lrs)
    losses = 1.0 - 0.8 / (1 + np.exp(-(x + 3) * 4)) + np.where(x > -1, (x + 1) ** 2 * 5, 0.0)
    found = suggest(lrs, losses, smoothing=0.0)
    assert found["minimum_lr"] == pytest.approx(0.1, rel=0.3)
    assert found["suggested_lr"] == pytest.approx(found["minimum_lr"] / 10)
    assert found["steep_lr"] == pytest.approx(1e-3, rel=0.3)
    assert suggest(lrs[:7], losses[:7])["suggested_lr"] is None  # too few steps once the ends are trimmed


# ---------------------------------------------------------------------------------------------
# The commands


def test_compare_optimizers_tune_lr_end_to_end(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("compare-optimizers", tiny_config, "--tune-lr", "--optimizers", "sgd,adam",
                 "--lr-grid", "sgd=0.01:1:2", "--lr-grid", "adam=1e-4:1e-2:2", "--tune-seeds", "2",
                 "--seeds", "2", "--budget", "2", "--runs-dir", runs, "--jobs", "1", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    tuning = document["lr_tuning"]
    assert tuning["tune_seeds"] == [3, 4] and document["seeds"] == [5, 6]  # evaluation seeds follow tuning's
    assert tuning["budget_epochs"] == 2
    folder = Path(tuning["tuning_dir"])
    for name in ("lr_tuning.json", "lr_tuning.csv", "lr_sensitivity.png", "sweep.csv"):
        assert (folder / name).exists(), name
    table = pd.read_csv(folder / "lr_tuning.csv")
    assert len(table) == 4 and table["chosen"].sum() == 2
    chosen = {o["optimizer"]: o["lr"] for o in tuning["optimizers"]}
    points = {p["settings"]["training.optimizer"]: p for p in document["points"]}
    for name, lr in chosen.items():
        assert points[name]["lr"] == lr and points[name]["lr_source"] == "tuned"
    runs_table = pd.read_csv(Path(document["sweep_dir"]) / "sweep.csv")
    assert sorted(runs_table["seed"].unique()) == [5, 6]
    assert set(runs_table["lr"]) == set(chosen.values())
    assert "lr tuning" in result.stderr and "within 1 SE" in result.stderr  # tables go to stderr with --json


def test_tune_lr_options_are_checked(cli, tiny_config, tmp_path):
    alone = cli("compare-optimizers", tiny_config, "--lr-grid", "1e-3:1:3", "--runs-dir", tmp_path / "r")
    assert alone.code == 2 and "--lr-grid needs --tune-lr" in alone.stderr
    mixed = cli("compare-optimizers", tiny_config, "--tune-lr", "--lr", "adam=0.1", "--optimizers", "adam",
                "--runs-dir", tmp_path / "r")
    assert mixed.code == 2 and "--lr cannot be combined with --tune-lr" in mixed.stderr
    bad = cli("compare-optimizers", tiny_config, "--tune-lr", "--lr-grid", "1e-3:1", "--runs-dir", tmp_path / "r")
    assert bad.code == 2 and bad.stderr.count("\n") == 1 and "LOW:HIGH:N" in bad.stderr
    assert not (tmp_path / "r").exists()


def test_lr_find_json_seeds_a_tuning_grid(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    result = cli("lr-find", tiny_config, "--optimizers", "sgd,adam", "--steps", "30", "--start-lr", "1e-4",
                 "--runs-dir", runs, "--jobs", "1", "--json", "--quiet")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [o["optimizer"] for o in document["optimizers"]] == ["sgd", "adam"]
    assert document["rules"]["suggested"] == "minimum/10"
    folder = Path(document["sweep_dir"])
    assert (folder / "lr_find.png").exists() and (folder / "lr_find.json").exists()
    for opt in document["optimizers"]:
        run = opt["runs"][0]
        steps = pd.read_csv(Path(run["run_dir"]) / "steps.csv")
        assert steps["lr"].iloc[0] == 1e-4 and steps["lr"].is_monotonic_increasing and len(steps) <= 30
        assert opt["suggested_lr"] > 0 and opt["lr_grid"].startswith(opt["optimizer"] + "=")
    grids = parse_lr_grids(document["lr_grid"], ["sgd", "adam"], "torch")  # the --lr-grid form, as printed
    for opt in document["optimizers"]:
        assert grids[opt["optimizer"]][0] < opt["suggested_lr"] < grids[opt["optimizer"]][-1]


def test_lr_find_keeps_the_configs_own_optimizer_settings(tiny_config):
    text = tiny_config.read_text().replace("optimizer: {name: adam, lr: 0.01}",
                                           "optimizer: {name: sgd, lr: 0.5, momentum: 0.8}")
    tiny_config.write_text(text)
    plan = build_lr_find_plan(tiny_config, RangeTestSettings(start_lr=1e-5, end_lr=1.0, steps=20))
    training = plan.runs[0].config["training"]
    assert training["optimizer"] == {"name": "sgd", "lr": 1e-5, "momentum": 0.8}
    assert training["schedule"] == {"name": "range_test", "end_lr": 1.0, "steps": 20, "stop_factor": 4.0,
                                    "smoothing": 0.98}


@pytest.mark.parametrize(("args", "message"), [
    (["--start-lr", "1", "--end-lr", "0.1"], "--end-lr 0.1: must be above --start-lr 1"),
    (["--steps", "1"], "--steps: steps must be >= 2"),
    (["--stop-factor", "0.5"], "--stop-factor: stop_factor must be > 1"),
    (["--smoothing", "1"], "--smoothing: smoothing must be in [0, 1)"),
    (["--optimizers", "adma"], "did you mean 'adam'"),
])
def test_lr_find_bad_options(cli, tiny_config, tmp_path, args, message):
    result = cli("lr-find", tiny_config, *args, "--runs-dir", tmp_path / "r")
    assert result.code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_range_test_defaults_are_fastais():
    from dlexp.optim import make_schedule

    assert RangeTestSettings() == RangeTestSettings(start_lr=1e-7, end_lr=10.0, steps=100, stop_factor=4.0,
                                                    smoothing=0.98)
    schedule = make_schedule({"name": "range_test", "end_lr": 10})
    assert (schedule.steps, schedule.stop_factor, schedule.smoothing) == (100, 4.0, 0.98)
