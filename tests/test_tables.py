"""Every table at 60, 80 and 120 columns in a non-TTY console: no ellipsis, no cut number, nothing past the
width, and a narrower layout says how to see the rest."""

from __future__ import annotations

import importlib
import io
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from rich.console import Console
from test_report import make_run

from dlexp.cli.tables import mean_std, num
from dlexp.report.gradients import _power

WIDTHS = (60, 80, 120)
NUMBER = re.compile(r"^[-+]?(\d|\.\d)")


def numbers(text: str) -> list[str]:
    """Every number in the table cells of ``text``; each must parse whole."""
    found = []
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        for cell in line.strip("|").split("|"):
            for token in re.split(r"[\s/(),;:=–]+|±|\+/-", cell):
                token = token.strip("%[]")
                token = token.removeprefix("10^")
                if NUMBER.match(token):
                    float(token)  # a cut or folded number ("2.29e-", "1.0") raises or would not match
                    found.append(token)
    return found


def assert_readable(by_width: dict[int, str], same_data: bool = True) -> None:
    """``same_data``: the renderings show the same results (not three separate trainings)."""
    full = set(numbers(by_width[max(by_width)]))
    assert full, "the widest rendering shows numbers"
    for width, text in by_width.items():
        assert "…" not in text and "..." not in text, text
        too_long = [line for line in text.splitlines() if len(line) > width and line[:1] in "|+"]
        assert not too_long, (width, too_long)
        shown = set(numbers(text))
        assert shown <= full or not same_data, (width, shown - full)
        if shown != full and same_data:
            assert "--wide" in text, f"{width} columns hide numbers without saying how to see them"


def render(print_fn, width: int, **flags) -> str:
    cli_app = importlib.import_module("dlexp.cli.app")  # the module (dlexp.cli.app is also the Typer app)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, no_color=True)
    saved = dict(cli_app._state)
    cli_app._state.update(flags)
    try:
        print_fn(console)
    finally:
        cli_app._state.update(saved)
    return console.file.getvalue()


def cli_at(cli, monkeypatch, width: int, *args) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    result = cli(*args)
    assert result.code in (0, 1), result.stderr
    # rich pads a centred title, a caption and wrapped prose to the width; a log gets no trailing spaces
    padded = [line for line in result.stdout.splitlines() if line.endswith(" ")]
    assert not padded, padded
    return result.stdout


# -- the number forms --------------------------------------------------------------------------


def test_compact_numbers():
    assert [num(v) for v in (2.2937e-06, 0.52341, 12.345, 1234.5, 123456.0, 0.0, -0.0042, 7)] == [
        "2.29e-06", "0.523", "12.3", "1234", "1.23e+05", "0", "-0.0042", "7"]
    assert num(float("nan")) == num(None) == "—" and num(math.inf) == "inf"
    assert mean_std(0.52341, 0.01234) == "0.523 ±0.012" and mean_std(0.5, float("nan")) == "0.5"
    assert _power(-5.64) == "10^-5.6" and _power(-math.inf) == "0"
    assert all(len(num(10.0 ** k * 1.2345)) <= 9 for k in range(-30, 30))


# -- each command's tables -------------------------------------------------------------------------


@pytest.fixture
def report_runs(tmp_path) -> list[Path]:
    deep = {layer: [[10.0 ** -(6 - layer)] * 2, [10.0 ** -(6 - layer) * 1.2345] * 2] for layer in range(6)}
    return [make_run(tmp_path, name, activation, deep, {0: [(0.61, 0.0), (0.83, 0.0)]})
            for name, activation in (("sigmoid-deep", "sigmoid"), ("tanh-deep-long-run-name", "tanh"),
                                     ("relu-deep", "relu"))]


def test_grad_report_one_run_and_side_by_side(cli, monkeypatch, report_runs):
    assert_readable({w: cli_at(cli, monkeypatch, w, "grad-report", report_runs[0]) for w in WIDTHS})
    both = {w: cli_at(cli, monkeypatch, w, "grad-report", *report_runs) for w in WIDTHS}
    assert_readable(both)
    assert "relu-deep" in both[60] and "tanh-deep-long-run-name" in both[60]  # names never cut
    # --wide: every column whatever the width
    wide = cli_at(cli, monkeypatch, 60, "grad-report", report_runs[0], "--wide")
    assert "update ratio" in wide and "× output" in wide


def test_train_summary(cli, monkeypatch, tiny_config, tmp_path):
    assert_readable({w: cli_at(cli, monkeypatch, w, "train", tiny_config, "--runs-dir", tmp_path / str(w))
                     for w in WIDTHS}, same_data=False)  # wall times differ


def test_gradcheck(cli, monkeypatch, tiny_config):
    assert_readable({w: cli_at(cli, monkeypatch, w, "gradcheck", tiny_config, "--max-per-param", "5")
                     for w in WIDTHS})


@pytest.fixture(scope="module")
def optimizer_outcome(tmp_path_factory):
    """A real compare-optimizers outcome: 3 optimizers × 2 seeds on the tiny config."""
    from conftest import TINY

    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.grid import build_plan
    from dlexp.sweep.optimizers import optimizer_axis
    from dlexp.sweep.runner import LocalExecutor

    root = tmp_path_factory.mktemp("sweep")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    axis, notes = optimizer_axis("sgd,momentum,adam", ["sgd=0.05"], "torch")
    with LocalExecutor(1) as executor:
        plan = build_plan(config, [axis], sets=["training.epochs=2"], seeds=2, kind="compare-optimizers",
                          notes=notes)
        return run_sweep(plan, executor, root / "runs", target_loss=0.6)


def test_compare_optimizers_table(optimizer_outcome):
    from dlexp.cli.sweep import print_sweep, sweep_table

    texts = {w: render(lambda c: print_sweep(c, sweep_table(optimizer_outcome)), w) for w in WIDTHS}
    assert_readable(texts)
    for text in texts.values():
        assert all(name in text for name in ("sgd", "momentum", "adam"))  # the rows' names stay whole


def test_grid_matrix_with_every_axis(tmp_path):
    from dlexp.cli.report_tables import matrix_table, print_matrix
    from dlexp.report.gradients import Thresholds

    rows = []
    labels = [f"{a} {i} {bn}" for a in ("sigmoid", "tanh", "relu", "leaky_relu")
              for i in ("xavier_normal", "he_normal") for bn in ("no BN", "BN")]
    for depth in (2, 4, 8, 16):
        for label in labels:
            mean = -0.37 * depth * (1 + labels.index(label) / 10)
            rows.append({"column": label, "activation": label.split()[0], "depth": depth, "diverged": 0,
                         "log10_ratio_first_mean": mean, "log10_ratio_first_std": 0.123})
    plan = SimpleNamespace(axes=SimpleNamespace(seeds=3, steps=100, depths=[2, 4, 8, 16]))
    table = lambda: matrix_table(pd.DataFrame(rows), plan, Thresholds(), "first")
    texts = {w: render(lambda c: print_matrix(c, table()), w) for w in WIDTHS}
    assert_readable(texts)
    assert "he_normal" in texts[60] and "BN" in texts[60]


def test_gallery_table():
    from dlexp.cli.gallery import gallery_table
    from dlexp.cli.tables import print_table

    results = [(SimpleNamespace(id=k, title=f"claim number {k} says something about training"),
                SimpleNamespace(verdict="holds" if k % 3 else "partly holds", seconds=12.3456 * k,
                                key_number=f"first/last gradient ratio 10^-{k}.3 over 3 seeds",
                                direction_ok=True))
               for k in range(1, 13)]
    texts = {w: render(lambda c: print_table(c, gallery_table(results, True), optional=("s",)), w)
             for w in WIDTHS}
    assert_readable(texts)


def test_ascii_boxes_off_a_terminal_and_ascii_text_on_request(report_runs):
    from dlexp.cli.report_tables import full_table
    from dlexp.cli.tables import print_table
    from dlexp.report.gradients import Thresholds, report_run
    from dlexp.report.rundata import read_run

    report = report_run(read_run(report_runs[0]), Thresholds(), "sig")
    plain = render(lambda c: print_table(c, full_table(report)), 120)
    assert "│" not in plain and "─" not in plain and "|" in plain and "‖∇W‖" in plain
    asked = render(lambda c: print_table(c, full_table(report)), 120, ascii=True)
    assert asked.isascii() and "|dW| first" in asked


def test_lr_find_and_lr_tuning_tables(cli, monkeypatch, tiny_config, tmp_path):
    found = {w: cli_at(cli, monkeypatch, w, "lr-find", tiny_config, "--optimizers", "sgd,adam", "--steps", "20",
                       "--jobs", "1", "--runs-dir", tmp_path / f"find{w}") for w in WIDTHS}
    assert_readable(found, same_data=False)  # same lrs; the sweep folder's time stamp differs
    tuned = {w: cli_at(cli, monkeypatch, w, "compare-optimizers", tiny_config, "--tune-lr", "--optimizers",
                       "sgd,adam", "--lr-grid", "sgd=0.01:1:2", "--lr-grid", "adam=1e-4:1e-2:2", "--tune-seeds",
                       "2", "--seeds", "1", "--budget", "2", "--jobs", "1", "--runs-dir", tmp_path / f"tune{w}")
             for w in (60, 120)}
    assert_readable(tuned, same_data=False)  # wall times differ
    assert "lr tuning" in tuned[60] and "adam" in tuned[60]


def test_evaluate_tables(cli, monkeypatch, tmp_path):
    from conftest import REPO

    iris = REPO / "data" / "iris.csv"
    config = tmp_path / "iris.yaml"
    config.write_text(f"name: iris\nseed: 1\ndata: {{source: csv, path: {iris}, target: species}}\n"
                      "model: {hidden: [8], activation: tanh}\ntraining: {epochs: 3, batch_size: 16}\n")
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").code == 0
    (run,) = (tmp_path / "runs").iterdir()
    texts = {w: cli_at(cli, monkeypatch, w, "evaluate", run, iris) for w in WIDTHS}
    assert_readable(texts)
    assert all("versicolor" in text and "weighted avg" in text for text in texts.values())


def test_a_squeezed_table_breaks_cells_at_spaces_not_inside_words():
    """rich alone shrinks the widest columns below their longest word ('optimize|r', '(default|)');
    print_table gives that room back from columns that have some to spare."""
    from rich.table import Table

    from dlexp.cli.tables import print_table

    headers = ["#", "optimizer", "lr", "train loss", "val loss", "train acc", "val acc", "best epoch",
               "epochs to ≤0.3", "AUC val loss", "wall s", "diverged"]
    table = Table()
    for header in headers:
        table.add_column(header, justify="right")
    table.add_row("1", "adadelta", "1 (default)", "0.0824 ± 0.022", "0.183 ± 0.019", "0.978 ± 0.011",
                  "0.933 ± 0.017", "59", "36 ± 1 (3/3)", "35.9 ± 0.56", "1.85", "0")
    out = io.StringIO()
    print_table(Console(file=out, width=120, force_terminal=False), table)
    text = out.getvalue()
    assert "not shown" not in text  # the whole table fits at 120 columns
    for word in ("optimizer", "adadelta", "(default)", "diverged", "0.0824", "(3/3)"):
        assert word in text, word


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_mean_and_its_std_fold_into_two_lines_not_three(width):
    """The sign stays with the std: a narrow column shows the mean over '±std', never a lone '±'."""
    from rich.table import Table

    from dlexp.cli.tables import print_table

    table = Table()
    for header in ["#", "optimizer", "lr", "val loss", "val acc", "best epoch", "AUC val loss", "diverged"]:
        table.add_column(header, justify="right")
    for k, (loss, acc) in enumerate([((0.183, 0.019), (0.933, 0.017)), ((0.0123, 0.00456), (0.5, 0.1))]):
        table.add_row(str(k + 1), "adadelta", "1 (default)", mean_std(*loss), mean_std(*acc), "59",
                      mean_std(35.9, 0.56), "0")
    out = io.StringIO()
    print_table(Console(file=out, width=width, force_terminal=False), table, optional=["best epoch"])
    cells = [cell.strip() for line in out.getvalue().splitlines() for cell in line.split("|")]
    assert "±" not in cells and "+/-" not in cells
    for std in ("±0.019", "±0.017", "±0.0046", "±0.1", "±0.56"):
        assert std in cells or any(cell.endswith(std) for cell in cells), (std, out.getvalue())
    assert all(len(line) <= width for line in out.getvalue().splitlines())
