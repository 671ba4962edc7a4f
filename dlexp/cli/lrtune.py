"""`dlexp lr-find` and `dlexp compare-optimizers --tune-lr`: thin commands over dlexp.sweep.lrfind and
dlexp.sweep.tuning, run on the sweep runner."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dlexp.cli.app import app, human_console, is_interactive
from dlexp.cli.options import (
    DEFAULT_RUNS_DIR,
    GRID,
    ConfigArg,
    JobsOption,
    JsonOption,
    RunsDirOption,
    SetOption,
)
from dlexp.cli.sweep import (
    ExecutorOption,
    NameOption,
    QuietOption,
    SchedulerOption,
    _run,
    _validate_common,
)
from dlexp.errors import DlexpError

if TYPE_CHECKING:
    from rich.table import Table

RANGE_TEST = "Range test"


def _lr(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _lr_range(pair) -> str:
    if not pair:
        return "—"
    low, high = pair
    return _lr(low) if low == high else f"{_lr(low)}–{_lr(high)}"


# -- compare-optimizers --tune-lr -----------------------------------------------------------------------


def tuning_table(choices: dict, document: dict) -> Table:
    from rich.table import Table

    from dlexp.cli.tables import num

    seeds = document["tune_seeds"]
    shown = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"
    table = Table(title=f"lr tuning: {len(choices)} optimizers, {shown}, {document['budget_epochs']} epochs each",
                  caption="chosen: lowest mean final val loss over the tuning seeds (never the test split); "
                          "± standard error; within 1 SE: the lrs whose mean is within one SE of the best; "
                          "edge: the best lr is the grid's first or last point (widen the grid)",
                  caption_justify="left")
    for title in ("optimizer", "grid", "chosen lr", "val loss", "within 1 SE", "edge", "not eligible"):
        table.add_column(title, justify="left" if title in ("optimizer", "edge") else "right")
    for choice in choices.values():
        grid = f"{_lr(choice.grid[0])}–{_lr(choice.grid[-1])} ({len(choice.grid)})"
        bad = sum(not p["eligible"] for p in choice.points)
        if choice.lr is None:
            table.add_row(choice.optimizer, grid, "—", "—", "—", "", f"{bad}/{len(choice.points)}")
            continue
        best = choice.points[choice.best_index]
        loss = num(best["mean_val_loss"])
        if math.isfinite(best["se_val_loss"]):
            loss += f" ± {num(best['se_val_loss'], 2)}"
        table.add_row(choice.optimizer, grid, _lr(choice.lr), loss, _lr_range(choice.lr_range),
                      f"{choice.edge} edge" if choice.edge else "", f"{bad}/{len(choice.points)}")
    return table


def run_tuned(config: Path, *, optimizers: str, lrs: list[str], convention: str, epochs: int | None,
              lr_grids: list[str], tune_seeds: int, budget: int | None, batch_sizes: str | None,
              grid: list[str], common: dict[str, Any]) -> None:
    """compare-optimizers --tune-lr: the tuning sweep, then the comparison at the tuned lrs (via ``_run``)."""
    from dlexp.cli.display import RunsProgress
    from dlexp.cli.tables import print_table
    from dlexp.config import validate_mapping
    from dlexp.experiment import SIGNAL_EXIT
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.grid import build_plan
    from dlexp.sweep.optimizers import check_convention, parse_optimizers
    from dlexp.sweep.tuning import (
        build_tuning_plan,
        choose_lrs,
        evaluation_axis,
        parse_lr_grids,
        tuning_document,
        tuning_records,
        write_tuning,
    )

    for flag, value in (("--lr", lrs), ("--batch-sizes", batch_sizes), ("--grid", grid)):
        if value:
            raise DlexpError(f"{flag} cannot be combined with --tune-lr (the lr comes from the tuning grid; "
                             "tune one batch size or grid point per command, with --set)")
    check_convention(convention)
    names = parse_optimizers(optimizers, convention)
    grids = parse_lr_grids(lr_grids, names, convention)
    sets = list(common.pop("sets")) + ([f"training.epochs={epochs}"] if epochs is not None else [])
    quiet, json_out, seeds = common["quiet"], common["json_out"], common["seeds"]
    n_tuning = sum(len(g) for g in grids.values()) * tune_seeds

    def make_plan(executor, console):
        plan = build_tuning_plan(config, grids, convention, tune_seeds=tune_seeds, budget=budget, sets=sets,
                                 name=f"{common['name'] or Path(config).stem}-lr-tuning")
        progress = RunsProgress(console, len(plan.runs), executor.slots, is_interactive(console, quiet))
        with progress:
            outcome = run_sweep(plan, executor, common["runs_dir"] or DEFAULT_RUNS_DIR,
                                on_result=progress.on_result)
        if any(row["status"] in ("interrupted", "cancelled") for row in outcome.rows):
            sys.stderr.write(f"interrupted during the lr tuning; its runs are in {outcome.sweep_dir}\n")
            raise typer.Exit(SIGNAL_EXIT.get(executor.cancelled_by, 130))
        choices = choose_lrs(tuning_records(plan, outcome.results), names)
        budget_epochs = budget or validate_mapping(plan.runs[0].config, str(config)).training.epochs
        document = tuning_document(plan, choices, outcome.sweep_dir, budget_epochs)
        write_tuning(outcome.sweep_dir, document, choices,
                     f"{plan.name}: final val loss against lr ({len(plan.seeds)} seeds)")
        if not quiet:
            print_table(console, tuning_table(choices, document), optional=("not eligible", "grid", "within 1 SE"),
                        rest="--json, or the tuning folder's files")
        if not (quiet and json_out):
            console.print(f"tuning folder: {outcome.sweep_dir}", highlight=False, soft_wrap=True, markup=False)
        for choice in choices.values():
            if choice.lr is None:
                sys.stderr.write(f"{choice.optimizer}: every lr of its grid had a diverged or failed tuning run; "
                                 "left out of the comparison\n")
            elif choice.edge:
                sys.stderr.write(f"{choice.optimizer}: the best lr {choice.lr:.3g} is at the {choice.edge} edge of "
                                 "its grid; widen it with --lr-grid\n")
        axis, notes = evaluation_axis(choices, convention)
        if not axis.values:
            raise DlexpError("no optimizer has a usable lr after tuning (every grid point diverged or failed)")
        evaluation = build_plan(config, [axis], sets=sets, seeds=seeds, name=common["name"],
                                kind="compare-optimizers", notes=notes, seed_offset=tune_seeds)
        evaluation.extra["lr_tuning"] = document
        return evaluation

    _run("compare-optimizers", config, [], notes={}, sets=sets, make_plan=make_plan,
         n_runs=max(n_tuning, len(names) * seeds), **common)


# -- lr-find ---------------------------------------------------------------------------------------------


def lr_find_table(analysis: dict, seeds: list[int]) -> Table:
    from rich.table import Table

    settings = analysis["settings"]
    shown = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]} (geometric mean)"
    table = Table(title=f"lr range test: lr {settings['start_lr']:g} → {settings['end_lr']:g} over at most "
                        f"{settings['steps']} steps, {shown}",
                  caption=f"suggested = minimum/10: {analysis['rules']['minimum/10']}; steep: "
                          f"{analysis['rules']['steep']}; on the {analysis['rules']['window']}",
                  caption_justify="left")
    for title in ("optimizer", "suggested lr", "steep", "lowest loss at", "ended", "--lr-grid"):
        table.add_column(title, justify="left" if title in ("optimizer", "ended", "--lr-grid") else "right")
    for opt in analysis["optimizers"]:
        suggested = _lr(opt["suggested_lr"])
        if opt["suggested_range"] and len(opt["runs"]) > 1:
            suggested += f" ({_lr_range(opt['suggested_range'])})"
        ended = "; ".join(sorted({r["ended"] for r in opt["runs"]}))
        table.add_row(opt["optimizer"], suggested, _lr(opt["steep_lr"]), _lr(opt["minimum_lr"]), ended,
                      opt["lr_grid"] or "—")
    return table


@app.command("lr-find", short_help="The learning-rate range test: which lr to start from.", examples=[
    ("Range-test the config's own optimizer and print the suggested lr:", "dlexp lr-find configs/iris.yaml"),
    ("Three optimizers, 3 seeds each, then tune around what it suggests:",
     "dlexp lr-find configs/iris.yaml --optimizers sgd,adam,rmsprop --seeds 3"),
])
def lr_find(
    config: ConfigArg,
    optimizers: Annotated[str | None, typer.Option(
        "--optimizers", metavar="LIST", rich_help_panel=RANGE_TEST, show_default="the config's optimizer",
        help="Comma-separated optimizers, each at its defaults but the lr.")] = None,
    convention: Annotated[str, typer.Option(
        "--convention", metavar="torch|keras", rich_help_panel=RANGE_TEST,
        help="With --optimizers: the optimizers' formulas and defaults.")] = "torch",
    start_lr: Annotated[float, typer.Option(
        "--start-lr", rich_help_panel=RANGE_TEST, show_default="1e-7", help="First learning rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option(
        "--end-lr", rich_help_panel=RANGE_TEST, show_default="10", help="Last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(
        "--steps", rich_help_panel=RANGE_TEST, help="Optimizer steps from --start-lr to --end-lr.")] = 100,
    stop_factor: Annotated[float, typer.Option(
        "--stop-factor", rich_help_panel=RANGE_TEST, show_default="4",
        help="Stop once the smoothed loss exceeds this multiple of its minimum.")] = 4.0,
    smoothing: Annotated[float, typer.Option(
        "--smoothing", rich_help_panel=RANGE_TEST, help="Beta of the loss's moving average.")] = 0.98,
    sets: SetOption = [],
    seeds: Annotated[int, typer.Option(
        "--seeds", min=1, rich_help_panel=GRID,
        help="Range tests per optimizer, counting up from the config's seed.")] = 1,
    jobs: JobsOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    runs_dir: RunsDirOption = None,
    name: NameOption = None,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """The learning-rate range test (Smith 2017; fastai's lr_find): lr raised exponentially over one short
    run, smoothed loss against lr, and the suggested lr with the rule used."""
    from dlexp.cli.display import RunsProgress
    from dlexp.cli.tables import print_table, prose
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.lrfind import RangeTestSettings, analyse, build_lr_find_plan, write_lr_find
    from dlexp.sweep.runner import make_executor

    _validate_common("val_loss", [], executor, scheduler)
    settings = RangeTestSettings(start_lr, end_lr, steps, stop_factor, smoothing).check()
    n_runs = (len(optimizers.split(",")) if optimizers else 1) * seeds
    console = human_console(json_out)
    with make_executor(executor, scheduler, jobs, n_runs) as pool:
        plan = build_lr_find_plan(config, settings, optimizers=optimizers, convention=convention, sets=sets,
                                  seeds=seeds, name=f"{name or Path(config).stem}-lr-find")
        with RunsProgress(console, len(plan.runs), pool.slots, is_interactive(console, quiet)) as progress:
            outcome = run_sweep(plan, pool, runs_dir or DEFAULT_RUNS_DIR, on_result=progress.on_result)
    analysis = analyse(plan, outcome.rows, settings)
    document = write_lr_find(outcome.sweep_dir, analysis, f"{plan.name}: range test ({len(plan.seeds)} seeds)")
    if json_out:
        sys.stdout.write(json.dumps({"sweep_dir": str(outcome.sweep_dir), **document}, indent=2) + "\n")
    if not quiet:
        print_table(console, lr_find_table(analysis, plan.seeds), optional=("--lr-grid", "ended", "steep"),
                    rest="--json, or the sweep folder's files")
        if analysis["lr_grid"]:
            prose(console, "seed a tuned comparison with: "
                  + " ".join(f"--lr-grid {g}" for g in analysis["lr_grid"]))
    if not (quiet and json_out):
        console.print(f"sweep folder: {outcome.sweep_dir} (figure: lr_find.png)", highlight=False, soft_wrap=True,
                      markup=False)
    for opt in analysis["optimizers"]:
        for warning in opt["warnings"]:
            sys.stderr.write(f"{opt['optimizer']}: {warning}\n")
        for run in opt["runs"]:
            if run["status"] == "failed":
                sys.stderr.write(f"failed: {opt['optimizer']} seed {run['seed']}: "
                                 f"{' '.join(str(run['error']).split())}\n")
    if any(row["status"] in ("interrupted", "cancelled") for row in outcome.rows):
        raise typer.Exit(130)
    raise typer.Exit(0 if all(opt["suggested_lr"] for opt in analysis["optimizers"]) else 1)
