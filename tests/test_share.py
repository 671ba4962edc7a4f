"""Sharing runs: `dlexp.runs` DataFrames, and `dlexp report --html` (its numbers against the terminal's).

The browser test of the page is in test_report_browser.py; the exports in test_export.py.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from conftest import invoke

from dlexp import runs
from dlexp.errors import DlexpError


@pytest.fixture(scope="module")
def made(deep_runs) -> dict[str, Path]:
    return deep_runs


# -- dlexp.runs -------------------------------------------------------------------------------


def test_load_returns_config_summary_and_the_csvs_as_frames(made):
    run = runs.load(made["run"])
    assert run.status == "completed" and run.name == "deep"
    assert run.config["model"]["hidden"] == [8] * 6 and run.config["seed"] == 1
    assert run.summary["final"]["val_loss"] == run.metrics["val_loss"].iloc[-1]
    for frame, name in ((run.metrics, "metrics.csv"), (run.grad_norms, "grad_norms.csv"),
                        (run.layer_stats, "layer_stats.csv"), (run.timing, "timing.csv")):
        expected = pd.read_csv(made["run"] / name)
        assert list(frame.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(frame, expected, check_dtype=False, rtol=0, atol=0)
    assert list(run.metrics["epoch"]) == [0, 1, 2, 3]
    assert run.metrics["epoch"].dtype.kind == "i" and run.grad_norms["layer"].dtype.kind == "i"
    assert run.histograms is None  # this run logged none


def test_load_of_a_killed_run_drops_torn_lines_and_says_unknown(made):
    run = runs.load(made["killed"])
    assert run.status == "unknown" and run.summary == {}
    assert len(run.metrics) == 4 and 99 not in set(run.grad_norms["epoch"])


def test_load_reads_histograms_when_present(made, tmp_path):
    copy = tmp_path / "with-hist"
    shutil.copytree(made["run"], copy)
    (copy / "histograms.csv").write_text("step,epoch,layer,kind,bin_low,bin_high,count\n"
                                         "1,1,0,activation,-1.0,0.0,5\n1,1,0,activation,0.0,1.0,7\n")
    hist = runs.load(copy).histograms
    assert list(hist["count"]) == [5, 7] and list(hist["kind"]) == ["activation"] * 2
    assert runs.load_many(copy, "histograms")["bin_high"].tolist() == [0.0, 1.0]
    assert runs.load(copy).steps is None and list(runs.load_many(copy, "steps").columns) == ["run", "step", "epoch",
                                                                                              "lr", "loss"]
    (copy / "steps.csv").write_text("step,epoch,lr,loss\n1,1,0.001,0.69\n2,1,0.002,0.68\n")
    assert runs.load(copy).steps["lr"].tolist() == [0.001, 0.002]


def test_load_many_stacks_a_sweep_with_a_run_column(made):
    frame = runs.load_many(made["sweep"])
    folders = sorted(p.name for p in (made["sweep"] / "runs").iterdir())
    assert frame.columns[0] == "run" and sorted(set(frame["run"])) == folders
    assert len(frame) == 4 * 4  # 4 runs × epochs 0..3
    one = frame[frame["run"] == folders[0]].drop(columns="run").reset_index(drop=True)
    pd.testing.assert_frame_equal(one, runs.load(made["sweep"] / "runs" / folders[0]).metrics)
    by_glob = runs.load_many(str(made["sweep"] / "runs" / "deep-p0-*"), table="grad_norms")
    assert set(by_glob["run"]) == {f for f in folders if "-p0-" in f}
    both = runs.load_many([made["run"], made["sweep"]])
    assert both["run"].nunique() == 5


@pytest.mark.parametrize("bad", ["nowhere", "notarun"])
def test_load_refuses_what_is_not_a_run_in_one_line(tmp_path, bad):
    (tmp_path / "notarun").mkdir()
    with pytest.raises(DlexpError) as info:
        runs.load(tmp_path / bad)
    assert "\n" not in str(info.value) and str(tmp_path / bad) in str(info.value)
    with pytest.raises(DlexpError, match="table 'weights'"):
        runs.load_many(tmp_path, table="weights")


# -- the HTML report --------------------------------------------------------------------------


class Tables(HTMLParser):
    """Every <table> of a page as its caption and rows of cell texts; every <img> src."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[dict] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None
        self._caption = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "caption": "", "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = True
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "caption":
            self._caption = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._caption:
            self.tables[-1]["caption"] += data


def terminal_rows(text: str) -> list[list[str]]:
    """The rows of the box tables rich printed: cells between │ (or ┃ for headers)."""
    rows = []
    for line in text.splitlines():
        if line.startswith(("│", "┃")):
            rows.append([cell.strip() for cell in re.split("[│┃]", line)[1:-1]])
    return rows


def report(*args) -> str:
    code, out, err = invoke("report", *args)
    assert code == 0, err
    return out


def test_run_page_shows_the_terminal_verdict_table_and_diagnosis(made, tmp_path):
    out = tmp_path / "run.html"
    report(made["run"], "--html", out)
    page = out.read_text()
    parsed = Tables(page)
    verdicts = [t for t in parsed.tables if t["class"] == "verdicts"]
    assert len(verdicts) == 1
    code, terminal, _ = invoke("grad-report", made["run"])
    assert code == 0
    assert verdicts[0]["rows"] == terminal_rows(terminal)  # header and every cell, as printed
    diagnosis = next(line for line in terminal.splitlines() if line.startswith("deep: "))
    assert diagnosis.split(" Usually")[0] in page.replace("&#x27;", "'")
    assert "vanishing" in {row[-1] for row in verdicts[0]["rows"][1:]}
    # loss, accuracy, gradient lines and heatmap, all inline PNGs; nothing fetched from anywhere
    assert len(parsed.images) == 4 and all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "Resolved config" in page and "activation: sigmoid" in page
    layer_stats = next(t for t in parsed.tables if t["caption"].startswith("activations, epoch 3"))
    assert [row[0] for row in layer_stats["rows"][1:]] == ["0", "1", "2", "3", "4", "5", "6"]


@pytest.mark.slow
def test_sweep_page_shows_the_table_sweep_printed_and_collapses_runs(made, tmp_path):
    out = tmp_path / "sweep.html"
    report(made["sweep"], "--html", out)
    page = out.read_text()
    parsed = Tables(page)
    comparison = next(t for t in parsed.tables if t["class"] == "comparison")
    assert comparison["rows"] == terminal_rows(made["sweep_out"])
    assert page.count("<details class=\"run\"") == 4 and "<details class=\"run\" open" not in page
    overview = next(t for t in parsed.tables if t["class"] == "verdicts overview")
    assert len(overview["rows"]) == 1 + 4
    assert len(parsed.images) == 1 + 4 * 4  # overlaid curves, then each run's four figures


def test_runs_given_one_by_one_are_grouped_by_config(made):
    """Without sweep.json, runs differing only in seed form one point: the sweep's own statistics."""
    from rich.console import Console

    from dlexp.cli.sweep import sweep_table
    from dlexp.report.compare import group_runs
    from dlexp.report.rundata import read_run

    folders = sorted((made["sweep"] / "runs").iterdir())
    data = [read_run(folder) for folder in folders]
    comparison = group_runs(data, [d.name for d in data])
    assert [p["label"] for p in comparison.points] != [] and len(comparison.points) == 2
    console = Console(width=200, no_color=True, file=None, record=True)
    with console.capture() as capture:
        console.print(sweep_table(comparison))
    grouped = terminal_rows(capture.get())
    sweep_rows = terminal_rows(made["sweep_out"])
    header = grouped[0]
    assert header[:2] == ["#", "lr"] and header == sweep_rows[0][: len(header)]
    width = header.index("best epoch") + 1  # then wall time, which differs from run to run
    assert [row[1:width] for row in grouped[1:]] == [row[1:width] for row in sweep_rows[1:]]


def test_a_killed_or_running_run_is_reported_with_its_status(made, tmp_path):
    out = tmp_path / "killed.html"
    report(made["killed"], "--html", out)
    page = out.read_text()
    assert "status-unknown" in page and "No readable summary.json" in page
    from dlexp.report.html import _status_notes
    from dlexp.report.rundata import read_run

    running = tmp_path / "running"
    shutil.copytree(made["run"], running)
    summary = json.loads((running / "summary.json").read_text())
    (running / "summary.json").write_text(json.dumps(dict(summary, status="running")))
    assert "Still running" in " ".join(_status_notes(read_run(running), None))
    fresh = tmp_path / "fresh"  # started, nothing logged yet
    fresh.mkdir()
    shutil.copy(made["run"] / "config.yaml", fresh)
    (fresh / "metrics.csv").write_text("epoch,step,train_loss,val_loss,train_acc,val_acc,penalty,lr,"
                                       "grad_norm_total\n")
    report(fresh, "--html", out)
    assert "has not logged a step" in out.read_text()


def test_bad_arguments_fail_in_one_line_and_leave_the_old_page(made, tmp_path):
    out = tmp_path / "page.html"
    out.write_text("old")
    code, _, err = invoke("report", made["run"], tmp_path / "nope", "--html", out)
    assert code == 2 and err.count("\n") == 1 and "nope" in err
    assert out.read_text() == "old"
    code, _, err = invoke("report", made["run"], "--html", tmp_path / "missing" / "x.html")
    assert code == 2 and "does not exist" in err and not (tmp_path / "missing").exists()
    code, _, err = invoke("report", made["run"], "--html", tmp_path)
    assert code == 2 and "is a folder" in err
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary file left behind


def test_the_page_shows_whatever_metrics_the_run_logged(tmp_path):
    """A test split, and regression metrics: every logged metric has its rows and its curve."""
    from conftest import CONFIGS

    code, _, err = invoke("train", CONFIGS / "regression_sine.yaml", "--set", "training.epochs=2", "--set",
                          "data.test_fraction=0.2", "--runs-dir", tmp_path / "runs", "--quiet")
    assert code == 0, err
    run = next((tmp_path / "runs").iterdir())
    metrics = pd.read_csv(run / "metrics.csv")
    per_split = sorted({c.split("_", 1)[1] for c in metrics.columns if c.startswith("test_")})
    assert "loss" in per_split and len(per_split) > 1  # e.g. loss, mae, r2, rmse
    out = tmp_path / "page.html"
    report(run, "--html", out)
    page = out.read_text()
    table = next(t for t in Tables(page).tables if t["caption"].startswith(runs.load(run).name))
    shown = {row[0] for row in table["rows"][1:]}
    assert {f"test_{m}" for m in per_split} <= shown
    logged = dict.fromkeys(c.split("_", 1)[1] for c in metrics.columns if c.startswith(("train_", "val_", "test_")))
    assert re.findall(r'alt="[^"]*: ([^"]*) per epoch"', page) == ["loss"] + [m for m in logged if m != "loss"]
