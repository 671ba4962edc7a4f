"""`dlexp sweep` and `dlexp compare-optimizers`: thin commands over dlexp.sweep."""

from __future__ import annotations

import json
import math
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from dlexp.cli.app import app, human_console, is_interactive
from dlexp.cli.checks import evaluate_checks
from dlexp.cli.display import RunsProgress, fmt
from dlexp.errors import DlexpError, terminal_line
from dlexp.registry import did_you_mean

EXECUTORS = ["local", "dask"]

ConfigArg = Annotated[Path, typer.Argument(help="Experiment YAML file.", show_default=False)]
GridOption = Annotated[list[str], typer.Option("--grid", "-g", help="Swept key and values: KEY=V1,V2,... (YAML values; "
                                                "commas inside [] or {} do not split), repeatable; the grid is their product.")]
SetOption = Annotated[list[str], typer.Option("--set", "-s", help="Override a config field for every run: KEY=VALUE, repeatable.")]
SeedsOption = Annotated[int, typer.Option("--seeds", min=1, help="Seeds per grid point, counting up from the config's seed.")]
JobsOption = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Parallel runs (worker processes or Dask "
                                                   "workers); default: the number of cores.", show_default=False)]
ExecutorOption = Annotated[str, typer.Option("--executor", help="local (a process pool) or dask.")]
SchedulerOption = Annotated[str | None, typer.Option("--scheduler", help="With --executor dask: address of a running "
                                                        "scheduler, tcp://HOST:PORT (default: start a LocalCluster).")]
RunsDirOption = Annotated[Path, typer.Option("--runs-dir", help="The sweep folder goes to RUNS_DIR/sweeps/.")]
NameOption = Annotated[str | None, typer.Option(help="Sweep name (default: the config's name).")]
SortOption = Annotated[str, typer.Option("--sort", help="Order of the table: val_loss, train_loss, val_acc, train_acc, "
                                         "best_loss, loss_auc, epochs_to_target, best_epoch, wall_s, or grid.")]
CheckOption = Annotated[list[str], typer.Option("--check", help="Assert on every grid point's mean, e.g. 'val_acc>=0.9'; "
                                                "exit 1 if one fails.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout; all else on stderr.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no table.")]
AllowFailuresOption = Annotated[bool, typer.Option("--allow-failures", help="Exit 0 even when runs failed or were "
                                                   "interrupted (they are counted in the table either way).")]
FailOnDivergenceOption = Annotated[bool, typer.Option("--fail-on-divergence", help="Exit 1 when a run diverged "
                                                      "(by default a diverged run is a result).")]


@app.command()
def sweep(
    config: ConfigArg,
    grid: GridOption = [],
    sets: SetOption = [],
    seeds: SeedsOption = 1,
    jobs: JobsOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    name: NameOption = None,
    sort: SortOption = "val_loss",
    checks: CheckOption = [],
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    allow_failures: AllowFailuresOption = False,
    fail_on_divergence: FailOnDivergenceOption = False,
) -> None:
    """Run the cartesian grid of --grid overrides × seeds and tabulate mean ± std per grid point."""
    from dlexp.sweep.grid import parse_axis

    _validate_common(sort, checks, executor, scheduler)
    axes = [parse_axis(text) for text in grid]
    _run("sweep", config, axes, notes={}, sets=sets, seeds=seeds, jobs=jobs, executor_name=executor,
         scheduler=scheduler, runs_dir=runs_dir, name=name, sort=sort, checks=checks, json_out=json_out,
         quiet=quiet, target_loss=None, allow_failures=allow_failures, fail_on_divergence=fail_on_divergence)


@app.command("compare-optimizers")
def compare_optimizers(
    config: ConfigArg,
    optimizers: Annotated[str, typer.Option("--optimizers", help="Comma-separated optimizer names.")] =
    "sgd,momentum,nesterov,adam,adamw,adamax,adadelta,rmsprop,adagrad,nadam",
    lrs: Annotated[list[str], typer.Option("--lr", help="Learning rate of one optimizer: OPT=VALUE, repeatable "
                                           "(default: each optimizer's own default).")] = [],
    convention: Annotated[str, typer.Option("--convention", help="Optimizer formulas and defaults: torch or keras.")] = "torch",
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Override training.epochs.")] = None,
    target_loss: Annotated[float | None, typer.Option("--target-loss", help="Report the epochs each optimizer "
                                                         "needs to reach this validation loss.")] = None,
    batch_sizes: Annotated[str | None, typer.Option("--batch-sizes", help="Also sweep training.batch_size, e.g. "
                                                       "1,32,full (stochastic, mini-batch, batch GD).")] = None,
    grid: GridOption = [],
    sets: SetOption = [],
    seeds: SeedsOption = 1,
    tune_lr: Annotated[bool, typer.Option("--tune-lr", help="First tune each optimizer's lr on a log grid (best mean "
                                          "validation loss over --tune-seeds), then compare at the tuned lrs over "
                                          "--seeds later seeds.")] = False,
    lr_grids: Annotated[list[str], typer.Option("--lr-grid", help="With --tune-lr: LOW:HIGH:N (every optimizer) or "
                                                "OPT=LOW:HIGH:N, N log-spaced lrs; repeatable (default: 9 points "
                                                "over 2 decades either side of each optimizer's default).")] = [],
    tune_seeds: Annotated[int | None, typer.Option("--tune-seeds", min=1, help="With --tune-lr: seeds per grid point "
                                                   "(default 3); the comparison uses the seeds after them.",
                                                   show_default=False)] = None,
    budget: Annotated[int | None, typer.Option("--budget", min=1, help="With --tune-lr: epochs of each tuning run "
                                               "(default: the comparison's).", show_default=False)] = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = "local",
    scheduler: SchedulerOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    name: NameOption = None,
    sort: SortOption = "val_loss",
    checks: CheckOption = [],
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    allow_failures: AllowFailuresOption = False,
    fail_on_divergence: FailOnDivergenceOption = False,
) -> None:
    """Train one config with each optimizer (same data, initial weights and batch order per seed)."""
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
    from dlexp.sweep.engine import check_sort_key

    check_sort_key(sort)
    evaluate_checks(checks, {})  # parse errors before any work
    if executor not in EXECUTORS:
        raise DlexpError(f"--executor {executor!r}: unknown executor{did_you_mean(executor, EXECUTORS)} "
                         f"(accepted: {', '.join(EXECUTORS)})")
    if scheduler and executor != "dask":
        raise DlexpError("--scheduler needs --executor dask")


def make_executor(executor_name: str, scheduler: str | None, jobs: int | None, n_runs: int):
    """A LocalExecutor or DaskExecutor with at most ``n_runs`` workers (default: the cores)."""
    from dlexp.sweep.runner import LocalExecutor, default_jobs

    workers = max(1, min(jobs or default_jobs(), n_runs))
    if executor_name == "dask":
        from dlexp.sweep.dask_executor import DaskExecutor

        return DaskExecutor(workers, scheduler)
    return LocalExecutor(workers)


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
    from dlexp.experiment import SIGNAL_EXIT
    from dlexp.sweep.engine import run_sweep
    from dlexp.sweep.grid import build_plan
    from dlexp.sweep.runner import cancel_on_signals

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
                outcome = run_sweep(plan, executor, runs_dir, sort=sort, target_loss=target_loss,
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
        print_wide(console, sweep_table(outcome))
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




def print_wide(console: Console, table: Table) -> None:
    """On a terminal rich fits the table to the window; in a file or pipe it gets the width it needs."""
    if not console.is_terminal:
        console.width = max(console.width, Measurement.get(console, console.options.update_width(10_000), table).maximum)
    console.print(table)


def _mean_std(point: dict[str, Any], key: str, digits: int = 4) -> str:
    mean, std = point["mean"].get(key), point["std"].get(key)
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    text = fmt(float(mean), digits)
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {fmt(float(std), digits)}"
    return text


def sweep_table(outcome) -> Table:
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
    columns = ["train_loss", "val_loss"] + (["train_acc", "val_acc"] if plan.classification else [])
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
        cells.append(fmt(point["best_epoch"]))
        if compare:
            if outcome.target_loss is not None:
                reached = point["reached_target"]
                cells.append(f"{_mean_std(point, 'epochs_to_target', 1) if reached else '—'} "
                             f"({reached}/{point['completed']})")
            cells.append(_mean_std(point, "loss_auc", 3))
        cells.append(fmt(point["mean"].get("wall_s"), 2))
        cells.append(f"{point['diverged']}/{point['runs']}" if point["diverged"] else "0")
        if any_failed:
            cells.append(str(point["failed"]))
        if any_stopped:
            cells.append(str(point["interrupted"] + point["cancelled"]))
        table.add_row(*cells)
    return table
