"""`dlexp grad-report`, `dlexp plot`, `dlexp gradcheck`: thin commands over dlexp.report."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from dlexp.cli.app import app, human_console, is_interactive
from dlexp.cli.display import RunsProgress
from dlexp.errors import DlexpError

VERDICT_STYLE = {"healthy": "green", "saturated": "yellow", "dead": "dark_orange", "vanishing": "bold red",
                 "exploding": "bold magenta"}
SIDE_BY_SIDE_WIDTH = 200  # columns allowed for runs side by side when the output is not a terminal

SetOption = Annotated[list[str], typer.Option(
    "--set", "-s", help="Override a config field: KEY=VALUE (YAML value), repeatable.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print the result as JSON on stdout; all else on stderr.")]

GRAD_REPORT_HELP = """Gradient health per layer, from run directories or from a grid of short trainings.

\b
With RUN_DIR ...: one table per run (side by side when they fit), a row per Dense
layer, input side first: activation, mean ‖∂L/∂W‖ over the first and the last
epoch, that norm relative to the output layer's (factor and log10), update ratio
‖ΔW‖/‖W‖, saturated % and dead %, and a verdict. Any run can be reported on again,
also one still running or killed (its partial last epoch counts).

\b
Verdict of a layer, first rule that holds (last epoch; thresholds overridable):
  exploding  its gradient > --explode-above (1e3) × the output layer's, or its
             gradient norm > --explode-norm-above (1e4), first or last epoch
  vanishing  its gradient < --vanish-below (1e-3) × the output layer's
  dead       dead % > --dead-above (50): units that output 0 for every sample
  saturated  saturated % > --saturated-above (50): f' < 5% of max f'
             (sigmoid and tanh only; for ReLU f' = 0 just means z <= 0)
  healthy    otherwise
A run's verdict is its worst layer's. 1e-3 means the layer learns a thousand
times slower than the output layer under SGD; healthy deep nets stay within 10^±1.

\b
With --config BASE.yaml: trains the grid activations × depths [× inits ×
batchnorm] × seeds (seed = base seed + k) and prints a depth × configuration
matrix of log10(first layer's gradient / output layer's), mean ± std over seeds,
beside the chain-rule bound log10(sup f'^depth) (sigmoid 0.25 per layer, tanh 1),
over the first epoch (--epoch first, the default: with --steps the initial
weights, which the bound speaks about) or the last (--epoch last).
--steps N trains exactly N full-batch steps (training.epochs=N,
training.batch_size=full, logging.grad_every=1, no early stopping), so the first
epoch is step 1 and the last is step N; --steps 0 keeps the config's own training.
Writes RUNS_DIR/grad-report-<time>/ (or --out): grad_report.csv (a row per
configuration, seed and layer), grad_matrix.csv, grid.json, heatmap.png,
grad_vs_layer.png, and the run directories under runs/.
"""


# -- formatting -------------------------------------------------------------------------------


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-inf" if value == -math.inf else "—"
    value = float(value)
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        return f"{value:.{digits}e}"
    return f"{value:.{digits + 1}g}" if abs(value) >= 1 else f"{value:.{digits + 1}f}"


def _fixed(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-inf" if value == -math.inf else "—"
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def _saturated(row, digits: int) -> Text:
    """Dim where saturation does not count: for ReLU-like units f' = 0 only means z <= 0."""
    from dlexp.report.gradients import SATURATING

    return Text(_fixed(row.saturated_pct, digits), style="" if row.activation in SATURATING else "dim")


def _verdict(text: str) -> Text:
    return Text(text, style=VERDICT_STYLE.get(text, ""))


def _describe_model(config: dict[str, Any]) -> str:
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    parts = []
    for key in ("activation", "init"):
        spec = model.get(key)
        if spec is not None:
            parts.append(str(spec.get("name")) if isinstance(spec, dict) else str(spec))
    hidden = model.get("hidden")
    if isinstance(hidden, list):
        parts.append(f"{len(hidden)} hidden")
    elif model.get("depth") is not None:
        parts.append(f"{model['depth']} hidden")
    parts.append("BatchNorm" if model.get("batchnorm") else "no BN")
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    optimizer = training.get("optimizer")
    if optimizer is not None:
        parts.append(str(optimizer.get("name")) if isinstance(optimizer, dict) else str(optimizer))
    return " · ".join(parts)


def _epochs(report) -> str:
    last = f"{report.last_epoch}{', partial' if report.last_epoch_partial else ''}"
    return f"epochs {report.first_epoch} (first) and {last} (last)"


def full_table(report) -> Table:
    """Every column of one run's report."""
    title = f"{report.label} — {report.status}\n{_describe_model(report.config)}; {_epochs(report)}"
    table = Table(title=title, title_justify="left")
    for name in ("layer", "activation", "‖∇W‖ first", "‖∇W‖ last", "× output", "log10", "update ratio",
                 "saturated %", "dead %", "verdict"):
        table.add_column(name, justify="left" if name in ("activation", "verdict") else "right")
    output = int(report.layers["layer"].max())
    for row in report.layers.itertuples():
        table.add_row(str(row.layer), f"{row.activation}{' (output)' if row.layer == output else ''}",
                      _num(row.grad_norm_first_epoch), _num(row.grad_norm_last_epoch),
                      _num(row.ratio_to_output),
                      _fixed(row.log10_ratio), _num(row.update_ratio), _saturated(row, 1),
                      _fixed(row.dead_pct, 1), _verdict(row.verdict))
    return table


def compact_table(report) -> Table:
    """The columns that tell runs apart, for runs side by side."""
    title = f"{report.label} — {report.status}\n{_describe_model(report.config)}"
    table = Table(title=title, title_justify="left")
    for name in ("layer", "log10 ×out", "upd ratio", "sat %", "dead %", "verdict"):
        table.add_column(name, justify="left" if name == "verdict" else "right")
    for row in report.layers.itertuples():
        table.add_row(str(row.layer), _fixed(row.log10_ratio), _num(row.update_ratio, 1),
                      _saturated(row, 0), _fixed(row.dead_pct, 0), _verdict(row.verdict))
    return table


def _width(console: Console, renderable) -> int:
    return Measurement.get(console, console.options.update_width(10_000), renderable).maximum


def print_fitted(console: Console, renderable) -> None:
    """On a terminal rich fits to the window; in a file or pipe the renderable gets the width it needs."""
    if not console.is_terminal:
        console.width = max(console.width, _width(console, renderable))
    console.print(renderable)


def print_reports(console: Console, reports: list) -> None:
    if len(reports) > 1:
        side = Table.grid(padding=(0, 2))
        for _ in reports:
            side.add_column(vertical="top")
        side.add_row(*[compact_table(r) for r in reports])
        budget = console.width if console.is_terminal else max(console.width, SIDE_BY_SIDE_WIDTH)
        if _width(console, side) <= budget:
            print_fitted(console, side)
            return
    for report in reports:
        print_fitted(console, full_table(report))


def diagnosis_line(report) -> str:
    text = f"{report.label}: {report.diagnosis}"
    if report.fix:
        text += f" Usually fixed by: {report.fix}."
    return text


def thresholds_line(th) -> str:
    return (f"verdicts (last epoch): vanishing if ×out < {th.vanish_below:g}, exploding if ×out > "
            f"{th.explode_above:g} or ‖∂L/∂W‖ > {th.explode_norm_above:g}, dead if dead % > {th.dead_above:g}, saturated if saturated % > "
            f"{th.saturated_above:g} (sigmoid/tanh)")


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


def _grid_option(*names: str, help: str, **kwargs) -> Any:
    """A grid-only option: None unless given, so run-directory mode can refuse it."""
    return typer.Option(*names, help=f"Grid: {help}", show_default=False, **kwargs)


@app.command("grad-report", help=GRAD_REPORT_HELP)
def grad_report_command(
    run_dirs: Annotated[list[Path] | None, typer.Argument(
        help="Run directories to report on.", metavar="[RUN_DIR]...", show_default=False)] = None,
    config: Annotated[Path | None, _grid_option("--config", help="the base config YAML.")] = None,
    sets: SetOption = [],
    activations: Annotated[str | None, _grid_option(
        "--activations", help="comma-separated activations [default: sigmoid,tanh,relu,leaky_relu].")] = None,
    depths: Annotated[str | None, _grid_option(
        "--depths", help="comma-separated hidden-layer counts [default: 2,4,8,16].")] = None,
    inits: Annotated[str | None, _grid_option(
        "--inits", help="comma-separated initializers [default: the config's].")] = None,
    batchnorm: Annotated[str | None, _grid_option(
        "--batchnorm", help="off, on or off,on [default: the config's].")] = None,
    seeds: Annotated[int | None, _grid_option(
        "--seeds", min=1, help="seeds per point, base seed + k [default: 3].")] = None,
    steps: Annotated[int | None, _grid_option(
        "--steps", min=0,
        help="full-batch steps per run; 0 keeps the config's training [default: 100].")] = None,
    jobs: Annotated[int | None, _grid_option(
        "--jobs", "-j", min=1, help="parallel runs [default: the cores available].")] = None,
    runs_dir: Annotated[Path | None, _grid_option(
        "--runs-dir", help="the report folder goes to RUNS_DIR/grad-report-<time>/ [default: runs].")] = None,
    out: Annotated[Path | None, _grid_option(
        "--out", help="write the report folder here instead (new or empty).")] = None,
    epoch: Annotated[str | None, _grid_option(
        "--epoch", help="the matrix and heatmap show the ratio over the 'first' epoch (with --steps: the "
                        "initial weights) or the 'last' [default: first].")] = None,
    vanish_below: Annotated[float, typer.Option(
        help="Vanishing: gradient < this × the output layer's.")] = 1e-3,
    explode_above: Annotated[float, typer.Option(
        help="Exploding: gradient > this × the output layer's.")] = 1e3,
    explode_norm_above: Annotated[float, typer.Option(
        help="Exploding too: a layer's mean gradient norm above this.")] = 1e4,
    saturated_above: Annotated[float, typer.Option(
        help="Saturated: saturated % above this (sigmoid/tanh).")] = 50.0,
    dead_above: Annotated[float, typer.Option(help="Dead: dead % above this.")] = 50.0,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write the table shown as CSV (grid: the matrix).", show_default=False)] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on",
        help="Exit 1 if any layer of any run gets one of these verdicts, e.g. vanishing,exploding.",
        show_default=False)] = None,
    json_out: JsonOption = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No tables; the diagnosis lines only.")] = False,
) -> None:
    from dlexp.report.gradients import Thresholds, parse_fail_on

    th = Thresholds(vanish_below=vanish_below, explode_above=explode_above, saturated_above=saturated_above,
                    dead_above=dead_above, explode_norm_above=explode_norm_above)
    failing = parse_fail_on(fail_on)
    grid = GridArgs(config, list(sets), activations, depths, inits, batchnorm, seeds, steps, jobs, runs_dir,
                    out, epoch)
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
        console.print(thresholds_line(th), highlight=False, soft_wrap=True, style="dim")
    for report in reports:
        console.print(diagnosis_line(report), highlight=False, soft_wrap=True)
    if csv_path is not None:
        console.print(f"wrote {csv_path}", highlight=False, soft_wrap=True)
    for line in hits:
        sys.stderr.write(f"fail-on: {line}\n")
    return 1 if hits else 0


# -- grid mode --------------------------------------------------------------------------------


def _default_jobs() -> int:
    from dlexp.sweep.runner import default_jobs

    return default_jobs()


def _report_grid(args: GridArgs, th, failing: list[str], csv_path: Path | None, json_out: bool,
                 quiet: bool) -> int:
    from dlexp.report import grid as g
    from dlexp.report.gradients import fail_on_hits
    from dlexp.rundir import json_safe

    epoch = args.epoch or "first"
    if epoch not in ("first", "last"):
        raise DlexpError(f"--epoch {epoch!r}: accepted: first, last")
    plan = g.build_plan(args.config, args.sets, args.axes())
    g.check_data(plan)
    if csv_path is not None and csv_path.parent and not csv_path.parent.exists():
        raise DlexpError(f"--csv {csv_path}: folder {csv_path.parent} does not exist")
    folder = g.make_folder(args.runs_dir or Path("runs"), args.out)
    console = human_console(json_out)
    axes, n_runs = plan.axes, len(plan.points)
    workers = max(1, min(args.jobs or _default_jobs(), n_runs))
    if not quiet:
        console.print(f"grad-report: {n_runs} runs ({len(plan.columns)} configurations × {len(axes.depths)} "
                      f"depths × {axes.seeds} seeds, {g.steps_text(axes.steps)}) on {workers} worker"
                      f"{'s' if workers > 1 else ''} into {folder}", highlight=False, soft_wrap=True)
    with RunsProgress(console, n_runs, workers, is_interactive(console, quiet)) as progress:
        results = g.run_plan(plan, folder, workers, on_result=progress.on_result)
    outcome = g.collect(plan, results, folder, th)
    command = ["dlexp", *sys.argv[1:]]
    g.write_outcome(plan, outcome, th, command)
    g.write_figures(plan, outcome, th, epoch)
    if csv_path is not None:
        _write_csv(outcome.matrix, csv_path)
    hits = fail_on_hits(outcome.reports, failing)
    if json_out:
        document = g.grid_document(plan, outcome, th, command)
        document.update(fail_on=failing, fail_on_hits=hits, matrix_epoch=epoch)
        sys.stdout.write(json.dumps(json_safe(document), indent=2, default=str) + "\n")
    if not quiet:
        print_fitted(console, matrix_table(outcome.matrix, plan, th, epoch))
    for line in g.diagnosis(outcome, th, epoch):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"report folder: {folder}", highlight=False, soft_wrap=True)
    for run in outcome.runs:
        if run["error"]:
            where = (f"{run['activation']}, depth {run['depth']}, {run['init']}, "
                     f"batchnorm {'on' if run['batchnorm'] else 'off'}, seed {run['seed']}")
            sys.stderr.write(f"failed: {where}: {' '.join(str(run['error']).split())}\n")
    for line in hits:
        sys.stderr.write(f"fail-on: {line}\n")
    return 1 if hits else 0


def _cell_style(value: float, th) -> str:
    if not math.isfinite(value):
        return "dim"
    low = math.log10(th.vanish_below)
    if value > math.log10(th.explode_above):
        return "bold magenta"
    if value < low:
        return "bold red"
    if value < 2 * low / 3:
        return "dark_orange"
    if value < low / 3:
        return "yellow"
    return "green"


def bound_groups(activations: list[str]) -> list[tuple[str, str]]:
    """Activations sharing sup f' share a bound column: [(header, representative activation)]."""
    from dlexp.report.gradients import max_derivative

    groups: dict[Any, list[str]] = {}
    for activation in activations:
        groups.setdefault(max_derivative(activation), []).append(activation)
    return [("bound " + "/".join(names), names[0]) for names in groups.values()]


def matrix_table(matrix: pd.DataFrame, plan, th, epoch: str) -> Table:
    from dlexp.report.gradients import bound_log10

    labels = list(dict.fromkeys(matrix["column"]))
    bounds = bound_groups(list(dict.fromkeys(matrix["activation"])))
    seeds = plan.axes.seeds
    low = math.log10(th.vanish_below)
    when = f"{epoch} epoch"
    if epoch == "first" and plan.axes.steps:
        when = "first epoch (step 1: the initial weights)"
    table = Table(
        title=f"log10(‖∂L/∂W‖ first layer / output layer), {when} — mean"
              f"{' ± std (ddof=1)' if seeds > 1 else ''} over {seeds} seed{'s' if seeds > 1 else ''}",
        caption=f"green ≥ {low / 3:.0f}, yellow ≥ {2 * low / 3:.0f}, orange ≥ {low:.0f}, red < {low:.0f} "
                f"(vanishing, --vanish-below {th.vanish_below:g}), magenta > "
                f"{math.log10(th.explode_above):.0f} (exploding). bound: log10 of (sup f')^depth — the "
                "chain rule's activation factor alone (sigmoid 0.25, tanh 1, ReLU 1 per layer); the weight "
                "matrices multiply in as well.",
        caption_justify="left")
    table.add_column("depth", justify="right")
    for label in labels:
        table.add_column(label, justify="right")
    for header, _ in bounds:
        table.add_column(header, justify="right", style="dim")
    for depth in plan.axes.depths:
        rows = matrix[matrix["depth"] == depth]
        cells: list[Any] = [str(depth)]
        for label in labels:
            row = rows[rows["column"] == label].iloc[0]
            mean, std = row[f"log10_ratio_{epoch}_mean"], row[f"log10_ratio_{epoch}_std"]
            if not math.isfinite(mean):
                cells.append(Text("no run", style="dim"))
                continue
            text = _fixed(mean, 1) + (f" ± {_fixed(std, 1)}" if math.isfinite(std) else "")
            if row["diverged"]:
                text += f" ({row['diverged']} div.)"
            cells.append(Text(text, style=_cell_style(mean, th)))
        for _, activation in bounds:
            cells.append(_fixed(bound_log10(activation, depth), 1))
        table.add_row(*cells)
    return table


# -- plot -------------------------------------------------------------------------------------


@app.command()
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories to draw.", metavar="RUN_DIR...", show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the PNGs, named <run folder>_*.png "
                                                "[default: RUN_DIR/figures/].", show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Loss curves, gradient norm per layer over steps (log scale) and a layer × step heatmap, as PNGs."""
    from dlexp.report import figures
    from dlexp.report.rundata import read_run

    runs = [read_run(path) for path in run_dirs]  # every path checked before anything is drawn
    if out is not None and out.exists() and not out.is_dir():
        raise DlexpError(f"--out {out}: exists and is not a folder")
    console = human_console(json_out)
    written: dict[str, list[str]] = {}
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
        files = figures.plot_run(run, folder, run.name, prefix=prefix)
        written[str(path)] = [str(f) for f in files]
        for f in files:
            console.print(f"wrote {f}", highlight=False, soft_wrap=True)
    if json_out:
        sys.stdout.write(json.dumps({"figures": written}, indent=2) + "\n")


# -- gradcheck --------------------------------------------------------------------------------


@app.command()
def gradcheck(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.", show_default=False)],
    sets: SetOption = [],
    rows: Annotated[int, typer.Option(min=1, help="Training rows in the checked batch.")] = 8,
    max_per_param: Annotated[int, typer.Option(
        min=0, help="Probe at most this many random entries of each parameter; 0 probes all.")] = 100,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the probe choice and of dropout masks.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """The chain rule, verified: every backprop gradient against a float64 central difference.

    \b
    Builds the config's model in float64 and takes its first training rows as a batch; the
    config's L1/L2 terms are included. A parameter passes when max|g - n| / max(|g|, |n|)
    is at most 1e-6, or when the error is within the rounding noise of a central difference
    (10·ε·|L|/h): a vanishing gradient is too small for a relative check. Exit 1 on failure.
    """
    from dlexp.report.chainrule import notes, run_gradcheck
    from dlexp.rundir import json_safe

    result = run_gradcheck(config, list(sets), rows=rows, max_per_param=max_per_param or None, seed=seed)
    console = human_console(json_out)
    if json_out:
        sys.stdout.write(json.dumps(json_safe(result.to_dict()), indent=2) + "\n")
    print_fitted(console, gradcheck_table(result))
    for line in notes(result):
        console.print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result.passed else 1)


def gradcheck_table(result) -> Table:
    table = Table(title=f"gradient check: {result.config}\n{result.model}, {result.rows} rows",
                  title_justify="left")
    columns = ("layer", "param", "size", "probed", "max |grad|", "max abs error", "max rel error", "result")
    for name in columns:
        table.add_column(name, justify="left" if name in ("param", "result") else "right")
    style = {"pass": "green", "pass (noise-limited)": "green", "unresolved": "yellow", "fail": "bold red"}
    params = result.params
    for k, p in enumerate(params):
        last_of_layer = k == len(params) - 1 or params[k + 1].layer != p.layer
        table.add_row(str(p.layer), p.param, f"{p.size:,}", f"{p.probed:,}", f"{p.max_abs_grad:.2e}",
                      f"{p.max_abs_error:.2e}", f"{p.rel_error:.2e}", Text(p.status, style=style[p.status]),
                      end_section=last_of_layer)
    return table
