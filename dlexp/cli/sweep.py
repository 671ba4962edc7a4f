"""`dlexp sweep` and `dlexp compare-optimizers`: thin commands over dlexp.sweep."""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dlexp.cli.app import app, human_console, is_interactive
from dlexp.cli.checks import evaluate_checks
from dlexp.cli.options import (
    CHECKS,
    DEFAULT_RUNS_DIR,
    GRID,
    OUTPUT,
    RUN,
    ConfigArg,
    JobsOption,
    JsonOption,
    RunsDirOption,
    SetOption,
    quiet_option,
)
from dlexp.errors import DlexpError, terminal_line
from dlexp.registry import did_you_mean

if TYPE_CHECKING:
    from rich.table import Table

EXECUTORS = ["local", "dask"]
OPTIMIZERS = "sgd,momentum,nesterov,adam,adamw,adamax,adadelta,rmsprop,adagrad,nadam"

GridOption = Annotated[list[str], typer.Option(
    "--grid", "-g", metavar="KEY=V1,V2,...", rich_help_panel=GRID,
    help="A swept key and its values (YAML; commas inside [] or {} do not split); the grid is the "
         "product of all --grid options.")]
SeedsOption = Annotated[int, typer.Option(
    "--seeds", min=1, rich_help_panel=GRID, help="Seeds per grid point, counting up from the config's seed.")]
ExecutorOption = Annotated[str, typer.Option(
    "--executor", metavar="local|dask", rich_help_panel=RUN, help="local (a process pool) or dask.")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", metavar="tcp://HOST:PORT", rich_help_panel=RUN, show_default="start a LocalCluster",
    help="With --executor dask: the address of a running scheduler.")]
NameOption = Annotated[str | None, typer.Option(
    rich_help_panel=OUTPUT, help="Sweep name.", show_default="the config's name")]
SortOption = Annotated[str, typer.Option(
    "--sort", metavar="KEY", rich_help_panel=OUTPUT,
    help="Order of the table: val_loss, train_loss, val_acc, train_acc, best_loss, loss_auc, "
         "epochs_to_target, best_epoch, wall_s, or grid.")]
CheckOption = Annotated[list[str], typer.Option(
    "--check", metavar="EXPR", rich_help_panel=CHECKS,
    help="Assert on every grid point's mean, e.g. 'val_acc>=0.9'; exit 1 if one fails.")]
QuietOption = Annotated[bool, quiet_option("No progress bar and no table.")]
TUNING = "Learning-rate tuning"
AllowFailuresOption = Annotated[bool, typer.Option(
    "--allow-failures", rich_help_panel=CHECKS,
    help="Exit 0 even when runs failed or were interrupted (they are counted in the table either way).")]
FailOnDivergenceOption = Annotated[bool, typer.Option(
    "--fail-on-divergence", rich_help_panel=CHECKS,
    help="Exit 1 when a run diverged (by default a diverged run is a result).")]


@app.command(examples=[
    ("Learning rate × width, 3 seeds per point:",
     "dlexp sweep configs/iris.yaml -g training.optimizer.lr=0.001,0.01 -g model.width=16,64 --seeds 3"),
    ("Dropout rates, on 4 processes, failing if one point is worse than 0.9:",
     "dlexp sweep configs/dropout.yaml -g model.dropout=0,0.2,0.5 -j 4 --check 'val_acc>=0.9'"),
])
def sweep(
    config: ConfigArg,
    grid: GridOption = [],
    sets: SetOption = [],
    seeds: SeedsOption = 1,
    jobs: JobsOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    runs_dir: RunsDirOption = None,
    name: NameOption = None,
    sort: SortOption = "val_loss",
    checks: CheckOption = [],
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    allow_failures: AllowFailuresOption = False,
    fail_on_divergence: FailOnDivergenceOption = False,
) -> None:
    """Train every combination of the --grid values, × seeds; a table of mean ± std per grid point.

    The sweep folder (RUNS_DIR/sweeps/NAME-TIME/) holds every run directory, sweep.csv (a row per run),
    curves.csv (a row per run and epoch) and sweep.json (the table: a row per grid point).
    """
    from dlexp.sweep.grid import parse_axis

    _validate_common(sort, checks, executor, scheduler)
    axes = [parse_axis(text) for text in grid]
    _run("sweep", config, axes, notes={}, sets=sets, seeds=seeds, jobs=jobs, executor_name=executor,
         scheduler=scheduler, runs_dir=runs_dir, name=name, sort=sort, checks=checks, json_out=json_out,
         quiet=quiet, target_loss=None, allow_failures=allow_failures, fail_on_divergence=fail_on_divergence)


@app.command("compare-optimizers", examples=[
    ("Every optimizer on one config, 3 seeds each:", "dlexp compare-optimizers configs/iris.yaml --seeds 3"),
    ("Three optimizers, SGD at a larger step, and the epochs each needs to reach loss 0.1:",
     ("dlexp compare-optimizers configs/iris.yaml --optimizers sgd,adam,rmsprop --lr sgd=0.1 "
      "--target-loss 0.1")),
    ("Stochastic, mini-batch and batch gradient descent side by side:",
     "dlexp compare-optimizers configs/quickstart.yaml --optimizers sgd,adam --batch-sizes 1,32,full"),
])
def compare_optimizers(
    config: ConfigArg,
    optimizers: Annotated[str, typer.Option(
        "--optimizers", metavar="LIST", rich_help_panel=GRID, help="Comma-separated optimizer names.")] = OPTIMIZERS,
    lrs: Annotated[list[str], typer.Option(
        "--lr", metavar="OPT=VALUE", rich_help_panel=GRID, show_default="each optimizer's own default",
        help="Learning rate of one optimizer.")] = [],
    convention: Annotated[str, typer.Option(
        "--convention", metavar="torch|keras", rich_help_panel=GRID,
        help="Optimizer formulas and defaults.")] = "torch",
    epochs: Annotated[int | None, typer.Option(
        "--epochs", min=1, rich_help_panel=GRID, help="Override training.epochs.")] = None,
    target_loss: Annotated[float | None, typer.Option(
        "--target-loss", rich_help_panel=OUTPUT,
        help="Report the epochs each optimizer needs to reach this validation loss.")] = None,
    batch_sizes: Annotated[str | None, typer.Option(
        "--batch-sizes", metavar="LIST", rich_help_panel=GRID,
        help="Also sweep training.batch_size, e.g. 1,32,full (stochastic, mini-batch, batch GD).")] = None,
    grid: GridOption = [],
    sets: SetOption = [],
    seeds: SeedsOption = 1,
    tune_lr: Annotated[bool, typer.Option(
        "--tune-lr", rich_help_panel=TUNING,
        help="First tune each optimizer's lr on a log grid (best mean validation loss over --tune-seeds), "
             "then compare at the tuned lrs over --seeds later seeds.")] = False,
    lr_grids: Annotated[list[str], typer.Option(
        "--lr-grid", metavar="[OPT=]LOW:HIGH:N", rich_help_panel=TUNING,
        show_default="9 points over 2 decades either side of each optimizer's default",
        help="With --tune-lr: N log-spaced lrs from LOW to HIGH, for every optimizer or for OPT.")] = [],
    tune_seeds: Annotated[int | None, typer.Option(
        "--tune-seeds", min=1, rich_help_panel=TUNING, show_default="3",
        help="With --tune-lr: seeds per grid point; the comparison uses the seeds after them.")] = None,
    budget: Annotated[int | None, typer.Option(
        "--budget", min=1, rich_help_panel=TUNING, show_default="the comparison's epochs",
        help="With --tune-lr: epochs of each tuning run.")] = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    runs_dir: RunsDirOption = None,
    name: NameOption = None,
    sort: SortOption = "val_loss",
    checks: CheckOption = [],
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    allow_failures: AllowFailuresOption = False,
    fail_on_divergence: FailOnDivergenceOption = False,
) -> None:
    """Train one config with each optimizer: same data, initial weights and batch order per seed.

    A sweep whose first axis is the optimizer; its table adds the learning rate used, the epochs to
    --target-loss and the area under the validation loss curve.
    """
    from dlexp.sweep.grid import parse_axis
    from dlexp.sweep.optimizers import batch_size_axis, optimizer_axis

    _validate_common(sort, checks, executor, scheduler)
    if target_loss is not None and not math.isfinite(target_loss):
        raise DlexpError(f"--target-loss {target_loss}: must be a finite number")
    if tune_lr:
        from dlexp.cli.lrtune import run_tuned

        run_tuned(config, optimizers=optimizers, lrs=lrs, convention=convention, epochs=epochs, lr_grids=lr_grids,
                  tune_seeds=tune_seeds or 3, budget=budget, batch_sizes=batch_sizes, grid=grid,
                  common={"sets": sets, "seeds": seeds, "jobs": jobs, "executor_name": executor,
                          "scheduler": scheduler, "runs_dir": runs_dir, "name": name, "sort": sort, "checks": checks,
                          "json_out": json_out, "quiet": quiet, "target_loss": target_loss,
                          "allow_failures": allow_failures, "fail_on_divergence": fail_on_divergence})
        return
    given = [flag for flag, value in (("--lr-grid", lr_grids), ("--tune-seeds", tune_seeds), ("--budget", budget))
             if value]
    if given:
        raise DlexpError(f"{given[0]} needs --tune-lr")
    axis, notes = optimizer_axis(optimizers, lrs, convention)
    axes = [axis]
    if batch_sizes is not None:
        axes.append(batch_size_axis(batch_sizes))
    for text in grid:
        extra = parse_axis(text)
        if extra.key.startswith("training.optimizer") or (batch_sizes is not None and extra.key == "training.batch_size"):
            raise DlexpError(f"--grid {text!r}: compare-optimizers sets {extra.key} itself; use --optimizers, --lr "
                             "and --batch-sizes")
        axes.append(extra)
    extra_sets = list(sets) + ([f"training.epochs={epochs}"] if epochs is not None else [])
    _run("compare-optimizers", config, axes, notes=notes, sets=extra_sets, seeds=seeds, jobs=jobs,
         executor_name=executor, scheduler=scheduler, runs_dir=runs_dir, name=name, sort=sort, checks=checks,
         json_out=json_out, quiet=quiet, target_loss=target_loss, allow_failures=allow_failures,
         fail_on_divergence=fail_on_divergence)


def _validate_common(sort: str, checks: list[str], executor: str, scheduler: str | None) -> None:
    from dlexp.sweep.folder import check_sort_key

    check_sort_key(sort)
    evaluate_checks(checks, {})  # parse errors before any work
    check_executor(executor, scheduler)


def check_executor(executor: str, scheduler: str | None) -> None:
    """A known ``--executor``, and ``--scheduler`` only with dask."""
    if executor not in EXECUTORS:
        raise DlexpError(f"--executor {executor!r}: unknown executor{did_you_mean(executor, EXECUTORS)} "
                         f"(accepted: {', '.join(EXECUTORS)})")
    if scheduler and executor != "dask":
        raise DlexpError("--scheduler needs --executor dask")


def _run(kind: str, config: Path, axes: list, *, notes: dict, sets: list[str], seeds: int, jobs: int | None,
         executor_name: str, scheduler: str | None, runs_dir: Path, name: str | None, sort: str,
         checks: list[str], json_out: bool, quiet: bool, target_loss: float | None,
         make_plan=None, n_runs: int | None = None, allow_failures: bool = False,
         fail_on_divergence: bool = False) -> None:
    """Validate, run and report one sweep; the body of both commands.

    ``make_plan(executor, console)``, if given, returns the plan instead of the grid of ``axes``
    (compare-optimizers --tune-lr runs its tuning sweep there); ``n_runs`` then sizes the workers.

    Exit: 130 / 143 when SIGINT / SIGTERM cancelled the sweep (after the partial table); 1 when a
    run failed or was interrupted (unless ``allow_failures``), a run diverged with
    ``fail_on_divergence``, or a ``--check`` failed; else 0.
    """
    from dlexp.cli.display import RunsProgress
    from dlexp.experiment import SIGNAL_EXIT
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.grid import build_plan
    from dlexp.sweep.runner import cancel_on_signals, make_executor

    n_runs = n_runs or math.prod(len(axis.values) for axis in axes) * seeds
    executor = make_executor(executor_name, scheduler, jobs, n_runs)
    console = human_console(json_out)
    # Workers start (or the cluster is reached) while every run is validated; nothing is written
    # before both succeed.
    try:
        with cancel_on_signals(executor), executor:
            if make_plan is not None:
                plan = make_plan(executor, console)
            else:
                plan = build_plan(config, axes, sets=sets, seeds=seeds, name=name, kind=kind, notes=notes)
            progress = RunsProgress(console, len(plan.runs), executor.slots, is_interactive(console, quiet))
            with progress:
                outcome = run_sweep(plan, executor, runs_dir or DEFAULT_RUNS_DIR, sort=sort, target_loss=target_loss,
                                    on_result=progress.on_result)
    except KeyboardInterrupt:  # a signal before any run started: nothing to tabulate
        signum = executor.cancelled_by or signal.SIGINT
        sys.stderr.write(f"interrupted by {signal.Signals(signum).name} before the sweep started; no run was made\n")
        raise typer.Exit(SIGNAL_EXIT.get(signum, 130)) from None
    failures = []
    for point in outcome.points:
        summary = point["summary"]
        for line in (evaluate_checks(checks, summary) if summary else
                     [f"{c.strip()}: no completed run" for c in checks]):
            failures.append(f"[{point['label']}] {line}")
    if json_out:
        document = dict(outcome.document, check_failures=failures)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if not quiet:
        print_sweep(console, sweep_table(outcome))
    if not (quiet and json_out):
        console.print(f"sweep folder: {outcome.sweep_dir}", highlight=False, soft_wrap=True, markup=False)
    for row in outcome.rows:
        if row["status"] == "failed":
            sys.stderr.write(f"failed: run {row['run']} ({plan.points[row['point']].label}, seed {row['seed']}): "
                             f"{terminal_line(row['error'])}\n")
    for line in failures:
        sys.stderr.write(f"check failed: {line}\n")
    counts = outcome.document["counts"]
    n_done = counts["completed"] + counts["diverged"]
    if executor.cancelled_by is not None:
        sys.stderr.write(f"interrupted by {signal.Signals(executor.cancelled_by).name}: {n_done} of {n_runs} runs "
                         f"finished; {counts['interrupted']} interrupted (resumable with dlexp train --resume) and "
                         f"{counts['cancelled']} cancelled, as the table shows\n")
        raise typer.Exit(SIGNAL_EXIT.get(executor.cancelled_by, 130))
    lost = {status: counts[status] for status in ("failed", "interrupted", "cancelled") if counts[status]}
    if lost and not allow_failures:
        detail = ", ".join(f"{n} {status}" for status, n in lost.items())
        sys.stderr.write(f"error: {sum(lost.values())} of {n_runs} runs did not finish ({detail}); "
                         "--allow-failures accepts that\n")
        raise typer.Exit(1)
    if counts["diverged"] and fail_on_divergence:
        sys.stderr.write(f"error: {counts['diverged']} of {n_runs} runs diverged (--fail-on-divergence)\n")
        raise typer.Exit(1)
    raise typer.Exit(1 if failures else 0)


def print_sweep(console, table: Table) -> None:
    """Columns that say least go first when the table does not fit: timing, training-set figures."""
    from dlexp.cli.tables import header_text, print_table

    present = [header_text(c) for c in table.columns]
    auc = [name for name in present if name.startswith("AUC ")]
    order = ("wall s", "train loss", "train acc", "best epoch", *auc, "lr", "diverged")
    optional = [name for name in order if name in present]
    print_table(console, table, optional=optional, rest="--json, or the sweep folder's sweep.json")


def _mean_std(point: dict[str, Any], key: str, digits: int = 3) -> str:
    from dlexp.cli.tables import mean_std

    return mean_std(point["mean"].get(key), point["std"].get(key), digits)


def sweep_table(outcome) -> Table:
    from rich.markup import escape
    from rich.table import Table

    from dlexp.cli.tables import num
    from dlexp.sweep.aggregate import FINAL_METRICS

    plan = outcome.plan
    compare = plan.kind == "compare-optimizers"
    n_seeds = len(plan.seeds)
    seeds = f"seed {plan.seeds[0]}" if n_seeds == 1 else f"seeds {plan.seeds[0]}–{plan.seeds[-1]}"
    curve = next((r["curve"] for r in outcome.rows if r["status"] == "completed"), "val_loss").replace("_", " ")
    table = Table(title=f"{plan.kind} {plan.name}: {len(plan.points)} grid points × {n_seeds} seeds",
                  caption=f"mean ± sample std (ddof=1) over {seeds}, completed runs only; sorted by "
                          f"{outcome.sorted_by}; best epoch: lowest mean {curve}; wall: mean s per run",
                  caption_justify="left")
    table.add_column("#", justify="right")
    for axis in plan.axes:
        table.add_column(axis.title)
    if compare:
        table.add_column("lr", justify="right")
    columns = [key for key in FINAL_METRICS if plan.classification or not key.endswith("_acc")]
    for key in columns:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_column("best epoch", justify="right")
    if compare:
        if outcome.target_loss is not None:
            table.add_column(f"epochs to ≤{outcome.target_loss:g}", justify="right")
        table.add_column(f"AUC {curve}", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("diverged", justify="right")
    any_failed = any(p["failed"] for p in outcome.points)
    any_stopped = any(p["interrupted"] or p["cancelled"] for p in outcome.points)
    if any_failed:
        table.add_column("failed", justify="right")
    if any_stopped:
        table.add_column("stopped", justify="right")  # interrupted or cancelled by Ctrl-C
    for rank, point in enumerate(outcome.points, 1):
        cells = [str(rank), *(escape(text) for text in point["settings"].values())]
        if compare:
            cells.append(f"{point['lr']:g} ({point.get('lr_source', 'config')})" if point["lr"] is not None else "—")
        cells += [_mean_std(point, key) for key in columns]
        cells.append(num(point["best_epoch"]))
        if compare:
            if outcome.target_loss is not None:
                reached = point["reached_target"]
                cells.append(f"{_mean_std(point, 'epochs_to_target') if reached else '—'} "
                             f"({reached}/{point['completed']})")
            cells.append(_mean_std(point, "loss_auc"))
        cells.append(num(point["mean"].get("wall_s")))
        cells.append(f"{point['diverged']}/{point['runs']}" if point["diverged"] else "0")
        if any_failed:
            cells.append(str(point["failed"]))
        if any_stopped:
            cells.append(str(point["interrupted"] + point["cancelled"]))
        table.add_row(*cells)
    return table
