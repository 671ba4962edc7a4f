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
