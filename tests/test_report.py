"""`dlexp grad-report` on hand-made run directories with known numbers: ratios, verdicts, thresholds,
partial runs, --csv / --json / --fail-on, and one-line errors for paths that are not runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dlexp.nn.gradcheck import classify
from dlexp.report.gradients import Thresholds, grad_report, layer_ranges
from dlexp.report.rundata import read_run

GRAD_HEADER = "step,epoch,layer,param,grad_norm,param_norm,update_ratio\n"
STATS_HEADER = "step,epoch,layer,activation,act_mean,act_std,saturated_fraction,dead_fraction\n"
METRICS_HEADER = "epoch,step,train_loss,val_loss,train_acc,val_acc,penalty,lr,grad_norm_total\n"


def make_run(root: Path, name: str, activation: str, grad_w: dict[int, list[list[float]]],
             stats: dict[int, list[tuple[float, float]]], *, status: str | None = "completed",
             update: dict[int, list[float]] | None = None, metrics_epochs: int = 2, torn: str = "") -> Path:
    """A run directory written by hand. ``grad_w[layer]`` = per-epoch lists of W grad norms, one per step;
    ``stats[layer]`` = (saturated_fraction, dead_fraction) per step of the last epoch."""
    run = root / name
    run.mkdir(parents=True)
    model = f"{{depth: 2, activation: {activation}, init: he_normal}}"
    (run / "config.yaml").write_text(f"name: {name}\nmodel: {model}\n")
    n_epochs = len(next(iter(grad_w.values())))
    steps_per_epoch = len(next(iter(grad_w.values()))[0])
    lines = [GRAD_HEADER]
    stat_lines = [STATS_HEADER]
    layers = sorted(grad_w)
    for e in range(n_epochs):
        for k in range(steps_per_epoch):
            step = e * steps_per_epoch + k + 1
            for layer in layers:
                ratio = (update or {}).get(layer, [0.01] * steps_per_epoch)[k]
                lines.append(f"{step},{e + 1},{layer},W,{grad_w[layer][e][k]!r},2.0,{ratio!r}\n")
                lines.append(f"{step},{e + 1},{layer},b,5.0,1.0,0.5\n")  # b rows never count
                is_output = layer == layers[-1]
                sat, dead = (0.0, 0.0)
                if e == n_epochs - 1:
                    sat, dead = stats.get(layer, [(0.0, 0.0)] * steps_per_epoch)[k]
                act = "sigmoid" if is_output else activation
                fields = "," if is_output else f"{sat!r},{dead!r}"
                stat_lines.append(f"{step},{e + 1},{layer},{act},0.1,0.2,{fields}\n")
    (run / "grad_norms.csv").write_text("".join(lines) + torn)
    (run / "layer_stats.csv").write_text("".join(stat_lines))
    metrics = [METRICS_HEADER] + [f"{e},{e * steps_per_epoch},0.7,0.7,0.5,0.5,0.0,0.1,\n"
                                  for e in range(metrics_epochs + 1)]
    (run / "metrics.csv").write_text("".join(metrics))
    if status is not None:
        (run / "summary.json").write_text(json.dumps({"status": status, "name": name}))
    return run


@pytest.fixture
def sigmoid_run(tmp_path) -> Path:
    # output layer 2: last-epoch mean 2.0; layer 1: 0.2 (ratio 0.1); layer 0: 2e-4 (ratio 1e-4)
    return make_run(tmp_path, "sig", "sigmoid",
                    {0: [[0.01, 0.03], [0.0001, 0.0003]], 1: [[0.5, 0.5], [0.1, 0.3]],
                     2: [[1.0, 3.0], [2.0, 2.0]]},
                    {0: [(0.6, 0.0), (0.8, 0.0)], 1: [(0.2, 0.0), (0.2, 0.0)]},
                    update={0: [0.01, 0.03], 1: [0.001, 0.001], 2: [0.1, 0.3]})


@pytest.fixture
def relu_run(tmp_path) -> Path:
    # layer 0: ratio 5000 (exploding); layer 1: 75% dead, 90% "saturated" (ignored for ReLU)
    return make_run(tmp_path, "relu", "relu",
                    {0: [[1.0, 1.0], [500.0, 500.0]], 1: [[1.0, 1.0], [0.1, 0.1]],
                     2: [[1.0, 1.0], [0.1, 0.1]]},
                    {0: [(0.9, 0.0), (0.9, 0.0)], 1: [(0.9, 0.5), (0.9, 1.0)]})


def test_layer_numbers_and_verdicts_from_known_csvs(sigmoid_run):
    report = grad_report(sigmoid_run)
    t = report.layers.set_index("layer")
    assert list(t.index) == [0, 1, 2]
    assert t.loc[0, "grad_norm_first_epoch"] == pytest.approx(0.02, rel=1e-15)
    assert t.loc[0, "grad_norm_last_epoch"] == pytest.approx(2e-4, rel=1e-15)
    assert t.loc[0, "ratio_to_output"] == pytest.approx(1e-4, rel=1e-15)
    assert t.loc[0, "log10_ratio"] == pytest.approx(-4.0, abs=1e-14)
    assert t.loc[0, "ratio_to_output_first_epoch"] == pytest.approx(0.01, rel=1e-15)
    assert t.loc[1, "ratio_to_output"] == pytest.approx(0.1, rel=1e-15)
    assert t.loc[2, "ratio_to_output"] == 1.0 and t.loc[2, "log10_ratio"] == 0.0
    assert t.loc[0, "update_ratio"] == pytest.approx(0.02, rel=1e-15)
    assert t.loc[0, "saturated_pct"] == pytest.approx(70.0, rel=1e-15)
    assert t.loc[1, "saturated_pct"] == pytest.approx(20.0, rel=1e-15)
    assert math.isnan(t.loc[2, "saturated_pct"]) and math.isnan(t.loc[2, "dead_pct"])
    assert t["activation"].tolist() == ["sigmoid", "sigmoid", "sigmoid"]
    assert t.loc[0, "flags"] == ["vanishing", "saturated"] and t.loc[0, "verdict"] == "vanishing"
    assert t["verdict"].tolist() == ["vanishing", "healthy", "healthy"]
    assert (report.verdict, report.worst_layer) == ("vanishing", 0)
    assert (report.first_epoch, report.last_epoch, report.last_epoch_partial) == (1, 2, False)
    assert "layer 0" in report.diagnosis and "0.25" in report.diagnosis
    assert "ReLU" in report.fix and "BatchNorm" in report.fix


def test_thresholds_move_the_verdicts(sigmoid_run, relu_run):
    assert grad_report(sigmoid_run, Thresholds(vanish_below=1e-5)).layers["verdict"].tolist() == [
        "saturated", "healthy", "healthy"]
    assert grad_report(sigmoid_run, Thresholds(vanish_below=1e-5, saturated_above=75)).verdict == "healthy"
    assert grad_report(sigmoid_run, Thresholds(vanish_below=0.2)).layers["verdict"].tolist() == [
        "vanishing", "vanishing", "healthy"]
    relu = grad_report(relu_run)
    assert relu.layers["ratio_to_output"].tolist() == pytest.approx([5000.0, 1.0, 1.0], rel=1e-15)
    assert relu.layers["dead_pct"].tolist()[:2] == pytest.approx([0.0, 75.0], rel=1e-15)
    # 90% of ReLU units with f' = 0 is not "saturated"
    assert relu.layers["verdict"].tolist() == ["exploding", "dead", "healthy"]
    assert (relu.verdict, relu.worst_layer) == ("exploding", 0)
    assert grad_report(relu_run, Thresholds(explode_above=1e4)).verdict == "dead"
    assert grad_report(relu_run, Thresholds(explode_above=1e4, dead_above=80)).verdict == "healthy"


def test_partial_run_still_reports(tmp_path):
    # killed in epoch 2: no summary, metrics only to epoch 1, a torn last line in grad_norms.csv
    run = make_run(tmp_path, "killed", "tanh", {0: [[1.0, 1.0], [0.5, 0.5]], 1: [[1.0, 1.0], [1.0, 1.0]]}, {},
                   status=None, metrics_epochs=1, torn="5,3,0,W,0.12")
    data = read_run(run)
    assert data.status == "unknown" and data.grads["step"].max() == 4  # the torn step-5 row is gone
    report = grad_report(run)
    assert report.last_epoch == 2 and report.last_epoch_partial
    assert report.layers["ratio_to_output"].tolist() == pytest.approx([0.5, 1.0], rel=1e-15)
    assert "run unknown" in report.diagnosis


def test_running_run_with_missing_layer_stats(tmp_path):
    run = make_run(tmp_path, "running", "relu", {0: [[1.0], [2.0]], 1: [[1.0], [4.0]]}, {}, status="running")
    (run / "layer_stats.csv").unlink()
    report = grad_report(run)
    assert report.status == "running"
    # from config.yaml, which names no output activation
    assert report.layers["activation"].tolist() == ["relu", "?"]
    assert report.layers["ratio_to_output"].tolist() == pytest.approx([0.5, 1.0], rel=1e-15)
    assert math.isnan(report.layers["dead_pct"].iloc[0]) and report.verdict == "healthy"


def test_cli_table_csv_and_json_agree(cli, sigmoid_run, relu_run, tmp_path):
    out_csv = tmp_path / "report.csv"
    result = cli("grad-report", sigmoid_run, relu_run, "--csv", out_csv, "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert [r["verdict"] for r in document["runs"]] == ["vanishing", "exploding"]
    assert document["thresholds"] == {"vanish_below": 1e-3, "explode_above": 1e3, "saturated_above": 50.0,
                                      "dead_above": 50.0, "explode_norm_above": 1e4}
    layer0 = document["runs"][0]["layers"][0]
    assert layer0["log10_ratio"] == pytest.approx(-4.0, abs=1e-14)
    assert layer0["flags"] == ["vanishing", "saturated"]
    assert document["runs"][0]["layers"][2]["saturated_pct"] is None  # NaN is null in JSON
    frame = pd.read_csv(out_csv)
    assert list(frame.columns[:4]) == ["run", "run_dir", "status", "run_verdict"]
    assert len(frame) == 6 and frame["run"].tolist() == ["sig"] * 3 + ["relu"] * 3
    assert frame["ratio_to_output"].tolist() == pytest.approx([1e-4, 0.1, 1.0, 5000.0, 1.0, 1.0], rel=1e-15)
    assert frame["flags"].fillna("").tolist()[:2] == ["vanishing;saturated", ""]
    # the human output went to stderr: both runs, the diagnosis and its fix
    assert "sig" in result.stderr and "relu" in result.stderr
    assert "sig: vanishing gradients: layer 0 gets less than 0.001" in " ".join(result.stderr.split())
    assert "Usually fixed by: a lower learning rate, gradient clipping" in " ".join(result.stderr.split())


def test_cli_human_output_is_plain_and_complete(cli, sigmoid_run):
    result = cli("grad-report", sigmoid_run, "--wide")  # every column, whatever the width
    assert result.code == 0 and result.stderr == ""
    assert "\x1b[" not in result.stdout  # NO_COLOR, not a terminal
    for text in ("‖∇W‖ first", "× output", "log10", "update ratio", "saturated %", "dead %", "verdict",
                 "-4.00", "1.00e-04", "70.0", "vanishing", "sigmoid (output)",
                 "epochs 1 (first) and 2 (last)"):
        assert text in result.stdout, text


def test_fail_on_sets_the_exit_code(cli, sigmoid_run, relu_run):
    assert cli("grad-report", sigmoid_run, "--fail-on", "vanishing,exploding").code == 1
    assert cli("grad-report", sigmoid_run, "--fail-on", "saturated").code == 1  # a flag, not only the verdict
    assert cli("grad-report", sigmoid_run, "--fail-on", "exploding,dead").code == 0
    result = cli("grad-report", relu_run, "--fail-on", "dead", "--quiet")
    assert result.code == 1 and "fail-on: relu: dead in layer 1" in result.stderr
    assert cli("grad-report", relu_run, "--fail-on", "dead", "--dead-above", "80").code == 0
    bad = cli("grad-report", relu_run, "--fail-on", "vanshing")
    assert bad.code == 2 and "did you mean 'vanishing'" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_bad_paths_and_options_are_one_line_errors(cli, tmp_path, sigmoid_run):
    cases = [
        (["grad-report", tmp_path / "nope"], "nope: no such run directory"),
        (["grad-report", tmp_path], "not a dlexp run directory"),
        (["grad-report", sigmoid_run / "config.yaml"], "not a directory"),
        (["grad-report"], "give RUN_DIR arguments or --config"),
        (["grad-report", sigmoid_run, "--depths", "2,4"], "--depths only apply to a grid"),
        (["grad-report", sigmoid_run, "--vanish-below", "2"], "--vanish-below 2: must be a number in (0, 1)"),
        (["grad-report", sigmoid_run, "--dead-above", "120"], "--dead-above 120: must be a percentage"),
        (["plot", tmp_path / "nope"], "no such run directory"),
    ]
    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "config.yaml").write_text("name: x\n")
    (empty / "grad_norms.csv").write_text(GRAD_HEADER)
    cases.append((["grad-report", empty], "no gradient rows in grad_norms.csv yet"))
    garbage = make_run(tmp_path, "garbage", "relu", {0: [[1.0]], 1: [[1.0]]}, {})
    (garbage / "grad_norms.csv").write_text("step;epoch\n1;2\n")
    cases.append((["grad-report", garbage], "missing column(s)"))
    for args, message in cases:
        result = cli(*args)
        assert result.code == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_helpers():
    assert layer_ranges([0, 1, 2, 5]) == "s 0–2, 5" and layer_ranges([3]) == " 3"
    floor = 2e-9
    assert classify(1e-7, 1e-8, 1.0, floor) == "pass"
    assert classify(1e-3, 1e-10, 1e-7, floor) == "pass (noise-limited)"
    assert classify(0.5, 1e-10, 1e-9, floor) == "unresolved"
    assert classify(1e-3, 1e-4, 1e-1, floor) == "fail"
