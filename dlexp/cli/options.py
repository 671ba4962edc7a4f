"""Options several commands share, declared once so that one idea has one name, one help text and one
section of the help page everywhere.

Two folder ideas, two names:
    --runs-dir DIR  the folder in which a command creates its new, uniquely named folders (run
                    directories, sweep and report folders); default ``runs``.
    --out DIR       exactly the folder a command writes its files into (figures, a page, a report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Section titles of the help pages, in the order commands use them.
INPUT = "Input"
GRID = "Grid"
RUN = "Running"
OUTPUT = "Output"
CHECKS = "Checks"

ConfigArg = Annotated[Path, typer.Argument(help="Experiment YAML file.", metavar="CONFIG", show_default=False)]
SetOption = Annotated[list[str], typer.Option(
    "--set", "-s", metavar="KEY=VALUE", rich_help_panel=INPUT,
    help="Override a config field (the value is YAML), e.g. training.epochs=20.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", rich_help_panel=OUTPUT, help="Print the result as JSON on stdout; all else on stderr.")]
JobsOption = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, rich_help_panel=RUN, show_default="the cores available",
    help="Runs trained in parallel.")]
RunsDirOption = Annotated[Path | None, typer.Option(
    "--runs-dir", metavar="DIR", rich_help_panel=OUTPUT, show_default="runs",
    help="Folder in which the new run, sweep or report folder is created.")]
DEFAULT_RUNS_DIR = Path("runs")
OutOption = Annotated[Path | None, typer.Option(
    "--out", "-o", metavar="DIR", rich_help_panel=OUTPUT, show_default=False,
    help="Write the files into exactly this folder.")]


def quiet_option(help: str = "No progress output and no tables.") -> typer.models.OptionInfo:
    return typer.Option("--quiet", "-q", rich_help_panel=OUTPUT, help=help)

