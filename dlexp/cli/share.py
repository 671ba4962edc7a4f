"""`dlexp report` and `dlexp export`: share runs as one HTML page, in TensorBoard or in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlexp.cli.app import app, stdout_console

PathsArg = Annotated[list[Path], typer.Argument(
    help="Run directories and sweep folders (a sweep's runs are read from its runs/).",
    metavar="RUN_DIR|SWEEP_DIR...", show_default=False)]


@app.command()
def report(
    paths: PathsArg,
    html_out: Annotated[Path, typer.Option(
        "--html", help="Write the report to this file (one self-contained page).", show_default=False)],
) -> None:
    """One self-contained HTML page for runs and sweeps, readable offline and on a phone.

    \b
    A run: its status, final and best metrics, loss and accuracy curves, each layer's
    gradient norm over training and the layer × step heatmap, grad-report's verdict
    table and diagnosis, layer statistics and the resolved config. Several runs or a
    sweep folder: the comparison table (mean ± std over seeds, as `dlexp sweep`
    prints it), the overlaid loss curves, a verdict per run, and every run's section
    collapsed below. Works on runs still going or killed (whatever is on disk).
    Figures are embedded; the page needs no network and no script. Written
    atomically: OUT.html is either the old file or the whole new one.
    """
    from dlexp.report.html import write_report

    out = write_report(list(paths), html_out)
    stdout_console().print(f"wrote {out}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def export(
    paths: PathsArg,
    tensorboard: Annotated[Path | None, typer.Option(
        "--tensorboard", help="Write TensorBoard event files under this folder: LOGDIR/<run folder>/, "
                              "LOGDIR/sweeps/<sweep folder>/<run folder>/.", show_default=False)] = None,
    mlflow: Annotated[str | None, typer.Option(
        "--mlflow", help="Log to this MLflow tracking URI, e.g. sqlite:///mlflow.db or file:./mlruns "
                         "(no server needed).", show_default=False)] = None,
    experiment: Annotated[str, typer.Option(
        "--experiment", help="MLflow experiment to log into (created when absent).")] = "dlexp",
) -> None:
    """Runs and sweeps into TensorBoard and MLflow, named the same way in both.

    \b
    Scalars: every metrics.csv column (train_loss, val_acc, ...), and per layer
    grad_norm/layers.3.W, param_norm/..., update_ratio/..., act_mean/layers.3,
    act_std/..., saturated_fraction/..., dead_fraction/...; histograms when the run
    logged them; x axis: the optimizer step. TensorBoard (extra `tensorboard`): one
    run per dlexp run, the config as text. MLflow (extra `mlflow`): the flattened
    config as params, the metrics with their steps, the CSVs, figures and the HTML
    report as artifacts, tags for status, seed and verdict; a sweep is a parent run
    with its runs as children. Exporting a run again replaces its earlier export
    (its key is its folder name); a failed export leaves nothing half-written.
    """
    from dlexp.errors import DlexpError
    from dlexp.export import plan_export

    if tensorboard is None and mlflow is None:
        raise DlexpError("export: give --tensorboard LOGDIR, --mlflow URI or both")
    loose, sweeps = plan_export(list(paths))
    items = loose + [item for sweep in sweeps for item in sweep.runs]
    console = stdout_console()
    if tensorboard is not None:
        from dlexp.export import tensorboard as tb

        folders = tb.export(items, tensorboard)
        console.print(f"tensorboard: {len(folders)} run(s) under {tensorboard} "
                      f"(view: tensorboard --logdir {tensorboard})", highlight=False, soft_wrap=True, markup=False)
    if mlflow is not None:
        from dlexp.export import mlflow as ml

        made = ml.export(loose, sweeps, mlflow, experiment)
        console.print(f"mlflow: {len(made)} run(s) in experiment {experiment!r} at {mlflow}"
                      + (f" ({len(sweeps)} sweep parent run(s))" if sweeps else ""),
                      highlight=False, soft_wrap=True, markup=False)
