"""``dlexp predict`` and ``dlexp evaluate``: a trained run applied to a CSV file."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dlexp.cli.app import app, human_console
from dlexp.cli.options import OUTPUT, JsonOption
from dlexp.errors import DlexpError

if TYPE_CHECKING:
    from rich.table import Table

RunDir = Annotated[Path, typer.Argument(help="A completed run directory.", metavar="RUN_DIR", show_default=False)]
DataFile = Annotated[Path, typer.Argument(help="CSV file, read with the run's column rules.", metavar="DATA.csv",
                                          show_default=False)]


@app.command(examples=[
    ("Predict the classes of new rows, as CSV on stdout:", "dlexp predict runs/iris-20260101-120000 new.csv"),
    ("With each class's probability, into a file:",
     "dlexp predict runs/iris-20260101-120000 new.csv --proba -o predictions.csv"),
])
def predict(
    run_dir: RunDir,
    data: DataFile,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="FILE", rich_help_panel=OUTPUT, show_default="stdout",
        help="Write the predictions here.")] = None,
    proba: Annotated[bool, typer.Option(
        "--proba", rich_help_panel=OUTPUT, help="Add one probability column per class.")] = False,
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


@app.command(examples=[
    ("Score a trained run on labelled data it has not seen:", "dlexp evaluate runs/iris-20260101-120000 test.csv"),
    ("The metrics as JSON, for a script:", "dlexp evaluate runs/iris-20260101-120000 test.csv --json"),
])
def evaluate(
    run_dir: RunDir,
    data: DataFile,
    json_out: JsonOption = False,
) -> None:
    """Metrics of a trained run on labelled data; for classification, a confusion matrix and per-class scores."""
    from dlexp import rundir as rd
    from dlexp.inference import load_run

    trained = load_run(run_dir)
    result = trained.evaluate(trained.table(data, str(data)))
    if json_out:
        sys.stdout.write(json.dumps(rd.json_safe(result), indent=2) + "\n")
        return
    from dlexp.cli.tables import print_table

    console = human_console(False)
    console.print(f"{run_dir} on {data}:", highlight=False, soft_wrap=True, markup=False)
    for table in evaluation_tables(result):
        print_table(console, table, rest="--json")


def evaluation_tables(result: dict) -> list[Table]:
    from rich.table import Table

    from dlexp.cli.tables import num

    metrics = Table()
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key in ("n_rows", "loss", "acc", "rmse", "mae", "r2"):
        if key in result:
            metrics.add_row(key, num(result[key]))
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
            report.add_row(row["class"], num(row["precision"]), num(row["recall"]), num(row["f1"]), str(row["support"]))
        for label, row in result["averages"].items():
            report.add_row(f"{label} avg", num(row["precision"]), num(row["recall"]), num(row["f1"]),
                           str(row["support"]))
        tables += [matrix, report]
    return tables
