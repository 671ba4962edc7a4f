"""`dlexp train`, `dlexp validate`, `dlexp init`: thin commands over dlexp.experiment."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dlexp.cli.app import app, fail, human_console, is_interactive, stdout_console
from dlexp.cli.checks import evaluate_checks
from dlexp.cli.options import (
    CHECKS,
    DEFAULT_RUNS_DIR,
    INPUT,
    OUTPUT,
    ConfigArg,
    JsonOption,
    RunsDirOption,
    SetOption,
    quiet_option,
)
from dlexp.errors import ConfigError, has_controls, show_value


def load_with_cli(config: Path, sets: list[str], seed: int | None, name: str | None):
    from dlexp.config import NAME_PATTERN, load_config

    overrides = list(sets or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    if name is not None:
        if not NAME_PATTERN.match(name):
            raise ConfigError(f"--name {show_value(name)}: must be 1-100 characters of letters, digits, '.', '_' or '-', "
                              "not starting with '.' or '-' (it names a folder inside --runs-dir)")
        overrides.append(f"name={json.dumps(name)}")
    return load_config(config, overrides)


def print_notes(notes: list[str]) -> None:
    """One-line notices about the data (e.g. an index column left out), on stderr."""
    for note in notes:
        sys.stderr.write(f"note: {' '.join(note.split())}\n")


@app.command(examples=[
    ("Train the quickstart config; the run directory goes to runs/:", "dlexp train configs/quickstart.yaml"),
    ("Change fields without editing the file, and fail unless it learns:",
     "dlexp train configs/iris.yaml -s training.epochs=20 --check 'val_acc>=0.9'"),
    ("Continue a run that was interrupted:", "dlexp train --resume runs/iris-20260101-120000"),
])
def train(
    config: Annotated[Path | None, typer.Argument(help="Experiment YAML file.", metavar="CONFIG",
                                                  show_default=False)] = None,
    sets: SetOption = [],
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.", rich_help_panel=INPUT)] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN_DIR", rich_help_panel=INPUT,
        help="Continue the run in this directory from its last checkpoint (instead of CONFIG).")] = None,
    runs_dir: RunsDirOption = None,
    name: Annotated[str | None, typer.Option(
        rich_help_panel=OUTPUT, help="Run name.", show_default="the config's name or file stem")] = None,
    quiet: Annotated[bool, quiet_option("No progress output and no tables.")] = False,
    json_out: JsonOption = False,
    checks: Annotated[list[str], typer.Option(
        "--check", metavar="EXPR", rich_help_panel=CHECKS,
        help="Assert on the summary, e.g. 'val_acc>=0.9'; exit 1 if false.")] = [],
    allow_divergence: Annotated[bool, typer.Option(
        "--allow-divergence", rich_help_panel=CHECKS, help="Exit 0 even if the run diverges.")] = False,
) -> None:
    """Train the model a config describes and write a run directory.

    The run directory holds the resolved config, per-epoch and per-step CSV logs, a summary and
    checkpoints; every report command reads it.
    """
    from dlexp import experiment
    from dlexp.cli.display import GradCollector, TrainDisplay
    from dlexp.config import config_base_dir

    if (config is None) == (resume is None):
        fail("train: give a CONFIG file or --resume RUN_DIR (not both)")
    console = human_console(json_out)
    collector = GradCollector()
    if resume is not None:
        if sets or seed is not None or name is not None:
            fail("train --resume: --set, --seed and --name cannot change a run being resumed")
        evaluate_checks(checks, {})  # parse errors before any work
        display = TrainDisplay(console, 0, resume.name, False, True)
        result = experiment.resume(resume, callbacks=[collector], ignore_after_stop=True)
    else:
        cfg = load_with_cli(config, sets, seed, name)
        evaluate_checks(checks, {})
        prepared = experiment.prepare(cfg, config_base_dir(config), str(config))
        print_notes(prepared.dataset.notes)
        display = TrainDisplay(console, cfg.training.epochs, cfg.name, is_interactive(console, quiet), quiet)
        with display:
            result = experiment.run(cfg, base_dir=config_base_dir(config), runs_dir=runs_dir or DEFAULT_RUNS_DIR,
                                    shown=str(config), callbacks=[display, collector], prepared=prepared,
                                    ignore_after_stop=True)
    summary = result.summary
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if not quiet or not json_out:
        if not quiet:
            from dlexp.cli.display import summary_tables
            from dlexp.cli.tables import print_table

            for table in summary_tables(summary, collector):
                print_table(console, table)
        console.print(f"run directory: {result.run_dir}", highlight=False, soft_wrap=True)
    code = result.exit_code
    if result.status == "diverged":
        div = summary.get("divergence") or {}
        where = f", in {div['layer']}" if div.get("layer") else ""
        sys.stderr.write(f"diverged: {div.get('reason')} at step {div.get('step')} (epoch {div.get('epoch')}{where}); "
                         f"results so far are in {result.run_dir}\n")
        if allow_divergence:
            code = 0
    elif result.status == "interrupted":
        sys.stderr.write(f"interrupted: checkpoint saved; continue with `dlexp train --resume {result.run_dir}`\n")
    if code == 0 and checks:
        failures = evaluate_checks(checks, summary)
        if failures:
            for line in failures:
                sys.stderr.write(f"check failed: {line}\n")
            code = 1
    raise typer.Exit(code)


@app.command(examples=[
    ("Check a config and its data; print every field as it will be used:", "dlexp validate configs/iris.yaml"),
    ("Check an override before a long run:", "dlexp validate configs/iris.yaml -s model.depth=10"),
])
def validate(
    config: ConfigArg,
    sets: SetOption = [],
) -> None:
    """Check a config (and its data) and print the resolved config.

    Nothing is trained and nothing is written; exit 2 with one line naming the field if it is wrong.
    """
    import yaml

    from dlexp import experiment
    from dlexp.config import config_base_dir, resolved_dict

    cfg = load_with_cli(config, sets, None, None)
    p = experiment.prepare(cfg, config_base_dir(config), str(config))
    print_notes(p.dataset.notes)
    data = resolved_dict(p.cfg)
    console = stdout_console()
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    console.print(f"# ok: {p.dataset.description}; model {p.model!r}; loss {p.loss_name}", highlight=False,
                  soft_wrap=True)


@app.command(examples=[
    ("Write experiment.yaml with every key, its default and the values it accepts:", "dlexp init"),
    ("Start a new experiment under another name, then train it:",
     "dlexp init deep.yaml && dlexp train deep.yaml"),
])
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("experiment.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter config: every key at its default, with the values it accepts.

    Generated from the config schema, so it names every key the installed dlexp knows.
    """
    if has_controls(str(path)):
        raise ConfigError(f"{show_value(str(path))}: a file name with a line break or control characters is "
                          "refused; choose a name of printable characters")
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; use --force to overwrite")
    if path.parent and not path.parent.exists():
        raise ConfigError(f"{path}: folder {path.parent} does not exist")
    from dlexp.config import parse_yaml_mapping, validate_mapping
    from dlexp.rundir import write_text_atomic
    from dlexp.starter import starter_yaml

    text = starter_yaml(str(path))
    validate_mapping(parse_yaml_mapping(text, str(path)), str(path))  # the starter must itself be valid
    write_text_atomic(path, text)
    stdout_console().print(f"wrote {path}", highlight=False)
