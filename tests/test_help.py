"""Help pages: 80 columns, examples that parse, the user's command order, global flags anywhere, a light start."""

import json
import shlex
import subprocess
import sys

import pytest
import typer.main
from conftest import REPO

from dlexp.cli import app
from dlexp.cli.app import split_global_flags
from dlexp.cli.help import COMMAND_ORDER, parse_examples, wrap


def _group():
    return typer.main.get_command(app)


def _commands():
    group = _group()
    return {name: group.commands[name] for name in group.commands}


def test_every_command_has_a_place_in_the_order_and_the_listing_follows_it(cli):
    assert set(_commands()) == set(COMMAND_ORDER), "name new commands in dlexp.cli.help.COMMAND_ORDER"
    listing = cli("--help").stdout.split("Commands:")[1].split("\n\n")[0]
    names = [line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line[2] != " "]
    assert names == COMMAND_ORDER


@pytest.mark.parametrize("command", ["", *COMMAND_ORDER])
def test_help_fits_80_columns_and_has_description_sections_and_examples(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(*([command] if command else []), "-h")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, too_long
    text = result.stdout
    assert text.startswith(f"Usage: dlexp {command}".replace("  ", " "))
    assert lines[2].strip(), "a description under the usage line"
    assert "Examples:" in text and text.count("    $ dlexp") >= 2
    for odd in ("<list[str]>", "<int range>", "<str>", "<path>", "x>=", "..."[:0] + "…"):
        assert odd not in text
    assert "-h, --help" in text


@pytest.mark.parametrize("command", COMMAND_ORDER)
def test_examples_parse_against_their_command(command):
    """Each example is a real command line: its options exist and its values convert."""
    group = _group()
    cmd = group.commands[command]
    examples = parse_examples(cmd.epilog)
    assert 2 <= len(examples) <= 3
    for _, line in examples:
        first = line.split(" && ")[0]
        args = shlex.split(first)[1:]
        assert args[0] == command
        args = split_global_flags(args)
        with cmd.make_context(command, args[1:], resilient_parsing=False):
            pass  # parsing raised if an option were unknown or a value did not convert


def test_defaults_render_whole_and_typed(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("compare-optimizers", "-h").stdout
    flat = " ".join(text.split())
    # a long default breaks only after a comma, never inside a name
    assert "sgd,momentum,nesterov,adam,adamw, adamax,adadelta,rmsprop,adagrad,nadam" in flat
    assert "--epochs INT" in text and "--target-loss FLOAT" in text and "CONFIG" in text
    assert "--lr OPT=VALUE" in text and "[repeatable; default: each optimizer's own default]" in flat
    gallery = " ".join(cli("gallery", "-h").stdout.split())
    assert "default: the cores available" in gallery and "default: 2" not in gallery


def test_wrap_never_breaks_a_word():
    assert wrap("aaa bbb ccc", 7) == ["aaa bbb", "ccc"]
    assert wrap("x a,b,c,d", 4) == ["x", "a,b,", "c,d"]
    assert wrap("unbreakable-long-word", 5) == ["unbreakable-long-word"]


def test_global_flags_before_or_after_the_command(cli, tiny_config, tmp_path):
    assert split_global_flags(["--json", "-q", "train", "x.yaml", "--debug"]) == ["train", "--json", "-q",
                                                                                    "x.yaml"]
    assert split_global_flags(["train", "--", "--debug"]) == ["train", "--", "--debug"]
    before = cli("--json", "--quiet", "train", tiny_config, "--runs-dir", tmp_path / "a")
    after = cli("train", tiny_config, "--runs-dir", tmp_path / "b", "--json", "--quiet", "--debug")
    assert before.code == after.code == 0, before.stderr + after.stderr
    assert json.loads(before.stdout)["final"] == json.loads(after.stdout)["final"]
    assert cli("--debug", "validate", tiny_config).code == 0
    assert cli("validate", tiny_config, "--ascii").code == 0


def test_version_and_bare_command(cli):
    assert cli("--version").stdout.startswith("dlexp ")
    bare = cli()
    assert bare.code == 2 and "Usage: dlexp" in bare.stderr


HEAVY = ("pandas", "matplotlib", "dask", "dlexp.report", "dlexp.gallery", "dlexp.sweep")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "-h"],
                                  ["validate", str(REPO / "configs" / "quickstart.yaml")]])
def test_fast_start_imports_nothing_heavy(args):
    code = ("import sys\nfrom dlexp.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=False)
    modules = proc.stderr.split("MODULES ", 1)[1].split()
    loaded = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not loaded, loaded
    if args[0] != "validate":  # help and version do not even import numpy (validate does: it checks the data)
        assert "numpy" not in modules
