"""The tables of grad-report and gradcheck: one run's layers, runs side by side, the grid's matrix."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dlexp.cli.tables import _prepare, fits, header_text, num, print_table

VERDICT_STYLE = {"healthy": "green", "saturated": "yellow", "dead": "dark_orange", "vanishing": "bold red",
                 "exploding": "bold magenta"}
# Where a run's full table is too wide, these go first (the log10 column says what × output says).
OPTIONAL_COLUMNS = ("× output", "‖∇W‖ first", "update ratio", "dead %", "saturated %", "activation")
REST = "--csv FILE or --json"

# -- formatting -------------------------------------------------------------------------------


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
                      num(row.grad_norm_first_epoch), num(row.grad_norm_last_epoch),
                      num(row.ratio_to_output),
                      _fixed(row.log10_ratio), num(row.update_ratio), _saturated(row, 1),
                      _fixed(row.dead_pct, 1), _verdict(row.verdict))
    return table


def compact_table(report) -> Table:
    """The columns that tell runs apart, for runs side by side."""
    title = f"{report.label} — {report.status}\n{_describe_model(report.config)}"
    table = Table(title=title, title_justify="left")
    for name in ("layer", "log10 ×out", "upd ratio", "sat %", "dead %", "verdict"):
        table.add_column(name, justify="left" if name == "verdict" else "right")
    for row in report.layers.itertuples():
        table.add_row(str(row.layer), _fixed(row.log10_ratio), num(row.update_ratio, 2),
                      _saturated(row, 0), _fixed(row.dead_pct, 0), _verdict(row.verdict))
    return table


def print_reports(console: Console, reports: list) -> None:
    """Runs side by side (the columns that tell them apart) when they fit, else one full table each."""
    if len(reports) > 1:
        side = Table.grid(padding=(0, 2))
        for _ in reports:
            side.add_column(vertical="top")
        side.add_row(*[_prepare(console, compact_table(r)) for r in reports])
        if fits(console, side):
            print_table(console, side)
            return
    for report in reports:
        print_table(console, full_table(report), optional=OPTIONAL_COLUMNS, rest=REST)


def diagnosis_line(report) -> str:
    text = f"{report.label}: {report.diagnosis}"
    if report.fix:
        text += f" Usually fixed by: {report.fix}."
    return text


def thresholds_line(th) -> str:
    return (f"verdicts (last epoch): vanishing if ×out < {th.vanish_below:g}, exploding if ×out > "
            f"{th.explode_above:g} or ‖∂L/∂W‖ > {th.explode_norm_above:g}, dead if dead % > {th.dead_above:g}, "
            f"saturated if saturated % > "
            f"{th.saturated_above:g} (sigmoid/tanh)")


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


def print_matrix(console: Console, table: Table) -> None:
    """The grid's matrix: the chain-rule bound columns go first when it does not fit."""
    bounds = [header_text(c) for c in table.columns if header_text(c).startswith("bound ")]
    print_table(console, table, optional=bounds, rest="--csv FILE or --json")
