"""`dlexp export --mlflow URI`: one MLflow run per dlexp run, a sweep as a parent run with children.

Through MLflow's client (the ``mlflow`` extra) into any tracking URI it accepts; the local stores
need no server: ``sqlite:///mlflow.db`` (artifacts in ``mlartifacts/`` beside the database) or
``file:./mlruns``. Each MLflow run gets:

- params: the resolved config, flattened (``training.optimizer.lr``);
- metrics: every series of :func:`dlexp.export.scalar_series`, with the optimizer step as step;
- artifacts: the run directory's CSVs, config.yaml and summary.json, the PNG figures and the HTML
  page of ``dlexp report`` (checkpoints are not copied); a sweep parent's page has the comparison,
  the overlaid curves and each run's tables, its runs' figures being in their own pages;
- tags: ``dlexp.status``, ``dlexp.seed``, ``dlexp.verdict`` (grad-report's), ``dlexp.run_key``,
  ``dlexp.run_dir``, and ``mlflow.runName``; a sweep's runs carry ``mlflow.parentRunId``.

A run's key (``dlexp.run_key``) is stable, so exporting again replaces the earlier MLflow run of that
dlexp run (deleted once the new one is complete) rather than adding a second. If anything fails, the
runs this export created are deleted, and the earlier ones stay as they were. MLflow's deletion is
its own soft delete: a deleted run leaves the UI and every search, and ``mlflow gc`` removes it for good.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dlexp import rundir as rd
from dlexp.errors import ArgumentError
from dlexp.export import ExportItem, SweepItem, missing_extra, scalar_series
from dlexp.report.compare import flatten, value_text

KEY_TAG = "dlexp.run_key"
BATCH_METRICS = 1000  # MLflow's log_batch limits
BATCH_PARAMS = 100
RUN_FILES = [rd.CONFIG, rd.SUMMARY, rd.METRICS, rd.GRAD_NORMS, rd.LAYER_STATS, rd.TIMING, rd.HISTOGRAMS]
SWEEP_FILES = ["sweep.json", "sweep.csv", "curves.csv", "loss_curves.png"]
MLFLOW_STATUS = {"completed": "FINISHED", "diverged": "FAILED", "interrupted": "KILLED"}


def client_for(uri: str):
    """An MlflowClient on ``uri`` (a plain path is a file store)."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise missing_extra("mlflow", "mlflow") from None
    if "://" not in uri and not uri.startswith(("file:", "sqlite:")):
        uri = Path(uri).resolve().as_uri()
    if uri.startswith("file:"):
        # MLflow 3 keeps the file store in maintenance and refuses it unless asked for by name: here it is
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri), uri


def experiment_id(client, uri: str, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage != "active":
            raise ArgumentError("experiment", repr(name), f"the experiment is deleted in {uri}; restore it or "
                                "choose another name")
        return experiment.experiment_id
    location = None
    if uri.startswith("sqlite:"):  # keep artifacts beside the database, not in the current folder
        database = Path(uri.split(":///", 1)[-1]) if ":///" in uri else Path("mlflow.db")
        location = (database.resolve().parent / "mlartifacts" / name).as_uri()
    return client.create_experiment(name, artifact_location=location)


def export(loose: list[ExportItem], sweeps: list[SweepItem], uri: str,
           experiment: str = "dlexp") -> list[dict[str, str]]:
    """Export every run (and sweep parent); returns one ``{"key", "run_id"}`` per MLflow run made."""
    client, uri = client_for(uri)
    eid = experiment_id(client, uri, experiment)
    created: list[str] = []
    made: list[dict[str, str]] = []
    try:
        for item in loose:
            made.append({"key": item.key, "run_id": _export_run(client, eid, item, None, created)})
        for sweep in sweeps:
            parent = _export_sweep(client, eid, sweep, created)
            made.append({"key": sweep.key, "run_id": parent})
            for item in sweep.runs:
                made.append({"key": item.key, "run_id": _export_run(client, eid, item, parent, created)})
    except BaseException:
        for run_id in created:
            try:
                client.delete_run(run_id)
            except Exception:
                pass
        raise
    for entry in made:  # only now retire what earlier exports of the same runs made
        for old in _runs_with_key(client, eid, entry["key"]):
            if old != entry["run_id"]:
                client.delete_run(old)
    return made


def _runs_with_key(client, eid: str, key: str) -> list[str]:
    quoted = key.replace("'", "\\'")
    runs = client.search_runs([eid], filter_string=f"tags.`{KEY_TAG}` = '{quoted}'", max_results=1000)
    return [run.info.run_id for run in runs]


def _start(client, eid: str, key: str, name: str, tags: dict[str, Any], parent: str | None,
           created: list[str]) -> str:
    tags = {KEY_TAG: key, "mlflow.runName": name, **{k: str(v) for k, v in tags.items() if v is not None}}
    if parent is not None:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(eid, tags=tags, run_name=name)
    created.append(run.info.run_id)
    return run.info.run_id


def _log_params(client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v[:6000]) for k, v in params.items()]
    for i in range(0, len(items), BATCH_PARAMS):
        client.log_batch(run_id, params=items[i:i + BATCH_PARAMS])


def _export_run(client, eid: str, item: ExportItem, parent: str | None, created: list[str]) -> str:
    from mlflow.entities import Metric

    from dlexp.report.gradients import report_run

    run = item.run
    verdict = None
    if (run.grads["param"] == "W").any():
        verdict = report_run(run, label=item.label).verdict
    run_id = _start(client, eid, item.key, item.label,
                    {"dlexp.status": run.status, "dlexp.seed": run.config.get("seed"), "dlexp.verdict": verdict,
                     "dlexp.run_dir": str(run.path.resolve()), "dlexp.name": run.name}, parent, created)
    _log_params(client, run_id, {k: value_text(v) for k, v in flatten(run.config).items()})
    stamp = int(time.time() * 1000)
    batch = []
    for tag, step, value in scalar_series(run):
        batch.append(Metric(tag, value, stamp, step))
        if len(batch) == BATCH_METRICS:
            client.log_batch(run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    with tempfile.TemporaryDirectory(prefix="dlexp-mlflow-") as tmp:
        folder = Path(tmp) / "run"
        _copy(run.path, RUN_FILES, folder)
        _report(run.path, folder, figures=True)
        client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id, MLFLOW_STATUS.get(run.status, "FINISHED"))
    return run_id


def _export_sweep(client, eid: str, sweep: SweepItem, created: list[str]) -> str:
    document: dict[str, Any] = {}
    try:
        document = json.loads((sweep.path / "sweep.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # a sweep still going has no sweep.json yet
    statuses = [item.run.status for item in sweep.runs]
    run_id = _start(client, eid, sweep.key, sweep.path.resolve().name,
                    {"dlexp.kind": document.get("kind", "sweep"), "dlexp.runs": len(sweep.runs),
                     "dlexp.status": "completed" if document else "running",
                     "dlexp.run_dir": str(sweep.path.resolve())}, None, created)
    params = {f"grid.{axis['key']}": ",".join(map(str, axis["values"])) for axis in document.get("axes", [])}
    if document.get("seeds"):
        params["seeds"] = ",".join(map(str, document["seeds"]))
    params.update({f"runs.{status}": str(statuses.count(status)) for status in sorted(set(statuses))})
    _log_params(client, run_id, params)
    with tempfile.TemporaryDirectory(prefix="dlexp-mlflow-") as tmp:
        folder = Path(tmp) / "sweep"
        _copy(sweep.path, SWEEP_FILES, folder)
        _report(sweep.path, folder, figures=False)
        client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def _copy(source: Path, names: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)


def _report(path: Path, folder: Path, figures: bool) -> None:
    """``report.html`` of ``path`` into ``folder``, and with ``figures`` its PNGs under ``figures/``
    (a sweep's page: its comparison and tables; each child run carries its own figures)."""
    from dlexp.report.html import read_sources, render

    figures_dir = folder / "figures" if figures else None
    if figures_dir is not None:
        figures_dir.mkdir()
    page = render(read_sources([path]), figures_dir=figures_dir, run_figures=figures)
    rd.write_text_atomic(folder / "report.html", page)
