"""`dlexp export --tensorboard` and `--mlflow`, read back with TensorBoard's own event reader and
MLflow's client and compared with the run's CSVs; exporting twice replaces, a failure leaves nothing.

The tests need the `tensorboard` and `mlflow` extras (`.ci/run` installs both) and skip, saying so,
where one is absent.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, invoke

from dlexp.report.compare import flatten, value_text


def export(*args) -> str:
    code, out, err = invoke("export", *args)
    assert code == 0, err
    return out


def run_folders(sweep: Path) -> list[Path]:
    return sorted((sweep / "runs").iterdir())


# -- TensorBoard ------------------------------------------------------------------------------


def accumulator(folder: Path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> tuple[list[int], list[float]]:
    events = acc.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def test_tensorboard_events_hold_the_csv_values(deep_runs, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    logdir = tmp_path / "tb"
    export(deep_runs["run"], deep_runs["sweep"], "--tensorboard", logdir)
    run = deep_runs["run"]
    acc = accumulator(logdir / run.name)
    metrics = pd.read_csv(run / "metrics.csv")
    for column in metrics.columns.drop("step"):
        finite = metrics[metrics[column].notna()]
        steps, values = scalars(acc, column)
        assert steps == finite["step"].tolist(), column
        # TensorBoard keeps float32: each value is the CSV's, rounded once to float32
        assert values == finite[column].astype(np.float32).astype(float).tolist(), column
    grads = pd.read_csv(run / "grad_norms.csv")
    for (layer, param), rows in grads.groupby(["layer", "param"]):
        for name in ("grad_norm", "param_norm", "update_ratio"):
            steps, values = scalars(acc, f"{name}/layers.{layer}.{param}")
            assert steps == rows["step"].tolist()
            assert values == rows[name].astype(np.float32).astype(float).tolist()
    stats = pd.read_csv(run / "layer_stats.csv")
    saturated = stats[stats["layer"] == 0]
    assert scalars(acc, "saturated_fraction/layers.0")[1] == \
        saturated["saturated_fraction"].astype(np.float32).astype(float).tolist()
    config = acc.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert "activation: sigmoid" in config
    # the sweep's runs: one TensorBoard run each, under the sweep's folder name
    for folder in run_folders(deep_runs["sweep"]):
        assert len(list((logdir / "sweeps" / deep_runs["sweep"].name / folder.name).glob("events.*"))) == 1


def test_tensorboard_histograms_come_from_histograms_csv(deep_runs, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    run = tmp_path / "with-hist"
    shutil.copytree(deep_runs["run"], run)
    (run / "histograms.csv").write_text("step,epoch,layer,kind,bin_low,bin_high,count\n"
                                        "3,1,0,activation,-1.0,0.0,5\n3,1,0,activation,0.0,1.0,7\n"
                                        "6,2,0,activation,-1.0,0.0,2\n6,2,0,activation,0.0,1.0,10\n")
    export(run, "--tensorboard", tmp_path / "tb")
    acc = accumulator(tmp_path / "tb" / run.name)
    events = acc.Histograms("activation/layers.0")
    assert [e.step for e in events] == [3, 6]
    first = events[0].histogram_value
    assert (first.min, first.max, first.num) == (-1.0, 1.0, 12.0)
    assert list(first.bucket_limit) == [0.0, 1.0] and list(first.bucket) == [5.0, 7.0]
    assert first.sum == pytest.approx(5 * -0.5 + 7 * 0.5, abs=0)


def test_tensorboard_export_twice_replaces_and_a_failure_leaves_nothing(deep_runs, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from dlexp.export import tensorboard as tb

    logdir = tmp_path / "tb"
    export(deep_runs["run"], "--tensorboard", logdir)
    export(deep_runs["run"], "--tensorboard", logdir)
    assert [p.name for p in logdir.iterdir()] == [deep_runs["run"].name]
    events = list((logdir / deep_runs["run"].name).iterdir())
    assert len(events) == 1
    tree = {p: p.read_bytes() for p in logdir.rglob("*") if p.is_file()}
    real = tb.write_run
    calls = []

    def failing(item, folder):
        calls.append(item.key)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        real(item, folder)

    monkeypatch.setattr(tb, "write_run", failing)
    code, _, err = invoke("export", deep_runs["run"], deep_runs["sweep"], "--tensorboard", logdir)
    assert code == 1 and "disk full" in err and len(calls) == 3
    # nothing of the failed export (no sweep folder, no staging folder); the earlier export untouched
    assert sorted(logdir.rglob("*")) == sorted([logdir / deep_runs["run"].name, *tree])
    assert {p: p.read_bytes() for p in tree} == tree


# -- MLflow -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_store(deep_runs, tmp_path_factory):
    """A sqlite store with the run and the sweep exported once."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    export(deep_runs["run"], deep_runs["sweep"], "--mlflow", uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return {"uri": uri, "client": client, "root": root,
            "experiment": client.get_experiment_by_name("dlexp").experiment_id}


def active_runs(store) -> dict[str, object]:
    runs = store["client"].search_runs([store["experiment"]], max_results=1000)
    keys = [r.data.tags["dlexp.run_key"] for r in runs]
    assert len(keys) == len(set(keys)), keys  # one MLflow run per dlexp run
    return {r.data.tags["dlexp.run_key"]: r for r in runs}


def test_mlflow_runs_hold_params_metrics_tags_and_artifacts(deep_runs, mlflow_store):
    client = mlflow_store["client"]
    runs = active_runs(mlflow_store)
    run_dir = deep_runs["run"]
    sweep = "sweeps/" + deep_runs["sweep"].name
    assert set(runs) == {run_dir.name, sweep, *(f"{sweep}/{f.name}" for f in run_folders(deep_runs["sweep"]))}
    exported = runs[run_dir.name]
    from dlexp.report.rundata import read_run

    data = read_run(run_dir)
    assert exported.data.params == {k: value_text(v) for k, v in flatten(data.config).items()}
    assert exported.data.params["training.optimizer.name"] == "sgd"
    tags = exported.data.tags
    assert (tags["dlexp.status"], tags["dlexp.seed"], tags["dlexp.verdict"]) == ("completed", "1", "vanishing")
    assert exported.info.status == "FINISHED" and tags["mlflow.runName"] == "deep"
    metrics = pd.read_csv(run_dir / "metrics.csv")
    history = sorted(client.get_metric_history(exported.info.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.step for m in history] == metrics["step"].tolist()
    assert [m.value for m in history] == metrics["val_loss"].tolist()  # float64, exactly
    grads = pd.read_csv(run_dir / "grad_norms.csv")
    w0 = grads[(grads["layer"] == 0) & (grads["param"] == "W")]
    history = sorted(client.get_metric_history(exported.info.run_id, "grad_norm/layers.0.W"),
                     key=lambda m: m.step)
    assert [m.value for m in history] == w0["grad_norm"].tolist()
    names = {a.path for a in client.list_artifacts(exported.info.run_id)}
    assert {"config.yaml", "summary.json", "metrics.csv", "grad_norms.csv", "layer_stats.csv", "report.html",
            "figures"} <= names
    figures = [a.path for a in client.list_artifacts(exported.info.run_id, "figures")]
    assert len(figures) == 4 and all(p.endswith(".png") for p in figures)
    # the sweep: a parent run with the sweep's files, its runs as children
    parent = runs[sweep]
    children = [r for key, r in runs.items() if key.startswith(sweep + "/")]
    assert len(children) == 4
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert parent.data.params["grid.training.optimizer.lr"] == "0.1,0.5"
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.json", "sweep.csv", "curves.csv", "report.html"} <= parent_files


def test_mlflow_export_twice_replaces_and_a_failure_leaves_the_store_as_it_was(deep_runs, mlflow_store,
                                                                               monkeypatch):
    from dlexp.export import mlflow as ml

    before = active_runs(mlflow_store)
    export(deep_runs["run"], "--mlflow", mlflow_store["uri"])
    after = active_runs(mlflow_store)
    assert set(after) == set(before)
    key = deep_runs["run"].name
    assert after[key].info.run_id != before[key].info.run_id  # replaced, not added
    real = ml._export_run
    calls = []

    def failing(client, eid, item, parent, created):
        calls.append(item.key)
        if len(calls) == 3:
            raise RuntimeError("store went away")
        return real(client, eid, item, parent, created)

    monkeypatch.setattr(ml, "_export_run", failing)
    code, _, err = invoke("export", deep_runs["run"], deep_runs["sweep"], "--mlflow", mlflow_store["uri"])
    assert code == 1 and "store went away" in err
    now = active_runs(mlflow_store)
    assert {k: r.info.run_id for k, r in now.items()} == {k: r.info.run_id for k, r in after.items()}


def test_mlflow_file_store_and_a_plain_path(deep_runs, tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    export(deep_runs["run"], "--mlflow", tmp_path / "mlruns", "--experiment", "course")
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("course")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.data.tags["dlexp.run_key"] for r in runs] == [deep_runs["run"].name]


# -- the command ------------------------------------------------------------------------------


def test_export_needs_a_target_and_names_a_missing_extra(deep_runs, tmp_path, monkeypatch):
    code, _, err = invoke("export", deep_runs["run"])
    assert code == 2 and "--tensorboard LOGDIR, --mlflow URI" in err
    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    code, _, err = invoke("export", deep_runs["run"], "--tensorboard", tmp_path / "tb")
    assert code == 2 and "pip install 'dlexp[tensorboard]'" in err and not (tmp_path / "tb").exists()
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    code, _, err = invoke("export", deep_runs["run"], "--mlflow", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "pip install 'dlexp[mlflow]'" in err
    code, _, err = invoke("export", tmp_path / "nowhere", "--tensorboard", tmp_path / "tb")
    assert code == 2 and "nowhere" in err


def test_the_cli_imports_neither_tensorboard_nor_mlflow_until_export_runs():
    probe = ("import sys; from dlexp.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorboard', 'mlflow', 'tensorboardX'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_run_and_a_sweep_with_the_same_folder_name_get_different_keys(deep_runs, tmp_path):
    from dlexp.export import plan_export

    run = tmp_path / "runs" / "deep-20260101-000000"
    sweep = tmp_path / "runs" / "sweeps" / "deep-20260101-000000"
    shutil.copytree(deep_runs["run"], run)
    shutil.copytree(deep_runs["sweep"], sweep)
    loose, sweeps = plan_export([run, sweep])
    keys = [loose[0].key, sweeps[0].key, *(item.key for item in sweeps[0].runs)]
    assert keys[:2] == ["deep-20260101-000000", "sweeps/deep-20260101-000000"] and len(set(keys)) == 6
    assert all(key.startswith("sweeps/deep-20260101-000000/") for key in keys[2:])
