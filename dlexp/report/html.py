"""One self-contained HTML page for runs and sweeps: ``dlexp report ... --html OUT.html``.

The page needs nothing but a browser: no network, no script, figures embedded as base64 PNG, one
inline style sheet that keeps it readable from a phone to a wide screen. Every table is the
terminal's own table (the rich ``Table`` that ``grad-report``, ``train`` and ``sweep`` print),
converted cell by cell, so the page shows the same numbers and verdicts as the terminal. Figures
come from :mod:`dlexp.report.figures` and :mod:`dlexp.sweep.plot`, as ``dlexp plot`` draws them.

Sections of a run: status (diverged, interrupted, still running), final and best metrics, the
loss and other per-epoch curves, each layer's gradient norm over training, the layer × step
heatmap, the grad-report verdict table with its diagnosis, layer statistics, the resolved config.
Several runs or a sweep folder: the comparison table (mean ± std over seeds), the overlaid loss
curves, a verdict per run, and each run's section collapsed below.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from dlexp import __version__
from dlexp import rundir as rd
from dlexp.errors import ArgumentError, DlexpError
from dlexp.names import safe_name
from dlexp.report.gradients import RunReport, Thresholds, report_run
from dlexp.report.html_blocks import esc, img_tag, table_html
from dlexp.report.rundata import RunData, read_run

CSS = """
:root { color-scheme: light; --fg: #1b1f23; --muted: #5b636b; --line: #d0d7de; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 12px; max-width: 1100px; }
h1 { font-size: 1.5em; margin: .3em 0; } h2 { font-size: 1.25em; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-top: 1.3em; }
.muted, .caption { color: var(--muted); font-size: .9em; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; margin: .5em 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: .9em; }
caption { text-align: left; font-weight: 600; padding: .3em 0; white-space: pre-line; }
th, td { border: 1px solid var(--line); padding: .25em .5em; white-space: nowrap; }
th { background: var(--bg-soft); }
.right { text-align: right; } .left { text-align: left; } .center { text-align: center; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0; border: 1px solid var(--line); }
pre { background: var(--bg-soft); padding: .6em; overflow-x: auto; font-size: .85em; }
details { border: 1px solid var(--line); border-radius: 6px; padding: .3em .8em; margin: .8em 0; }
details > summary { cursor: pointer; font-weight: 600; }
.status { display: inline-block; padding: 0 .5em; border-radius: 1em; font-size: .85em; color: #fff;
          background: #57606a; }
.status-completed { background: #1a7f37; } .status-diverged { background: #cf222e; }
.status-interrupted { background: #9a6700; } .status-running { background: #0969da; }
.callout { border-left: 4px solid #9a6700; background: #fff8c5; padding: .4em .8em; margin: .6em 0; }
.callout.diverged { border-color: #cf222e; background: #ffebe9; }
.diagnosis { border-left: 4px solid var(--line); padding: .2em .8em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 0 1em; margin: .5em 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
"""


@dataclass
class Source:
    """One argument of ``dlexp report``: a run directory, or a sweep (or folder of runs) and its runs."""

    path: Path
    is_sweep: bool
    runs: list[RunData]


def read_sources(paths: list[Path]) -> list[Source]:
    """Read every argument before anything is drawn (DlexpError naming the first bad one)."""
    from dlexp.runs import find_runs

    sources = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise DlexpError(f"{path}: no such run directory or sweep folder")
        if rd.is_run_dir(path) or (path / rd.GRAD_NORMS).is_file():
            sources.append(Source(path, False, [read_run(path, require_steps=False)]))
        else:
            sources.append(Source(path, True, [read_run(p, require_steps=False) for p in find_runs(path)]))
    return sources


def write_report(paths: list[Path], html: Path, th: Thresholds = Thresholds()) -> Path:
    """Render ``paths`` and write the page to ``html`` atomically (a temporary name, then a rename)."""
    html = Path(html)
    if html.is_dir():
        raise ArgumentError("html", html, "is a folder; expected a file name such as report.html")
    if not html.parent.is_dir():
        raise ArgumentError("html", html, f"folder {html.parent} does not exist")
    page = render(read_sources(paths), th)
    rd.write_text_atomic(html, page)
    return html


def render(sources: list[Source], th: Thresholds = Thresholds(), figures_dir: Path | None = None,
           run_figures: bool = True) -> str:
    """The whole page as text. ``figures_dir``: also keep each figure there as a PNG named after it.
    ``run_figures=False``: the collapsed run sections of a comparison page carry tables only (for a
    page whose runs have pages of their own, as an MLflow sweep's children do)."""
    from dlexp.cli.report import _labels

    runs = [run for source in sources for run in source.runs]
    labels = _labels(runs)
    label_of = {id(run): label for run, label in zip(runs, labels)}
    reports = {id(run): report_run(run, th, label_of[id(run)]) for run in runs if _has_steps(run)}
    with tempfile.TemporaryDirectory(prefix="dlexp-report-") as tmp:
        figures = _Figures(Path(figures_dir or tmp))
        if len(sources) == 1 and not sources[0].is_sweep:
            run = runs[0]
            title = f"{label_of[id(run)]} — dlexp run report"
            body = [_heading(run, label_of[id(run)], "h1"),
                    _run_body(run, reports.get(id(run)), label_of[id(run)], th, figures)]
        else:
            title = "dlexp report: " + ", ".join(source.path.name for source in sources)
            body = [f"<h1>{esc(title)}</h1>"]
            loose = [run for source in sources if not source.is_sweep for run in source.runs]
            groups = [(source.path, source.runs) for source in sources if source.is_sweep]
            if len(loose) > 1:  # one run beside sweeps has nothing to be compared with
                groups.append((None, loose))
            for folder, members in groups:
                body.append(_comparison_section(folder, members, [label_of[id(r)] for r in members], figures))
            body.append(_verdict_overview(runs, reports, label_of))
            body.append(f"<p class=\"muted\">{esc(_thresholds_line(th))}</p>")
            body.append("<h2>Runs</h2>")
            for run in runs:
                label = label_of[id(run)]
                body.append(f"<details class=\"run\" id=\"{_anchor(run)}\"><summary>{esc(label)} "
                            f"{_status_badge(run.status)} <span class=\"muted\">{esc(str(run.path))}"
                            f"</span></summary>"
                            f"{_run_body(run, reports.get(id(run)), label, th, figures if run_figures else None)}"
                            "</details>")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    body.append(f"<footer class=\"muted\"><hr>Written by dlexp {__version__} on {esc(stamp)} from "
                f"{esc(', '.join(str(s.path) for s in sources))}. Self-contained: no network, no script."
                "</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<meta name=\"generator\" content=\"dlexp {__version__}\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# -- one run ----------------------------------------------------------------------------------


def _heading(run: RunData, label: str, tag: str) -> str:
    return f"<{tag}>{esc(label)} {_status_badge(run.status)}</{tag}>"


def _run_body(run: RunData, report: RunReport | None, label: str, th: Thresholds,
              figures: _Figures | None) -> str:
    """One run's section; ``figures=None``: tables only."""
    from dlexp.report import figures as fg

    parts = [_meta(run), *_status_notes(run, report)]
    parts.append("<h3>Metrics</h3>" + table_html(metrics_table(run)))
    if figures is not None:
        parts.append("<h3>Curves</h3>")
        parts.append(figures.draw(f"{label}: loss per epoch", lambda path: fg.plot_loss(run, path, label)))
        for metric in fg.epoch_metrics(run.metrics):
            parts.append(figures.draw(f"{label}: {metric} per epoch",
                                      lambda path, m=metric: fg.plot_metric(run, path, label, m)))
    parts.append("<h3>Gradients</h3>")
    if report is None:
        parts.append("<p class=\"callout\">No gradient rows in grad_norms.csv yet: the run has not logged a "
                     "step, so there are no gradient figures or verdicts.</p>")
    else:
        if figures is not None:
            parts.append(figures.draw(f"{label}: gradient norm of each layer over training",
                                      lambda path: fg.plot_grad_lines(run, path, label)))
            parts.append(figures.draw(f"{label}: log10 gradient norm, layer × step",
                                      lambda path: fg.plot_grad_heatmap(run, path, label)))
        parts.append("<h3>Gradient health per layer (grad-report)</h3>")
        parts.append(verdict_section(report, th))
    if len(run.layers):
        parts.append("<h3>Layer statistics</h3>" + table_html(layer_stats_table(run)))
    config = run.path / rd.CONFIG
    if config.is_file():
        text = config.read_text(encoding="utf-8", errors="replace")
        parts.append(f"<details><summary>Resolved config ({rd.CONFIG})</summary><pre>{esc(text)}</pre>"
                     "</details>")
    return "\n".join(parts)


def verdict_section(report: RunReport, th: Thresholds) -> str:
    """grad-report's full table for one run, its thresholds and its diagnosis in words."""
    from dlexp.cli.report_tables import diagnosis_line, full_table

    table = table_html(full_table(report), css_class="verdicts")
    return (f"{table}<p class=\"muted\">{esc(_thresholds_line(th))}</p>"
            f"<p class=\"diagnosis verdict-{esc(report.verdict)}\">{esc(diagnosis_line(report))}</p>")


def _thresholds_line(th: Thresholds) -> str:
    from dlexp.cli.report_tables import thresholds_line

    return thresholds_line(th)


def metrics_table(run: RunData) -> Table:
    """The table ``dlexp train`` ends with, plus any metric it does not list (test split included)."""
    from dlexp.cli.display import GradCollector, summary_tables
    from dlexp.cli.tables import num as fmt
    from dlexp.report.compare import final_metrics

    summary = dict(run.summary)
    summary.setdefault("name", run.name)
    summary["status"] = run.status
    summary["final"] = final_metrics(run)
    table = summary_tables(summary, GradCollector())[0]
    shown = {Text.from_markup(c).plain if isinstance(c, str) else str(c) for c in table.columns[0].cells}
    best = summary.get("best") or {}
    extra = {k: v for k, v in summary["final"].items() if k not in shown and k not in ("epoch", "step")}
    test = summary.get("test")
    if isinstance(test, dict):
        extra.update({k: v for k, v in test.items() if k not in shown})
    for key, value in extra.items():
        table.add_row(key, fmt(value), fmt(best.get(key)) if key in best else "")
    return table


def layer_stats_table(run: RunData) -> Table:
    """Each layer's activation statistics over the last logged epoch (means over its logged steps)."""
    from dlexp.cli.report_tables import _fixed
    from dlexp.cli.tables import num as _num

    stats = run.layers
    last = int(stats["epoch"].max())
    rows = stats[stats["epoch"] == last].groupby("layer")
    w = run.grads[(run.grads["param"] == "W") & (run.grads["epoch"] == last)].groupby("layer")
    param_norm = w["param_norm"].mean() if len(run.grads) else {}
    table = Table(title=f"activations, epoch {last} (mean over its logged steps)", title_justify="left")
    for name in ("layer", "activation", "mean", "std", "saturated %", "dead %", "‖W‖"):
        table.add_column(name, justify="left" if name == "activation" else "right")
    for layer, frame in rows:
        table.add_row(str(layer), str(frame["activation"].iloc[-1]), _num(frame["act_mean"].mean()),
                      _num(frame["act_std"].mean()), _fixed(frame["saturated_fraction"].mean() * 100, 1),
                      _fixed(frame["dead_fraction"].mean() * 100, 1), _num(param_norm.get(layer)))
    return table


def _meta(run: RunData) -> str:
    s = run.summary
    items = [("run directory", str(run.path)), ("data", s.get("data")), ("task", s.get("task")),
             ("loss", s.get("loss")), ("optimizer", s.get("optimizer")), ("lr", s.get("lr")),
             ("parameters", s.get("n_params")), ("epochs / steps", _pair(s.get("epochs"), s.get("steps"))),
             ("seed", run.config.get("seed")), ("wall time (s)", s.get("wall_s")),
             ("versions", ", ".join(f"{k} {v}" for k, v in (s.get("versions") or {}).items()) or None)]
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>" for k, v in items if v not in (None, ""))
    return f"<dl class=\"meta\">{rows}</dl>"


def _pair(a: Any, b: Any) -> str | None:
    return None if a is None and b is None else f"{a} / {b}"


def _status_notes(run: RunData, report: RunReport | None) -> list[str]:
    notes = []
    last_epoch = int(run.metrics["epoch"].max()) if len(run.metrics) else None
    if run.status == "diverged":
        d = run.summary.get("divergence") or {}
        where = f" at step {d.get('step')} (epoch {d.get('epoch')})" if d else ""
        layer = f", first non-finite parameter {d['layer']}" if d.get("layer") else ""
        reason = f": {d['reason']}" if d.get("reason") else ""
        notes.append(f"<p class=\"callout diverged\">Diverged{esc(where + layer + reason)}. "
                     "The curves stop where the numbers stopped being finite.</p>")
    elif run.status == "interrupted":
        notes.append(f"<p class=\"callout\">Interrupted after epoch {last_epoch}; "
                     f"<code>dlexp train --resume {esc(str(run.path))}</code> continues it.</p>")
    elif run.status == "running":
        notes.append("<p class=\"callout\">Still running (or killed without a chance to say so): this page "
                     "shows what was on disk when it was written.</p>")
    elif run.status == "unknown":
        notes.append("<p class=\"callout\">No readable summary.json: the run was probably killed before its "
                     "first epoch ended; the numbers are what its CSV files hold.</p>")
    if report is not None and report.last_epoch_partial:
        notes.append(f"<p class=\"muted\">Gradient verdicts include the partial epoch {report.last_epoch}.</p>")
    return notes


def _has_steps(run: RunData) -> bool:
    return bool((run.grads["param"] == "W").any())


# -- several runs -----------------------------------------------------------------------------


def _comparison_section(folder: Path | None, runs: list[RunData], labels: list[str], figures: _Figures) -> str:
    from dlexp.cli.sweep import sweep_table
    from dlexp.report.compare import group_runs, read_sweep, strip_stamp
    from dlexp.sweep.plot import plot_loss_curves

    comparison = read_sweep(folder, runs) if folder is not None else None
    if comparison is None:
        kind = "sweep" if folder is not None and (folder / "runs").is_dir() else "runs"
        comparison = group_runs(runs, labels, kind=kind, name=strip_stamp(folder.name) if folder else "")
    heading = f"Comparison: {folder}" if folder is not None else "Comparison of the runs given"
    parts = [f"<h2>{esc(heading)}</h2>", table_html(sweep_table(comparison), css_class="comparison")]
    source = ("the sweep's own result (sweep.json), as `dlexp sweep` printed it" if comparison.source == "sweep.json"
              else "runs grouped by config (runs whose configs differ only in seed and name form one row)")
    parts.append(f"<p class=\"muted\">From {esc(source)}.</p>")
    if comparison.not_averaged:
        parts.append(f"<p class=\"callout\">{comparison.not_averaged} run(s) still running or of unknown "
                     "status: not averaged (statistics are over completed runs).</p>")
    point_labels = list(comparison.curves)
    histories = [[h for h in comparison.curves[label] if h] for label in point_labels]
    if any(histories):
        title = f"{comparison.plan.name}: loss per epoch, every run on disk"
        parts.append(figures.draw(title, lambda path: plot_loss_curves(path, point_labels, histories, title)))
    return "\n".join(parts)


def _verdict_overview(runs: list[RunData], reports: dict[int, RunReport], label_of: dict[int, str]) -> str:
    from dlexp.cli.tables import num as fmt
    from dlexp.report.compare import final_metrics

    table = Table(title="gradient verdict of each run (its worst layer; details in its section)",
                  title_justify="left")
    for name in ("run", "status", "val loss", "verdict", "diagnosis"):
        table.add_column(name, justify="right" if name == "val loss" else "left")
    for run in runs:
        report = reports.get(id(run))
        final = final_metrics(run)
        verdict = Text(report.verdict if report else "—")
        if report is not None:
            from dlexp.cli.report_tables import VERDICT_STYLE

            verdict.stylize(VERDICT_STYLE.get(report.verdict, ""))
        table.add_row(label_of[id(run)], run.status, fmt(final.get("val_loss")), verdict,
                      report.diagnosis if report else "no gradient rows yet")
    return "<h2>Verdicts</h2>" + table_html(table, css_class="verdicts overview", wrap_last=True)


# -- building blocks --------------------------------------------------------------------------


class _Figures:
    """Draws figures into a temporary folder and returns each as an embedded ``<img>``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0

    def draw(self, alt: str, draw: Callable[[Path], Any]) -> str:
        """``draw(path)`` writes a PNG to ``path``, named after ``alt``."""
        self.count += 1
        stem = safe_name(alt, limit=80, default="figure")
        path = self.folder / f"{stem}.png"
        if path.exists():
            path = self.folder / f"{stem}-{self.count}.png"
        draw(path)
        return img_tag(path.read_bytes(), alt)


def _status_badge(status: str) -> str:
    return f"<span class=\"status status-{esc(status)}\">{esc(status)}</span>"


def _anchor(run: RunData) -> str:
    return "run-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in run.path.name)
