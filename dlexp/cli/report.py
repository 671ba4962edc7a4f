"""`dlexp grad-report`, `dlexp plot`, `dlexp gradcheck`: thin commands over dlexp.report."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dlexp.cli.app import app, human_console, is_interactive
from dlexp.cli.options import GRID, OUTPUT, ConfigArg, JobsOption, JsonOption, SetOption, quiet_option
from dlexp.errors import DlexpError, terminal_line

if TYPE_CHECKING:
    import pandas as pd

VERDICTS = "Verdicts"

GRAD_REPORT_HELP = """Gradient health per layer, from run directories or from a grid of short trainings.

With RUN_DIR ...: one table per run (side by side when they fit), a row per Dense layer, input side
first: activation, mean ‖∂L/∂W‖ over the first and the last epoch, that norm relative to the output
layer's (factor and log10), update ratio ‖ΔW‖/‖W‖, saturated % and dead %, and a verdict. Any run can
be reported on again, also one still running or killed (its partial last epoch counts).

\b
A layer's verdict: the first rule that holds (last epoch; see Verdicts):
  exploding  gradient > --explode-above (1e3) × the output layer's, or its
             gradient norm > --explode-norm-above (1e4), first or last epoch
  vanishing  gradient < --vanish-below (1e-3) × the output layer's
  dead       dead % > --dead-above (50): units that output 0 for every sample
  saturated  saturated % > --saturated-above (50): f' < 5% of max f'
             (sigmoid and tanh only; for ReLU f' = 0 just means z <= 0)
  healthy    otherwise

A run's verdict is its worst layer's. 1e-3 means the layer learns a thousand times slower than the
output layer under SGD; healthy deep nets stay within 10^±1.

With --config BASE.yaml: trains the grid activations × depths [× inits × batchnorm] × seeds (seed =
base seed + k) and prints a depth × configuration matrix of log10(first layer's gradient / output
layer's), mean ± std over seeds, beside the chain-rule bound log10(sup f'^depth) (sigmoid 0.25 per
layer, tanh 1), over the first epoch (--epoch first, the default: with --steps the initial weights,
which the bound speaks about) or the last (--epoch last). --steps N trains exactly N full-batch steps
(training.epochs=N, training.batch_size=full, logging.grad_every=1, no early stopping), so the first
epoch is step 1 and the last is step N; --steps 0 keeps the config's own training. Writes
RUNS_DIR/grad-report-<time>/ (or --out): grad_report.csv (a row per configuration, seed and layer),
grad_matrix.csv, grid.json, heatmap.png, grad_vs_layer.png, and the run directories under runs/.
"""


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    from dlexp.rundir import write_text_atomic

    if path.parent and not path.parent.exists():
        raise DlexpError(f"--csv {path}: folder {path.parent} does not exist")
    write_text_atomic(path, frame.to_csv(index=False, float_format="%.17g"))


def _labels(runs: list) -> list[str]:
    """Config names label the runs unless two share one; then the folder names do."""
    names = [run.name for run in runs]
    return [run.path.name if names.count(name) > 1 else name for run, name in zip(runs, names)]


# -- grad-report ------------------------------------------------------------------------------


def _grid_option(*names: str, help: str, default: str | None = None, **kwargs) -> Any:
    """A grid-only option: None unless given, so run-directory mode can refuse it."""
    return typer.Option(*names, help=help, show_default=default or False, rich_help_panel=GRID, **kwargs)


@app.command("grad-report", help=GRAD_REPORT_HELP, short_help="Gradient health per layer: which layers learn.",
             examples=[
                 ("Report on two runs side by side:", "dlexp grad-report runs/sigmoid-* runs/relu-*"),
                 ("The depth x activation grid, 3 seeds, 100 full-batch steps each:",
                  "dlexp grad-report --config configs/sigmoid_depth10.yaml --depths 2,4,8"),
                 ("Fail a CI job when a layer's gradient vanishes:",
                  "dlexp grad-report runs/deep-* --fail-on vanishing,exploding"),
             ])
def grad_report_command(
    run_dirs: Annotated[list[Path] | None, typer.Argument(
        help="Run directories to report on.", metavar="[RUN_DIR]...", show_default=False)] = None,
    config: Annotated[Path | None, _grid_option("--config", metavar="BASE.yaml", help="The base config.")] = None,
    sets: SetOption = [],
    activations: Annotated[str | None, _grid_option(
        "--activations", metavar="LIST", help="Comma-separated activations.",
        default="sigmoid,tanh,relu,leaky_relu")] = None,
    depths: Annotated[str | None, _grid_option(
        "--depths", metavar="LIST", help="Comma-separated hidden-layer counts.", default="2,4,8,16")] = None,
    inits: Annotated[str | None, _grid_option(
        "--inits", metavar="LIST", help="Comma-separated initializers.", default="the config's")] = None,
    batchnorm: Annotated[str | None, _grid_option(
        "--batchnorm", metavar="off|on|off,on", help="BatchNorm off, on, or both.",
        default="the config's")] = None,
    seeds: Annotated[int | None, _grid_option(
        "--seeds", min=1, help="Seeds per point: base seed + k.", default="3")] = None,
    steps: Annotated[int | None, _grid_option(
        "--steps", min=0, help="Full-batch steps per run; 0 keeps the config's training.",
        default="100")] = None,
    epoch: Annotated[str | None, _grid_option(
        "--epoch", metavar="first|last",
        help="The matrix and heatmap show the ratio over the first epoch (with --steps: the initial "
             "weights) or the last.", default="first")] = None,
    jobs: JobsOption = None,
    executor: Annotated[str | None, _grid_option(
        "--executor", metavar="local|dask", help="local (a process pool) or dask, as for dlexp sweep.",
        default="local")] = None,
    scheduler: Annotated[str | None, _grid_option(
        "--scheduler", metavar="tcp://HOST:PORT", help="With --executor dask: a running scheduler.",
        default="start a LocalCluster")] = None,
    runs_dir: Annotated[Path | None, _grid_option(
        "--runs-dir", metavar="DIR", help="The report folder goes to DIR/grad-report-<time>/.",
        default="runs")] = None,
    out: Annotated[Path | None, _grid_option(
        "--out", "-o", metavar="DIR", help="Write the report folder here instead (new or empty).")] = None,
    vanish_below: Annotated[float, typer.Option(
        rich_help_panel=VERDICTS, show_default="1e-3",
        help="Vanishing: gradient < this × the output layer's.")] = 1e-3,
    explode_above: Annotated[float, typer.Option(
        rich_help_panel=VERDICTS, show_default="1e3",
        help="Exploding: gradient > this × the output layer's.")] = 1e3,
    explode_norm_above: Annotated[float, typer.Option(
        help="Exploding too: a layer's mean gradient norm above this.")] = 1e4,
    saturated_above: Annotated[float, typer.Option(
        rich_help_panel=VERDICTS, show_default="50",
        help="Saturated: saturated % above this (sigmoid/tanh).")] = 50.0,
    dead_above: Annotated[float, typer.Option(
        rich_help_panel=VERDICTS, show_default="50", help="Dead: dead % above this.")] = 50.0,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", metavar="VERDICTS", rich_help_panel=VERDICTS,
        help="Exit 1 if any layer of any run gets one of these verdicts, e.g. vanishing,exploding.",
        show_default=False)] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", metavar="FILE", rich_help_panel=OUTPUT, show_default=False,
        help="Write the table shown as CSV, every column (grid: the matrix).")] = None,
    json_out: JsonOption = False,
    quiet: Annotated[bool, quiet_option("No tables; the diagnosis lines only.")] = False,
) -> None:
    from dlexp.report.gradients import Thresholds, parse_fail_on

    th = Thresholds(vanish_below=vanish_below, explode_above=explode_above, saturated_above=saturated_above,
                    dead_above=dead_above, explode_norm_above=explode_norm_above)
    failing = parse_fail_on(fail_on)
    grid = GridArgs(config, list(sets), activations, depths, inits, batchnorm, seeds, steps, jobs, runs_dir,
                    out, epoch, executor, scheduler)
    if (config is None) == (not run_dirs):
        raise DlexpError("grad-report: give RUN_DIR arguments or --config BASE.yaml for a grid (not both)")
    if config is None:
        given = grid.given()
        if given:
            raise DlexpError(f"grad-report: {', '.join(given)} only apply to a grid (--config BASE.yaml)")
        code = _report_runs(list(run_dirs or []), th, failing, csv_path, json_out, quiet)
    else:
        code = _report_grid(grid, th, failing, csv_path, json_out, quiet)
    raise typer.Exit(code)


@dataclass
class GridArgs:
    """The grid-mode options as given (None: not given)."""

    config: Path | None
    sets: list[str]
    activations: str | None
    depths: str | None
    inits: str | None
    batchnorm: str | None
    seeds: int | None
    steps: int | None
    jobs: int | None
    runs_dir: Path | None
    out: Path | None
    epoch: str | None
    executor: str | None = None
    scheduler: str | None = None

    def axes(self):
        from dlexp.report import grid as g

        return g.GridAxes(
            activations=g.split_list(self.activations or "sigmoid,tanh,relu,leaky_relu", "--activations"),
            depths=g.parse_depths(self.depths or "2,4,8,16"),
            inits=g.split_list(self.inits, "--inits") if self.inits is not None else None,
            batchnorm=g.parse_batchnorm(self.batchnorm) if self.batchnorm is not None else None,
            seeds=self.seeds or 3, steps=100 if self.steps is None else self.steps)

    def given(self) -> list[str]:
        names = [f"--{f.name.replace('_', '-')}" for f in fields(self) if f.name != "config"]
        values = [getattr(self, f.name) or None for f in fields(self) if f.name != "config"]
        return [name for name, value in zip(names, values) if value is not None]


def _report_runs(paths: list[Path], th, failing: list[str], csv_path: Path | None, json_out: bool,
                 quiet: bool) -> int:
    from dlexp.cli.report_tables import diagnosis_line, print_reports, thresholds_line
    from dlexp.cli.tables import prose
    from dlexp.report.gradients import fail_on_hits, report_run, reports_frame, thresholds_dict
    from dlexp.report.rundata import read_run
    from dlexp.rundir import json_safe

    runs = [read_run(path) for path in paths]  # every path checked before any output
    reports = [report_run(run, th, label) for run, label in zip(runs, _labels(runs))]
    console = human_console(json_out)
    hits = fail_on_hits(reports, failing)
    if csv_path is not None:
        _write_csv(reports_frame(reports), csv_path)
    if json_out:
        document = {"thresholds": thresholds_dict(th), "runs": [r.to_dict() for r in reports],
                    "fail_on": failing, "fail_on_hits": hits}
        sys.stdout.write(json.dumps(json_safe(document), indent=2) + "\n")
    if not quiet:
        print_reports(console, reports)
        prose(console, thresholds_line(th), style="dim")
    for report in reports:
        prose(console, diagnosis_line(report))
    if csv_path is not None:
        console.print(f"wrote {csv_path}", highlight=False, soft_wrap=True)
    for line in hits:
        sys.stderr.write(f"fail-on: {line}\n")
    return 1 if hits else 0


# -- grid mode --------------------------------------------------------------------------------


def _report_grid(args: GridArgs, th, failing: list[str], csv_path: Path | None, json_out: bool,
                 quiet: bool) -> int:
    from dlexp.cli.display import RunsProgress
    from dlexp.cli.report_tables import matrix_table, print_matrix
    from dlexp.cli.sweep import check_executor
    from dlexp.cli.tables import prose
    from dlexp.report import grid as g
    from dlexp.report.gradients import fail_on_hits
    from dlexp.rundir import json_safe
    from dlexp.sweep.runner import make_executor

    epoch = args.epoch or "first"
    if epoch not in ("first", "last"):
        raise DlexpError(f"--epoch {epoch!r}: accepted: first, last")
    check_executor(args.executor or "local", args.scheduler)
    plan = g.build_plan(args.config, args.sets, args.axes())
    if csv_path is not None and csv_path.parent and not csv_path.parent.exists():
        raise DlexpError(f"--csv {csv_path}: folder {csv_path.parent} does not exist")
    console = human_console(json_out)
    axes, n_runs = plan.axes, len(plan.points)
    with make_executor(args.executor or "local", args.scheduler, args.jobs, n_runs) as executor:
        folder = g.make_folder(args.runs_dir or Path("runs"), args.out)
        workers = executor.slots
        if not quiet:
            console.print(f"grad-report: {n_runs} runs ({len(plan.columns)} configurations × {len(axes.depths)} "
                          f"depths × {axes.seeds} seeds, {g.steps_text(axes.steps)}) on {workers} worker"
                          f"{'s' if workers > 1 else ''} into {folder}", highlight=False, soft_wrap=True,
                          markup=False)
        with RunsProgress(console, n_runs, workers, is_interactive(console, quiet)) as progress:
            results = g.run_plan(plan, folder, executor, on_result=progress.on_result)
    command = ["dlexp", *sys.argv[1:]]
    outcome = g.report_grid(plan, results, folder, th, command, epoch)
    if csv_path is not None:
        _write_csv(outcome.matrix, csv_path)
    hits = fail_on_hits(outcome.reports, failing)
    if json_out:
        document = g.grid_document(plan, outcome, th, command)
        document.update(fail_on=failing, fail_on_hits=hits, matrix_epoch=epoch)
        sys.stdout.write(json.dumps(json_safe(document), indent=2, default=str) + "\n")
    if not quiet:
        print_matrix(console, matrix_table(outcome.matrix, plan, th, epoch))
    for line in g.diagnosis(outcome, th, epoch):
        prose(console, line)
    console.print(f"report folder: {folder}", highlight=False, soft_wrap=True)
    for run in outcome.runs:
        if run["error"]:
            where = (f"{run['activation']}, depth {run['depth']}, {run['init']}, "
                     f"batchnorm {'on' if run['batchnorm'] else 'off'}, seed {run['seed']}")
            sys.stderr.write(f"failed: {where}: {terminal_line(run['error'])}\n")
    for line in hits:
        sys.stderr.write(f"fail-on: {line}\n")
    return 1 if hits else 0


# -- plot -------------------------------------------------------------------------------------


@app.command(examples=[
    ("Draw a run's figures into RUN_DIR/figures/:", "dlexp plot runs/iris-20260101-120000"),
    ("Two runs on one set of axes, legend by run name:", "dlexp plot runs/sgd-* runs/adam-* --overlay"),
    ("Every run of a sweep, overlaid, into one folder:", "dlexp plot runs/sweeps/lr-*/runs/* --overlay -o figs"),
])
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories to draw.", metavar="RUN_DIR...", show_default=False)],
    overlay: Annotated[bool, typer.Option(
        "--overlay", rich_help_panel=OUTPUT,
        help="Draw the runs' loss (and accuracy) curves on one set of axes, a colour per run, instead of "
             "each run's own figures.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", metavar="DIR", rich_help_panel=OUTPUT,
        show_default="RUN_DIR/figures/; with --overlay: figures/",
        help="Folder for the PNGs (each run's named <run folder>_*.png).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Loss and accuracy curves, gradient norm per layer over steps and a layer × step heatmap, as PNGs.

    Train is drawn wide and pale under the dashed validation curve, so both stay visible where they
    coincide; the test score, when the run has a test split, is a star at the last epoch.
    """
    from dlexp.report import figures
    from dlexp.report.rundata import read_run

    runs = [read_run(path) for path in run_dirs]  # every path checked before anything is drawn
    if out is not None and out.exists() and not out.is_dir():
        raise DlexpError(f"--out {out}: exists and is not a folder")
    console = human_console(json_out)
    written: dict[str, list[str]] = {}
    if overlay:
        files = figures.plot_overlay(runs, _labels(runs), out or Path("figures"))
        written["overlay"] = [str(f) for f in files]
    else:
        used: set[str] = set()
        for path, run in zip(run_dirs, runs):
            if out is None:
                folder, prefix = path / "figures", ""
            else:
                folder, prefix = out, path.name
                k = 1
                while prefix in used:
                    k += 1
                    prefix = f"{path.name}-{k}"
                used.add(prefix)
                prefix += "_"
            written[str(path)] = [str(f) for f in figures.plot_run(run, folder, run.name, prefix=prefix)]
    for files in written.values():
        for f in files:
            console.print(f"wrote {f}", highlight=False, soft_wrap=True, markup=False)
    if json_out:
        sys.stdout.write(json.dumps({"figures": written}, indent=2) + "\n")


# -- gradcheck --------------------------------------------------------------------------------


@app.command(examples=[
    ("Check every gradient of a config's model against finite differences:",
     "dlexp gradcheck configs/quickstart.yaml"),
    ("Probe every entry of a deep sigmoid network, on 4 rows:",
     "dlexp gradcheck configs/sigmoid_depth10.yaml --rows 4 --max-per-param 0"),
])
def gradcheck(
    config: ConfigArg,
    sets: SetOption = [],
    rows: Annotated[int, typer.Option(min=1, help="Training rows in the checked batch.")] = 8,
    max_per_param: Annotated[int, typer.Option(
        min=0, help="Probe at most this many random entries of each parameter; 0 probes all.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the probe choice and of dropout masks.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """The chain rule, verified: every backprop gradient against a float64 central difference.

    Builds the config's model in float64 and takes its first training rows as a batch; the
    config's L1/L2 terms are included. A parameter passes when max|g - n| / max(|g|, |n|)
    is at most 1e-6, or when the error is within the rounding noise of a central difference
    (10·ε·|L|/h): a vanishing gradient is too small for a relative check. Exit 1 on failure.
    """
    from dlexp.cli.report_tables import gradcheck_table
    from dlexp.cli.tables import print_table, prose
    from dlexp.report.config_gradcheck import notes, run_gradcheck
    from dlexp.rundir import json_safe

    result = run_gradcheck(config, list(sets), rows=rows, max_per_param=max_per_param or None, seed=seed)
    console = human_console(json_out)
    if json_out:
        sys.stdout.write(json.dumps(json_safe(result.to_dict()), indent=2) + "\n")
    print_table(console, gradcheck_table(result), optional=("max |grad|", "size"), rest="--json")
    for line in notes(result):
        prose(console, line)
    raise typer.Exit(0 if result.passed else 1)
