"""``dlexp predict`` and ``dlexp evaluate``: a trained run applied to a CSV file."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dlexp.cli.app import app, human_console
from dlexp.cli.display import fmt
from dlexp.cli.report import print_fitted
from dlexp.errors import DlexpError

RunDir = Annotated[Path, typer.Argument(help="A completed run directory.", metavar="RUN_DIR", show_default=False)]
DataFile = Annotated[Path, typer.Argument(help="CSV file, read with the run's column rules.", metavar="DATA.csv",
                                          show_default=False)]


@app.command()
def predict(
    run_dir: RunDir,
    data: DataFile,
    out: Annotated[Path | None, typer.Option("--out", help="Write the predictions here (default: stdout).")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add one probability column per class.")] = False,
) -> None:
    """Predict one row per input row: the class (or value), and with --proba each class's probability."""
    from dlexp import rundir as rd
    from dlexp.inference import load_run

    trained = load_run(run_dir)
    if out is not None and out.is_dir():
        raise DlexpError(f"--out {out}: is a directory; expected a file name for the predictions")
    table = trained.table(data, str(data))
    predictions = trained.predict(table)
    columns = [f"predicted_{trained.preprocessing.encoding.target}"]
    values = [predictions.tolist()] if predictions.ndim == 1 else [list(col) for col in predictions.T.tolist()]
    if predictions.ndim == 2:
        columns = [f"{columns[0]}_{i}" for i in range(predictions.shape[1])]
    if proba:
        probabilities = trained.predict_proba(table)
        columns += [f"proba_{name}" for name in trained.class_names]
        values += probabilities.T.tolist()
    buffer = io.StringIO()
    for row in (columns, *zip(*values)):
        buffer.write(",".join(rd.csv_field(v) for v in row) + "\n")
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        rd.write_text_atomic(out, buffer.getvalue())
        human_console(False).print(f"wrote {len(predictions)} predictions to {out}", highlight=False, soft_wrap=True)


@app.command()
def evaluate(
    run_dir: RunDir,
    data: DataFile,
    json_out: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON on stdout.")] = False,
) -> None:
    """Metrics of a trained run on labelled data; for classification, a confusion matrix and per-class scores."""
    from dlexp import rundir as rd
    from dlexp.inference import load_run

    trained = load_run(run_dir)
    result = trained.evaluate(trained.table(data, str(data)))
    if json_out:
        sys.stdout.write(json.dumps(rd.json_safe(result), indent=2) + "\n")
        return
    console = human_console(False)
    console.print(f"{run_dir} on {data}:", highlight=False, soft_wrap=True)
    for table in evaluation_tables(result):
        print_fitted(console, table)


def evaluation_tables(result: dict) -> list[Table]:
    metrics = Table()
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key in ("n_rows", "loss", "acc", "rmse", "mae", "r2"):
        if key in result:
            metrics.add_row(key, fmt(result[key]))
    tables = [metrics]
    if "confusion_matrix" in result:
        names = [row["class"] for row in result["per_class"]]
        matrix = Table(title="confusion matrix", title_justify="left")
        matrix.add_column("true ↓ predicted →")
        for name in names:
            matrix.add_column(name, justify="right", no_wrap=True)
        for name, counts in zip(names, result["confusion_matrix"]):
            matrix.add_row(name, *map(str, counts))
        report = Table(title="per class", title_justify="left")
        for column in ("class", "precision", "recall", "f1", "support"):
            report.add_column(column, justify="left" if column == "class" else "right", no_wrap=True)
        for row in result["per_class"]:
            report.add_row(row["class"], fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]), str(row["support"]))
        for label, row in result["averages"].items():
            report.add_row(f"{label} avg", fmt(row["precision"]), fmt(row["recall"]), fmt(row["f1"]),
                           str(row["support"]))
        tables += [matrix, report]
    return tables
