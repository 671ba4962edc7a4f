"""Input bounds and small edges: files read only when regular and small enough, one terminal-safe error
line, a linear-time --check parser, the parameter cap from the data's real widths, the one atomic writer,
and --debug accepted after any command. One-line bad-input cases live in test_bad_input.py's corpus."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from test_report import make_run

from dlexp.cli.checks import parse_check
from dlexp.config import MAX_PARAMETERS, parameter_count
from dlexp.errors import (
    MAX_ERROR_CHARS,
    ConfigError,
    cut_middle,
    has_controls,
    read_user_file,
    show_value,
    terminal_line,
)
from dlexp.nn.model import MLP, save_npz_atomic
from dlexp.rundir import atomic_write, write_json_atomic, write_text_atomic

# --- the one error line -------------------------------------------------------------------------------


def test_terminal_line_escapes_every_control_and_invisible_character():
    raw = "a\x1b[2Jb\x00c\x07d\x7fe\x9bf\u202eg\u200bh\udcffi"
    line = terminal_line(raw)
    assert line == "a\\x1b[2Jb\\x00c\\x07d\\x7fe\\x9bf\\u202eg\\u200bh\\udcffi"
    assert not has_controls(line) and line.encode("utf-8")  # a lone surrogate would not even encode
    assert terminal_line("one\n  two\t\tthree\r\n") == "one two three"


def test_terminal_line_keeps_both_ends_of_a_long_line_within_the_limit():
    text = "data/x.csv: column " + "z" * 100_000 + " (accepted: a, b)"
    line = terminal_line(text)
    assert len(line) <= MAX_ERROR_CHARS
    assert line.startswith("data/x.csv: column zzz") and line.endswith("(accepted: a, b)")
    head, _, rest = line.partition(" ...[")
    tail = rest.partition("characters cut]... ")[2]
    assert f"...[{len(text) - len(head) - len(tail):,} characters cut]..." in line  # exactly what was left out
    assert cut_middle("short", 10) == "short"


def test_show_value_quotes_escapes_and_cuts():
    assert show_value("re\x1blu") == "'re\\x1blu'"
    assert show_value(3) == "3"
    long = show_value("x" * 1000, 40)
    assert len(long) == 40 and long.startswith("'xxx") and long.endswith("...'")


# --- files: regular, bounded, refused before being read ------------------------------------------------


def test_read_user_file_reads_up_to_the_cap_and_refuses_one_byte_more(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_bytes(b"x" * 100)
    assert read_user_file(path, "f.yaml", "a file", ConfigError, 100) == b"x" * 100
    with pytest.raises(ConfigError, match=r"^f.yaml: 100 bytes; a file may be at most 99 bytes$"):
        read_user_file(path, "f.yaml", "a file", ConfigError, 99)


def test_a_file_without_a_size_is_cut_at_the_cap_not_read_to_its_end():
    # /proc files report size 0; reading stops one byte past the cap instead of at the end
    with pytest.raises(ConfigError, match=r"more than 10 bytes; a file may be at most 10 bytes"):
        read_user_file(Path("/proc/self/status"), "status", "a file", ConfigError, 10)


def test_a_fifo_with_a_writer_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    reader_side = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets a writer open it
    writer = os.open(fifo, os.O_WRONLY)
    try:
        os.write(writer, b"a,b\n1,2\n")
        with pytest.raises(ConfigError, match=r"pipe.csv: is a FIFO \(named pipe\); expected a CSV file"):
            read_user_file(fifo, "pipe.csv", "a CSV file", ConfigError, 1000)
    finally:
        os.close(writer)
        os.close(reader_side)


# --- --check: linear time ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("val_acc>=0.9", ("val_acc", ">=", 0.9)),
    ("  best.val_loss  <  .5 ", ("best.val_loss", "<", 0.5)),
    ("epochs==+3e0", ("epochs", "==", 3.0)),
    ("grad_ratio!=-1.", ("grad_ratio", "!=", -1.0)),
    ("val_loss<=1E-3", ("val_loss", "<=", 0.001)),
    ("val_acc>1", ("val_acc", ">", 1.0)),
])
def test_check_grammar(text, expected):
    assert parse_check(text) == expected


@pytest.mark.parametrize("text", ["val_acc>>1", "val_acc>=1.2.3", "val_acc>=e5", "val_acc>=1e", ">=1",
                                  "val_acc 0.9", "val_acc>=0.9 x", "val_acc>=--1"])
def test_check_grammar_refuses(text):
    with pytest.raises(Exception, match="expected NAME OP NUMBER"):
        parse_check(text)


def test_check_parser_is_linear_on_long_inputs():
    # The old single regular expression took about 10 s on 16,000 digits followed by a wrong character
    # and grew with the square of the length: 200,000 would take over half an hour. Each shape below
    # is 200,000 characters; a linear parser takes milliseconds, so 2 s is a bound with a wide margin.
    n = 200_000
    shapes = ["val_acc>=" + "1" * n + "x", "val_acc>=1." + "1" * n + "e", "val_acc>=" + "1" * n,
              "a" * n + ">1", "val_acc>=" + " " * n + "x", "val_acc>=" + "1" * n + "e+" + "1" * n + "x"]
    started = time.perf_counter()
    for text in shapes:
        try:
            parse_check(text)
        except Exception as exc:
            assert len(str(exc)) < 1000  # the message does not echo the input
    assert time.perf_counter() - started < 2.0


# --- the parameter cap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes, batchnorm", [([3, 5, 2], False), ([3, 5, 7, 1], True), ([4, 1], True),
                                              ([10, 8, 8, 8, 3], False)])
def test_parameter_count_is_what_the_model_allocates(sizes, batchnorm):
    model = MLP(sizes[0], sizes[1:-1], sizes[-1], batchnorm=batchnorm, rng=np.random.default_rng(0))
    assert parameter_count(sizes, batchnorm) == model.n_params


def test_a_wide_csv_is_refused_before_its_columns_are_checked_or_encoded(cli, tmp_path, monkeypatch):
    from dlexp.data.csv_file import CsvFile

    def never(*args, **kwargs):
        raise AssertionError("a column was checked")

    monkeypatch.setattr(CsvFile, "column", never)
    n_columns = MAX_PARAMETERS // 1000 + 1  # with a hidden layer of 1000 units: just over the cap
    (tmp_path / "wide.csv").write_text(",".join(f"c{i}" for i in range(n_columns)) + ",y\n" + "0," * n_columns
                                       + "1\n")
    (tmp_path / "exp.yaml").write_text("data: {source: csv, path: wide.csv, target: y}\nmodel: {hidden: [1000]}\n")
    result = cli("validate", "exp.yaml", cwd=tmp_path)
    assert result.code == 2 and f"{n_columns:,} feature columns in wide.csv" in result.stderr, result.stderr


def test_many_classes_are_refused_before_the_data_is_generated(cli, tmp_path, monkeypatch):
    from dlexp.data import synthetic

    monkeypatch.setattr(synthetic, "make_synthetic", lambda *a, **k: pytest.fail("data was generated"))
    (tmp_path / "exp.yaml").write_text("data: {kind: blobs, n_classes: 1000}\nmodel: {hidden: [50000]}\n")
    result = cli("validate", "exp.yaml", cwd=tmp_path)
    assert result.code == 2 and "at least 50,151,000 parameters" in result.stderr, result.stderr
    assert "-> 1,000)" in result.stderr


# --- the atomic writer ---------------------------------------------------------------------------------


def test_atomic_write_replaces_a_symlink_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("precious\n")
    link = tmp_path / "out.csv"
    link.symlink_to(target)
    write_text_atomic(link, "new\n")
    assert target.read_text() == "precious\n"
    assert not link.is_symlink() and link.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "target.txt"]


@pytest.mark.parametrize("writer", [lambda p: write_text_atomic(p, "x"), lambda p: write_json_atomic(p, {"a": 1}),
                                    lambda p: save_npz_atomic(p, {"a": np.zeros(2)})])
def test_every_atomic_writer_refuses_a_folder_and_leaves_nothing(tmp_path, writer):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(Exception, match="out: is a directory; expected the name of a file to write"):
        writer(folder)
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and not any(folder.iterdir())


def test_an_error_while_writing_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as fh:
        fh.write("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_write_does_not_write_through_a_planted_temporary_name(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    for pid_guess in range(3):  # whatever name a previous writer used, a fresh one is created
        (tmp_path / f"out.txt.tmp{pid_guess}").symlink_to(victim)
    (tmp_path / "out.txt.tmp").symlink_to(victim)
    write_text_atomic(tmp_path / "out.txt", "new\n")
    assert victim.read_text() == "keep\n" and (tmp_path / "out.txt").read_text() == "new\n"


def test_grad_report_csv_replaces_a_symlink_and_refuses_a_folder(cli, tmp_path):
    run = make_run(tmp_path / "runs", "sig", "sigmoid", {0: [[0.1, 0.1]], 1: [[1.0, 1.0]]}, {})
    target = tmp_path / "target.txt"
    target.write_text("precious\n")
    (tmp_path / "link.csv").symlink_to(target)
    result = cli("grad-report", run, "--csv", "link.csv", "--quiet", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert target.read_text() == "precious\n" and "layer" in (tmp_path / "link.csv").read_text()
    assert not (tmp_path / "link.csv").is_symlink()
    (tmp_path / "folder.csv").mkdir()
    result = cli("grad-report", run, "--csv", "folder.csv", "--quiet", cwd=tmp_path)
    assert result.code == 2 and result.stderr == (
        "error: folder.csv: is a directory; expected the name of a file to write\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.csv", "link.csv", "runs", "target.txt"]


# --- --debug after the command -------------------------------------------------------------------------


def _commands() -> list[str]:
    import dlexp.cli  # noqa: F401  (registers every command)
    from dlexp.cli.app import app

    return sorted(typer.main.get_command(app).commands)


def test_every_command_is_covered():
    assert {"train", "validate", "init", "grad-report", "sweep", "compare-optimizers", "gallery", "plot",
            "gradcheck"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_debug_is_accepted_after_every_command(cli, tmp_path, command):
    result = cli(command, "--debug", "--no-such-option", cwd=tmp_path)
    assert result.code == 2 and "Traceback (most recent call last)" in result.stderr  # --debug took effect
    assert result.stderr.splitlines()[-1].startswith(f"error: dlexp {command}: No such option: --no-such-option")
    helped = cli(command, "--help", "--debug", cwd=tmp_path)
    assert helped.code == 0 and "Usage: dlexp" in helped.stdout, helped.stderr


def test_debug_after_the_config_shows_the_traceback_and_a_later_run_is_quiet_again(cli, tmp_path):
    (tmp_path / "exp.yaml").write_text("training: {epochs: 0}\n")
    result = cli("train", "exp.yaml", "--runs-dir", "runs", "--debug", cwd=tmp_path)
    assert result.code == 2 and "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: exp.yaml: training.epochs: must be >= 1 (got 0)"
    again = cli("train", "exp.yaml", "--runs-dir", "runs", cwd=tmp_path)
    assert again.stderr == "error: exp.yaml: training.epochs: must be >= 1 (got 0)\n"


def test_debug_after_a_double_dash_is_an_argument_not_the_flag(cli, tmp_path):
    result = cli("validate", "--", "--debug", cwd=tmp_path)
    assert result.code == 2 and result.stderr == "error: --debug: file not found\n"
