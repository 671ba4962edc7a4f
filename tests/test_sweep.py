"""`dlexp sweep` and `dlexp compare-optimizers`: fairness, determinism across executors, aggregation by hand,
divergence, CSV schemas, and bad input that writes nothing."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlexp.sweep.aggregate import CURVE_COLUMNS, curve_stats, mean_std, point_rows, run_rows, sort_points
from dlexp.sweep.grid import (
    Axis,
    GridPoint,
    PlannedRun,
    SweepPlan,
    build_plan,
    parse_axis,
    parse_value,
    split_values,
)
from dlexp.sweep.runner import LocalExecutor, run_one


@pytest.fixture
def tiny(tiny_config) -> Path:
    return tiny_config


def sweep_dir(runs: Path) -> Path:
    dirs = list((runs / "sweeps").iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def run_files(folder: Path) -> dict[tuple[int, int], dict[str, bytes]]:
    """(point, seed) -> bytes of the files that must not depend on the executor."""
    table = pd.read_csv(folder / "sweep.csv")
    out = {}
    for row in table.itertuples():
        run = Path(row.run_dir)
        out[(row.point, row.seed)] = {name: (run / name).read_bytes()
                                      for name in ("metrics.csv", "grad_norms.csv", "layer_stats.csv",
                                                   "checkpoints/init.npz", "checkpoints/final.npz")}
    return out


def without_volatile(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "sweep.csv").drop(columns=["wall_s", "run_dir"])


# ---------------------------------------------------------------------------------------------
# Fairness: for a given seed, every grid point starts from the same weights and sees the same batches.


def test_every_grid_point_gets_the_same_init_data_and_batch_order_per_seed(cli, tiny, tmp_path, monkeypatch):
    from dlexp import trainer as trainer_module

    seen: dict[str, dict] = {}
    original_fit = trainer_module.Trainer.fit

    class RecordingRng:
        """Forwards to the trainer's shuffle generator and keeps every permutation it draws."""

        def __init__(self, rng, perms):
            self._rng, self._perms = rng, perms

        def permutation(self, n):
            perm = self._rng.permutation(n)
            self._perms.append(perm.copy())
            return perm

        def __getattr__(self, name):
            return getattr(self._rng, name)

    def recording_fit(self, train, val=None):
        run_dir = self.callbacks[0].run_dir
        record = seen[run_dir.name] = {"X": train.X.copy(), "perms": []}
        self.shuffle_rng = RecordingRng(self.shuffle_rng, record["perms"])
        return original_fit(self, train, val)

    monkeypatch.setattr(trainer_module.Trainer, "fit", recording_fit)
    runs = tmp_path / "runs"
    result = cli("compare-optimizers", tiny, "--optimizers", "sgd,momentum,adam,rmsprop", "--seeds", "2",
                 "--jobs", "1", "--runs-dir", runs, "--quiet")
    assert result.code == 0, result.stderr
    table = pd.read_csv(sweep_dir(runs) / "sweep.csv")
    assert sorted(table["training.optimizer"].unique()) == ["adam", "momentum", "rmsprop", "sgd"]
    assert (table.status == "completed").all() and len(table) == 8
    by_seed: dict[int, list[Path]] = {}
    for row in table.itertuples():
        by_seed.setdefault(row.seed, []).append(Path(row.run_dir))
    assert sorted(by_seed) == [3, 4]
    for dirs in by_seed.values():
        first = dirs[0]
        for other in dirs[1:]:
            assert (other / "checkpoints/init.npz").read_bytes() == (first / "checkpoints/init.npz").read_bytes()
            a, b = seen[first.name], seen[other.name]
            np.testing.assert_array_equal(a["X"], b["X"])  # the same training split, in the same row order
            assert len(a["perms"]) == len(b["perms"]) == 3  # one permutation per epoch
            for pa, pb in zip(a["perms"], b["perms"]):
                np.testing.assert_array_equal(pa, pb)
            # the optimizers did differ: the final weights are not the same
            assert (other / "checkpoints/final.npz").read_bytes() != (first / "checkpoints/final.npz").read_bytes()
    # different seeds: different weights and batch order
    s3, s4 = by_seed[3][0], by_seed[4][0]
    assert (s3 / "checkpoints/init.npz").read_bytes() != (s4 / "checkpoints/init.npz").read_bytes()
    assert not np.array_equal(seen[s3.name]["perms"][0], seen[s4.name]["perms"][0])


# ---------------------------------------------------------------------------------------------
# Determinism: --jobs 2 and Dask give the bytes --jobs 1 gives.


def test_jobs_2_equals_jobs_1_bit_for_bit(cli, tiny, tmp_path):
    args = ["sweep", tiny, "--grid", "training.optimizer.lr=0.1,0.01", "--grid", "model.activation=tanh,relu",
            "--seeds", "2", "--quiet"]
    one = cli(*args, "--jobs", "1", "--runs-dir", tmp_path / "one")
    two = cli(*args, "--jobs", "2", "--runs-dir", tmp_path / "two")
    assert one.code == 0 and two.code == 0, (one.stderr, two.stderr)
    d1, d2 = sweep_dir(tmp_path / "one"), sweep_dir(tmp_path / "two")
    files1, files2 = run_files(d1), run_files(d2)
    assert len(files1) == 8 and files1 == files2
    pd.testing.assert_frame_equal(without_volatile(d1), without_volatile(d2))
    assert (d1 / "curves.csv").read_bytes() == (d2 / "curves.csv").read_bytes()
    # each run keeps its normal run directory, inside the sweep folder
    for row in pd.read_csv(d2 / "sweep.csv").itertuples():
        assert Path(row.run_dir).parent == d2 / "runs"
        assert json.loads((Path(row.run_dir) / "summary.json").read_text())["status"] == "completed"


def test_longest_runs_start_first_and_results_do_not_depend_on_the_order(tiny, tmp_path):
    from dlexp.sweep.runner import longest_first, run_plan

    plan = _plan(tiny, grid=("training.epochs=2,4", "training.optimizer.lr=0.1,0.01"), seeds=1)
    costs = [run.cost for run in plan.runs]  # epochs × rows × parameters: the 4-epoch points cost twice as much
    assert costs[2] == costs[3] == 2 * costs[0] == 2 * costs[1] > 0
    assert longest_first(plan.specs(tmp_path)) == [2, 3, 0, 1]  # ties keep plan order
    names, files = {}, {}
    for order in ("costliest first", "cheapest first"):
        if order == "cheapest first":
            for run in plan.runs:
                run.cost = -run.cost
        with LocalExecutor(2) as executor:
            results = run_plan(plan, tmp_path / order, executor)
        assert [r["index"] for r in results] == [0, 1, 2, 3]  # plan order, whatever ran first
        assert all(r["status"] == "completed" for r in results)
        names[order] = [Path(r["run_dir"]).name.rsplit("-", 2)[0] for r in results]
        files[order] = [{f: (Path(r["run_dir"]) / f).read_bytes()
                         for f in ("metrics.csv", "grad_norms.csv", "config.yaml", "checkpoints/final.npz")}
                        for r in results]
    assert names["costliest first"] == names["cheapest first"] == [f"tiny-p{k}-s3" for k in range(4)]
    assert files["costliest first"] == files["cheapest first"]


def test_dask_local_cluster_gives_the_local_table_and_files(cli, tiny, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    import tempfile

    scratch = tmp_path / "tmp"  # the cluster's workers keep their files here, and must remove them
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    args = ["sweep", tiny, "--grid", "training.optimizer.lr=0.1,0.01", "--seeds", "2", "--json", "--quiet"]
    local = cli(*args, "--runs-dir", tmp_path / "local", "--jobs", "1")
    dask = cli(*args, "--runs-dir", tmp_path / "dask", "--executor", "dask", "--jobs", "2")
    assert local.code == 0 and dask.code == 0, (local.stderr, dask.stderr)
    doc_local, doc_dask = json.loads(local.stdout), json.loads(dask.stdout)
    assert doc_dask["executor"] == "dask" and doc_dask["workers"] == 2
    strip = ["wall_s"]
    for p_local, p_dask in zip(doc_local["points"], doc_dask["points"]):
        for doc_point in (p_local, p_dask):
            for part in ("mean", "std"):
                for key in strip:
                    doc_point[part].pop(key)
        assert p_local == p_dask
    assert run_files(sweep_dir(tmp_path / "local")) == run_files(sweep_dir(tmp_path / "dask"))
    assert list(scratch.iterdir()) == []  # no dask-scratch-space left behind


def _die_on_run_1(spec):
    """A task whose worker process dies on run 1 (as a segfault or the OOM killer would do it)."""
    if spec.index == 1:
        os._exit(3)
    return run_one(spec)


def _blas_threads(spec):
    """A task reporting its worker's BLAS thread pools and environment."""
    from threadpoolctl import threadpool_info

    return {"index": spec.index, "status": "completed",
            "threads": [pool["num_threads"] for pool in threadpool_info()],
            "env": [os.environ.get(var) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")]}


def test_each_worker_computes_with_one_blas_thread(tiny, tmp_path):
    before = {var: os.environ.get(var) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    with LocalExecutor(2, task=_blas_threads) as executor:
        results = executor.run(_plan(tiny).specs(tmp_path))
    for result in results:
        assert result["env"] == ["1", "1", "1"], result
        assert result["threads"] and set(result["threads"]) == {1}, result
    assert {var: os.environ.get(var) for var in before} == before  # this process's environment is left alone


def _plan(tiny, grid=("training.optimizer.lr=0.1,0.01",), seeds=2):
    return build_plan(tiny, [parse_axis(g) for g in grid], seeds=seeds)


def test_a_dead_local_worker_fails_only_its_run(tiny, tmp_path):
    plan = _plan(tiny)
    results = LocalExecutor(2, task=_die_on_run_1).run(plan.specs(tmp_path / "runs"))
    assert [r["status"] for r in results] == ["completed", "failed", "completed", "completed"]
    assert "worker process died" in results[1]["error"]


def test_a_dead_dask_worker_fails_only_its_run(tiny, tmp_path):
    pytest.importorskip("distributed")
    from dlexp.sweep.dask_executor import DaskExecutor

    plan = _plan(tiny)
    with DaskExecutor(2, task=_die_on_run_1) as executor:
        results = executor.run(plan.specs(tmp_path / "runs"))
    assert [r["status"] for r in results] == ["completed", "failed", "completed", "completed"]
    assert "worker" in results[1]["error"]


# ---------------------------------------------------------------------------------------------
# Aggregation, by hand.


def _fake(point, seed, status, val_losses, train_acc=None):
    history = [{"epoch": e, "step": 10 * e, "train_loss": 2 * v, "val_loss": v} for e, v in enumerate(val_losses)]
    final = dict(history[-1], **({"train_acc": train_acc} if train_acc is not None else {}))
    summary = {"status": status, "optimizer": "sgd", "lr": 0.1, "epochs": len(val_losses) - 1, "final": final,
               "wall_s": 1.0}
    return {"status": status, "summary": summary, "history": history, "wall_s": 2.0 + seed, "run_dir": None,
            "error": None}


def test_mean_and_sample_std_over_seeds_by_hand():
    plan = SweepPlan(kind="sweep", name="x", config_path=Path("x.yaml"), base_dir=Path("."),
                     axes=[Axis("training.optimizer.lr", ["0.1", "1"], [0.1, 1.0])],
                     points=[GridPoint(0, {"training.optimizer.lr": "0.1"}), GridPoint(1, {"training.optimizer.lr": "1"})],
                     seeds=[0, 1, 2], runs=[PlannedRun(k, k // 3, k % 3, {}, "x") for k in range(6)])
    results = [
        _fake(0, 0, "completed", [3.0, 2.0, 1.0], train_acc=0.5),
        _fake(0, 1, "completed", [3.0, 2.5, 2.0], train_acc=0.6),
        _fake(0, 2, "completed", [3.0, 4.0, 4.0], train_acc=0.9),
        _fake(1, 0, "completed", [3.0, 1.0, 0.5]),
        _fake(1, 1, "diverged", [3.0, float("nan")]),
        {"status": "failed", "summary": None, "history": [], "wall_s": 0.0, "run_dir": None, "error": "boom"},
    ]
    rows = run_rows(plan, results, target=2.0)
    points = point_rows(plan, rows, results)
    p0, p1 = points
    # val losses 1, 2, 4: mean 7/3, sample variance ((4/3)² + (1/3)² + (5/3)²) / 2 = 7/3
    assert p0["mean"]["val_loss"] == pytest.approx(7 / 3, rel=1e-15)
    assert p0["std"]["val_loss"] == pytest.approx(math.sqrt(7 / 3), rel=1e-15)
    assert p0["mean"]["train_loss"] == pytest.approx(14 / 3, rel=1e-15)
    # accuracies 0.5, 0.6, 0.9: mean 2/3, sample std sqrt((1/36 + 1/225 + 0.0544...)/2)
    accs = [0.5, 0.6, 0.9]
    assert p0["mean"]["train_acc"] == pytest.approx(2 / 3, rel=1e-14)
    assert p0["std"]["train_acc"] == pytest.approx(math.sqrt(sum((a - 2 / 3) ** 2 for a in accs) / 2), rel=1e-14)
    assert p0["std"]["train_acc"] == pytest.approx(np.std(accs, ddof=1), rel=1e-14)
    # mean curve: epoch 0: 3, epoch 1: 8.5/3 = 2.83, epoch 2: 7/3 = 2.33 -> best epoch 2
    assert p0["best_epoch"] == 2
    # AUC, trapezoid over epochs: run 0: (3+2)/2 + (2+1)/2 = 4; run 1: 2.75 + 2.25 = 5; run 2: 3.5 + 4 = 7.5
    assert [r["loss_auc"] for r in rows[:3]] == [4.0, 5.0, 7.5]
    assert p0["mean"]["loss_auc"] == pytest.approx(5.5, rel=1e-15)
    # epochs to reach val loss <= 2: 1, 2, never
    assert [r["epochs_to_target"] for r in rows[:3]] == [1, 2, None]
    assert p0["reached_target"] == 2 and p0["mean"]["epochs_to_target"] == pytest.approx(1.5)
    # best epoch per run: first epoch of the lowest val loss (run 2: 3.0 at epoch 0)
    assert [r["best_epoch"] for r in rows[:3]] == [2, 2, 0]
    # point 1: the diverged and the failed run are counted, not averaged; one run -> std undefined
    assert (p1["runs"], p1["completed"], p1["diverged"], p1["failed"]) == (3, 1, 1, 1)
    assert p1["mean"]["val_loss"] == 0.5 and math.isnan(p1["std"]["val_loss"])
    assert p1["mean"]["wall_s"] == 2.0  # completed runs only
    assert sort_points(points, "val_loss")[0][0]["point"] == 1
    assert sort_points(points, "train_acc")[0][0]["point"] == 0  # p1 has no accuracy: last
    assert sort_points(points, "grid")[0] == points


def test_mean_std_and_curve_stats_edge_cases():
    assert mean_std([]) == (pytest.approx(float("nan"), nan_ok=True), pytest.approx(float("nan"), nan_ok=True))
    assert mean_std([2.0, float("inf"), 4.0]) == (3.0, pytest.approx(math.sqrt(2.0)))
    stats = curve_stats([{"epoch": 0, "train_loss": 2.0, "val_loss": float("nan")},
                         {"epoch": 1, "train_loss": 1.0, "val_loss": float("nan")}], target=1.5)
    assert stats["curve"] == "train_loss"  # no validation split: the training loss curve
    assert stats == {"curve": "train_loss", "best_epoch": 1, "best_loss": 1.0, "loss_auc": 1.5, "epochs_to_target": 1}


def test_grid_value_parsing():
    assert split_values("[32,32],[64, 64],{name: sgd, lr: 0.1}", "--grid") == ["[32,32]", "[64, 64]",
                                                                                "{name: sgd, lr: 0.1}"]
    axis = parse_axis("model.hidden=[32,32],[64]")
    assert axis.values == [[32, 32], [64]] and axis.title == "hidden"
    assert parse_value("1e-3") == 0.001 and parse_value("full") == "full" and parse_value("0.5") == 0.5
    assert parse_value("'1,2'") == "1,2"


@pytest.mark.parametrize("value, problem", [
    ("{name: sgd, name: adam}", "duplicate key 'name' (first given on line 1); give each key once"),
    ("!!python/name:os.system", "the value is not valid YAML"),
])
def test_set_and_grid_read_a_value_with_one_parser(cli, tiny, tmp_path, value, problem):
    # --grid once read values with plain yaml.safe_load, so a key given twice in a mapping silently
    # kept the last; now both options go through dlexp.config.parse_value and say the same line.
    text = f"training.optimizer={value}"
    lines = {}
    for option in ("--set", "--grid"):
        result = cli("sweep", tiny, option, text, "--runs-dir", tmp_path / "runs", "--jobs", "1")
        assert result.code == 2, result.stderr
        assert not (tmp_path / "runs").exists()
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {option} {text!r}: ") and problem in line, line
        lines[option] = line.replace(option, "OPTION", 1)
    assert lines["--set"] == lines["--grid"]


def test_one_loader_applies_set_and_grid_values():
    from dlexp.config import load_mapping, parse_override
    from dlexp.errors import ConfigError

    with pytest.raises(ConfigError) as by_grid:
        parse_axis("model.hidden={a: 1, a: 2},[8]")
    assert "duplicate key 'a'" in str(by_grid.value)
    assert parse_override("training.optimizer.lr=1e-3") == (["training", "optimizer", "lr"], 0.001)
    assert parse_axis("training.optimizer.lr=1e-3").values == [0.001]
    mapping = load_mapping(Path(__file__).parents[1] / "configs/quickstart.yaml", ["model.hidden=[8, 8]", "training.optimizer.lr=1e-3"])
    assert mapping["model"]["hidden"] == [8, 8] and mapping["training"]["optimizer"]["lr"] == 0.001


# ---------------------------------------------------------------------------------------------
# The compare-optimizers face, divergence, files.


def test_compare_optimizers_diverging_sgd_is_reported_not_fatal(cli, tiny, tmp_path):
    runs = tmp_path / "runs"
    result = cli("compare-optimizers", tiny, "--optimizers", "sgd,adam,nesterov", "--lr", "sgd=1e6",
                 "--set", "model.hidden=[32,32,32]", "--set", "model.activation=relu",
                 "--target-loss", "0.5", "--epochs", "2", "--runs-dir", runs, "--json", "--jobs", "2",
                 "--wide")  # every column of the human table, whatever the width
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)  # stdout is only the JSON
    points = {p["settings"]["training.optimizer"]: p for p in doc["points"]}
    assert points["sgd"]["diverged"] == 1 and points["sgd"]["completed"] == 0
    assert (points["sgd"]["lr"], points["sgd"]["lr_source"]) == (1e6, "--lr")
    assert (points["adam"]["lr"], points["adam"]["lr_source"]) == (0.001, "default")  # torch Adam's default
    assert (points["nesterov"]["lr"], points["nesterov"]["lr_source"]) == (0.001, "default")
    assert doc["points"][-1]["settings"]["training.optimizer"] == "sgd"  # no completed run: sorted last
    assert doc["counts"] == {"completed": 2, "diverged": 1, "failed": 0, "interrupted": 0, "cancelled": 0}
    # the human table went to stderr and names the lr used and the divergence
    assert "1e+06 (--lr)" in result.stderr and "0.001 (default)" in result.stderr and "1/1" in result.stderr
    folder = sweep_dir(runs)
    table = pd.read_csv(folder / "sweep.csv")
    sgd = table[table["training.optimizer"] == "sgd"].iloc[0]
    assert sgd.status == "diverged"
    assert json.loads((Path(sgd.run_dir) / "summary.json").read_text())["status"] == "diverged"
    import yaml

    nesterov = table[table["training.optimizer"] == "nesterov"].iloc[0]
    resolved = yaml.safe_load((Path(nesterov.run_dir) / "config.yaml").read_text())
    assert resolved["training"]["optimizer"] == {"name": "nesterov", "lr": 0.001}


def test_keras_convention_and_sgd_vs_batch_gd(cli, tiny, tmp_path):
    runs = tmp_path / "runs"
    result = cli("compare-optimizers", tiny, "--optimizers", "sgd", "--convention", "keras",
                 "--batch-sizes", "1,32,full", "--epochs", "1", "--runs-dir", runs, "--json", "--quiet")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {p["lr"] for p in doc["points"]} == {0.01}  # Keras SGD's default learning rate
    table = pd.read_csv(sweep_dir(runs) / "sweep.csv").set_index("training.batch_size")
    # 120 samples, val 0.2 -> 96 training rows: 96 steps, 3 steps, 1 step per epoch
    assert table.loc["1", "steps"] == 96 and table.loc["32", "steps"] == 3 and table.loc["full", "steps"] == 1
    assert (table.lr == 0.01).all()


def test_csv_schemas_png_and_json(cli, tiny, tmp_path):
    runs = tmp_path / "runs"
    result = cli("sweep", tiny, "--grid", "training.optimizer.lr=0.1,0.01", "--seeds", "2", "--runs-dir", runs,
                 "--jobs", "1", "--sort", "grid")
    assert result.code == 0, result.stderr
    assert "mean ± sample std (ddof=1) over seeds 3–4" in result.stdout  # the table, on stdout without --json
    folder = sweep_dir(runs)
    assert folder.parent == runs / "sweeps" and folder.name.startswith("tiny-")
    assert sorted(p.name for p in folder.iterdir()) == ["curves.csv", "loss_curves.png", "runs", "sweep.csv",
                                                         "sweep.json"]
    table = pd.read_csv(folder / "sweep.csv")
    assert list(table.columns) == ["run", "point", "seed", "training.optimizer.lr", "status", "optimizer", "lr",
                                   "epochs", "steps", "train_loss", "val_loss", "train_acc", "val_acc", "curve",
                                   "best_epoch", "best_loss", "loss_auc", "epochs_to_target", "wall_s", "run_dir",
                                   "error"]
    assert table.run.tolist() == [0, 1, 2, 3] and table.point.tolist() == [0, 0, 1, 1]
    assert table.seed.tolist() == [3, 4, 3, 4] and table.lr.tolist() == [0.1, 0.1, 0.01, 0.01]
    curves = pd.read_csv(folder / "curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    assert len(curves) == 4 * 4 and curves.epoch.tolist()[:4] == [0, 1, 2, 3]
    for row in table.itertuples():  # curves.csv carries the run's metrics.csv numbers exactly
        metrics = pd.read_csv(Path(row.run_dir) / "metrics.csv")
        mine = curves[curves.run == row.run].reset_index(drop=True)
        pd.testing.assert_series_equal(mine.val_loss, metrics.val_loss)
        assert row.val_loss == metrics.val_loss.iloc[-1]
    png = (folder / "loss_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    doc = json.loads((folder / "sweep.json").read_text())
    assert doc["std"].startswith("sample standard deviation (ddof=1)")
    assert [p["point"] for p in doc["points"]] == [0, 1]  # --sort grid
    mean = doc["points"][0]["mean"]["val_loss"]
    assert mean == pytest.approx(table.val_loss[:2].mean(), rel=1e-15)
    assert doc["points"][0]["std"]["val_loss"] == pytest.approx(table.val_loss[:2].std(ddof=1), rel=1e-12)


def test_check_applies_to_every_grid_point_mean(cli, tiny, tmp_path):
    ok = cli("sweep", tiny, "--grid", "training.optimizer.lr=0.1,0.01", "--check", "val_acc>=0", "--check",
             "train_loss<100", "--runs-dir", tmp_path / "a", "--jobs", "1", "--quiet")
    assert ok.code == 0, ok.stderr
    bad = cli("sweep", tiny, "--grid", "training.optimizer.lr=0.1,0.01", "--check", "train_loss<0",
              "--runs-dir", tmp_path / "b", "--jobs", "1", "--quiet", "--json")
    assert bad.code == 1
    failed = [line for line in bad.stderr.splitlines() if line.startswith("check failed:")]
    assert len(failed) == 2 and "[training.optimizer.lr=0.1] train_loss<0: train_loss = " in bad.stderr
    assert len(json.loads(bad.stdout)["check_failures"]) == 2


# ---------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, and nothing written.


@pytest.mark.parametrize("args, message", [
    (["sweep", "--grid", "training.epochs"], "expected KEY=V1,V2"),
    (["sweep", "--grid", "training.epochz=1,2"], "did you mean 'epochs'"),
    (["sweep", "--grid", "training.epochs=2,-1"], "[training.epochs=-1]: training.epochs: must be >= 1"),
    (["sweep", "--set", "data.kind=blobs", "--set", "data.n_classes=3", "--grid", "training.loss=cce,bce"],
     "[training.loss=bce]: training.loss: bce is for two classes"),  # caught by preparing each point
    (["sweep", "--grid", "training.optimizer.lr=0.1,0.1"], "listed twice"),
    (["sweep", "--grid", "seed=1,2"], "use --seeds"),
    (["sweep", "--grid", "model.hidden=[8,8"], "unclosed bracket"),
    (["sweep", "--seeds", "0"], "--seeds"),
    (["sweep", "--sort", "val_los"], "did you mean 'val_loss'"),
    (["sweep", "--check", "val_acc>>1"], "expected NAME OP NUMBER"),
    (["sweep", "--executor", "daks"], "did you mean 'dask'"),
    (["sweep", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --executor dask"),
    (["compare-optimizers", "--optimizers", "sgd,adm"], "did you mean 'adam'"),
    (["compare-optimizers", "--lr", "adam"], "expected OPT=VALUE"),
    (["compare-optimizers", "--lr", "adam=fast"], "must be a number"),
    (["compare-optimizers", "--lr", "adam=-1"], "finite number > 0"),
    (["compare-optimizers", "--optimizers", "adam", "--lr", "sgd=0.1"], "not among the compared optimizers"),
    (["compare-optimizers", "--convention", "jax"], "unknown convention"),
    (["compare-optimizers", "--grid", "training.optimizer.lr=0.1,1"], "use --optimizers"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, tiny, tmp_path, args, message):
    runs = tmp_path / "runs"
    result = cli(args[0], tiny, *args[1:], "--runs-dir", runs, "--jobs", "1")
    assert result.code == 2, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not runs.exists()
    assert result.stdout == ""


def test_unreachable_scheduler_is_one_line_and_writes_nothing(cli, tiny, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr("dlexp.sweep.dask_executor.CONNECT_TIMEOUT_S", 0.5)
    runs = tmp_path / "runs"
    result = cli("sweep", tiny, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9", "--runs-dir", runs)
    assert result.code == 2
    assert result.stderr.startswith("error: --scheduler tcp://127.0.0.1:9: cannot connect")
    assert not runs.exists()


def test_missing_dask_is_one_clear_line(cli, tiny, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith(("dask.", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    runs = tmp_path / "runs"
    result = cli("sweep", tiny, "--executor", "dask", "--runs-dir", runs)
    assert result.code == 2 and "pip install 'dlexp[dask]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not runs.exists()
