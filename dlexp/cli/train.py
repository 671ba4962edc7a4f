"""`dlexp train`, `dlexp validate`, `dlexp init`: thin commands over dlexp.experiment."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from dlexp.cli.app import app, fail, human_console, is_interactive, stdout_console
from dlexp.cli.checks import evaluate_checks
from dlexp.cli.display import GradCollector, TrainDisplay, summary_tables
from dlexp.config import (
    NAME_PATTERN,
    config_base_dir,
    load_config,
    parse_yaml_mapping,
    resolved_dict,
    validate_mapping,
)
from dlexp.errors import ConfigError, has_controls, show_value
from dlexp.rundir import write_text_atomic

SetOption = Annotated[list[str], typer.Option("--set", "-s", help="Override a config field: KEY=VALUE (YAML value), repeatable.")]


def load_with_cli(config: Path, sets: list[str], seed: int | None, name: str | None):
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


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="Experiment YAML file.", show_default=False)] = None,
    sets: SetOption = [],
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")] = Path("runs"),
    name: Annotated[str | None, typer.Option(help="Run name (default: the config's name or file stem).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout; all else on stderr.")] = False,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this directory from its last checkpoint.")] = None,
    checks: Annotated[list[str], typer.Option("--check", help="Assert on the summary, e.g. 'val_acc>=0.9'; exit 1 if false.")] = [],
    allow_divergence: Annotated[bool, typer.Option("--allow-divergence", help="Exit 0 even if the run diverges.")] = False,
) -> None:
    """Train the model a config describes and write a run directory."""
    from dlexp import experiment

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
            result = experiment.run(cfg, base_dir=config_base_dir(config), runs_dir=runs_dir, shown=str(config),
                                    callbacks=[display, collector], prepared=prepared,
                                    ignore_after_stop=True)
    summary = result.summary
    if json_out:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    if not quiet or not json_out:
        if not quiet:
            for table in summary_tables(summary, collector):
                console.print(table)
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


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Experiment YAML file.")],
    sets: SetOption = [],
) -> None:
    """Check a config (and its data) and print the resolved config."""
    from dlexp import experiment

    cfg = load_with_cli(config, sets, None, None)
    p = experiment.prepare(cfg, config_base_dir(config), str(config))
    print_notes(p.dataset.notes)
    data = resolved_dict(p.cfg)
    console = stdout_console()
    sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    console.print(f"# ok: {p.dataset.description}; model {p.model!r}; loss {p.loss_name}", highlight=False,
                  soft_wrap=True)


STARTER = """\
# dlexp experiment config. Every key is optional; these are the defaults unless noted.
# Run it:  dlexp train {name}      Override:  --set training.optimizer.lr=0.01
name: {stem}
seed: 0
dtype: float64                 # float64 (exact study) or float32 (speed)
data:
  source: synthetic            # synthetic | csv
  kind: spirals                # moons | circles | spirals | blobs | xor (classes); linear | sine (regression)
  n_samples: 1000
  n_classes: 3                 # spirals, blobs
  noise: 0.1
  # path: data/iris.csv        # csv: relative to this file's folder
  # target: species
  val_fraction: 0.2
  test_fraction: 0.0
  standardize: true            # fitted on the training split only
model:
  hidden: [32, 32, 32]         # or: depth: 10 and width: 32
  activation: relu             # identity sigmoid tanh relu leaky_relu elu softplus silu selu gelu
  init: he_normal              # xavier_uniform xavier_normal he_uniform he_normal lecun_normal normal uniform torch_default
  dropout: 0.0                 # rate in [0, 1)
  dropout_mode: inverted       # or scale_at_inference (the original paper's form), alpha (for selu)
  batchnorm: false
  norm: none                   # none | batchnorm | layernorm (batchnorm: true is norm: batchnorm)
  residual: false              # true: h <- h + f(h) around each hidden layer after the first; {{every: k}}
  output_activation: auto      # sigmoid for bce, softmax for cce / sparse_cce, identity otherwise
training:
  epochs: 50
  batch_size: 32               # 1 = stochastic GD, full = batch GD, N = mini-batch
  shuffle: true                # false: every epoch takes the training rows in file order
  loss: auto                   # mae mse huber bce (log_loss) cce sparse_cce; auto picks from the data
  optimizer: {{name: adam, lr: 0.001}}   # sgd momentum nesterov adam adamw adamax adadelta rmsprop adagrad nadam
  schedule: null               # or {{name: step, step_size: 10, gamma: 0.5}}
  l1: 0.0
  l2: 0.0
  clip_grad_norm: null
  early_stopping: null         # or {{monitor: val_loss, patience: 10, min_delta: 0}}
  divergence:                  # when a finite run counts as diverged (NaN/Inf always does); null: off
    loss_factor: 1.0e+6        # a step's loss above this x the loss at initialisation
    grad_norm_max: 1.0e+8      # a step's gradient norm (before clipping) above this
  checkpoint_every: 1          # epochs between checkpoints/last.npz (0: only at the end)
logging:
  grad_every: 1                # steps between per-layer gradient rows (step 1 always logged)
  histograms_every: 0          # N > 0: histograms.csv of activations, gradients, weights per layer every N steps
"""


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter config.")] = Path("experiment.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter config."""
    if has_controls(str(path)):
        raise ConfigError(f"{show_value(str(path))}: a file name with a line break or control characters is "
                          "refused; choose a name of printable characters")
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; use --force to overwrite")
    if path.parent and not path.parent.exists():
        raise ConfigError(f"{path}: folder {path.parent} does not exist")
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem) or "experiment"
    text = STARTER.format(name=path, stem=stem)
    validate_mapping(parse_yaml_mapping(text, str(path)), str(path))  # the starter must itself be valid
    write_text_atomic(path, text)
    stdout_console().print(f"wrote {path}", highlight=False)
