"""Bad input of every kind ends with exit 2, one ``error:`` line naming where and what, and no run directory.

One table: each case writes its files into ``tmp_path`` (the config is ``exp.yaml``, CSVs under
``data/``), runs the CLI there in-process and lists substrings the single stderr line must contain:
the file, the field path or column, and what was wrong or what is accepted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import run_subprocess

from dlexp.errors import MAX_ERROR_CHARS, has_controls

DIR = object()  # in Case.files: create a directory at this path
FIFO = object()  # in Case.files: create a named pipe at this path


@dataclass(frozen=True)
class Sparse:
    """In Case.files: a sparse file of ``size`` bytes (a huge file that costs no disk or time to write)."""

    size: int

OK = """\
seed: 1
data: {kind: moons, n_samples: 40}
model: {hidden: [4]}
training: {epochs: 1}
"""

BOMB = (
    "\n".join(
        ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        + [f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    )
    + "\n"
)

GOOD_CSV = "age,income,label\n" + "".join(
    f"{20 + i},{i * 3 % 7}.5,{'yes' if i % 2 else 'no'}\n" for i in range(20)
)


def csv_config(path: str = "data/x.csv", target: str = "label", extra: str = "") -> str:
    return f"data: {{source: csv, path: {path}, target: {target}}}\ntraining: {{epochs: 1}}\n{extra}"


def wide_csv(n_columns: int, n_rows: int = 4) -> str:
    header = ",".join(f"c{i}" for i in range(n_columns)) + ",label\n"
    return header + "".join(",".join(["1"] * n_columns) + f",{r % 2}\n" for r in range(n_rows))


# 2 text columns of 40 distinct values each: 2 columns in the header, 80 inputs once one-hot encoded
CATEGORICAL_CSV = "a,b,label\n" + "".join(f"a{i},b{i},{i % 2}\n" for i in range(40))


@dataclass
class Case:
    files: dict[str, object]  # relative path -> text, bytes or DIR
    args: list[str]  # after `dlexp`; `train` gets `--runs-dir runs` appended
    expect: list[str]  # substrings of the one stderr line
    absent: list[str] = field(default_factory=list)  # files that must not appear (side effects)


def case(
    id: str,
    config: str | bytes | None,
    expect: list[str],
    args: list[str] | None = None,
    files: dict[str, object] | None = None,
    absent: list[str] | None = None,
):
    all_files = dict(files or {})
    if config is not None:
        all_files["exp.yaml"] = config
    return pytest.param(Case(all_files, args or ["train", "exp.yaml"], expect, absent or []), id=id)


# fmt: off
CASES = [
    # --- the YAML file itself -----------------------------------------------------------------
    case("malformed-yaml", "model: {depth: 3\ntraining: {epochs: 1}\n",
         ["exp.yaml: invalid YAML: line 2,", "expected ',' or '}'"]),
    case("unclosed-quote", "name: 'abc\n", ["exp.yaml: invalid YAML: line 2", "quoted scalar"]),
    case("tab-indent", "model:\n\tdepth: 3\n", ["exp.yaml: invalid YAML: line 2, column 1", "'\\t'"]),
    case("top-level-list", "- model\n- training\n", ["exp.yaml: top level must be a mapping", "(got list)"]),
    case("top-level-scalar", "42\n", ["exp.yaml: top level must be a mapping", "(got int)"]),
    case("empty-file", "", ["exp.yaml: empty config; expected a mapping"]),
    case("only-comments", "# nothing here\n", ["exp.yaml: empty config"]),
    case("non-utf8", b"model: {activation: \xff\xfe}\n",
         ["exp.yaml: not UTF-8 text (byte 20)", "save the config as UTF-8"]),
    case("yaml-bomb", BOMB, ["exp.yaml: more than 100,000 YAML nodes", "YAML bomb"]),
    case("python-apply-tag", "!!python/object/apply:os.system ['touch pwned']\n",
         ["exp.yaml: line 1, column 1: tag", "python/object/apply:os.system", "is refused; only plain YAML"],
         absent=["pwned"]),
    case("python-object-tag-nested", "model: !!python/object:collections.OrderedDict {}\n",
         ["exp.yaml: line 1, column 8: tag", "python/object:collections.OrderedDict", "only plain YAML"]),
    case("duplicate-key", "training: {epochs: 1}\nmodel: {depth: 2}\ntraining: {epochs: 2}\n",
         ["exp.yaml: line 3, column 1: duplicate key 'training' (first given on line 1)"]),
    case("non-string-key", "model: {3: relu}\n", ["exp.yaml: line 1, column 9: key '3' is read as a number"]),
    case("deeply-nested", "model: " + "[" * 3000 + "]" * 3000 + "\n", ["exp.yaml: YAML nested too deeply"]),
    case("too-large", "# " + "x" * 1_000_001 + "\n",
         ["exp.yaml: 1,000,004 bytes; a YAML config file may be at most 1,000,000 bytes"]),
    case("missing-config", None, ["nope.yaml: file not found"], args=["train", "nope.yaml"]),
    case("config-is-directory", None, ["confdir: is a directory; expected a YAML config file"],
         args=["train", "confdir"], files={"confdir": DIR}),
    # --- schema: keys and types -----------------------------------------------------------------
    case("unknown-top-level-key", "modle: {depth: 2}\n",
         ["exp.yaml: modle: unknown key; did you mean 'model'?"]),
    case("unknown-nested-key", "model: {activaton: relu}\n",
         ["exp.yaml: model.activaton: unknown key; did you mean 'activation'?"]),
    case("unknown-key-lists-accepted", "logging: {zzz: 1}\n",
         ["exp.yaml: logging.zzz: unknown key (accepted: eval_every, grad_every, histograms_every)"]),
    case("odd-key-is-quoted", "model: {'a b': 1}\n",
         ["exp.yaml: model['a b']: unknown key (accepted: activation,"]),
    case("string-for-epochs", "training: {epochs: ten}\n",
         ["exp.yaml: training.epochs: must be an integer (got 'ten')"]),
    case("bool-for-epochs", "training: {epochs: true}\n",
         ["exp.yaml: training.epochs: must be an integer (got True)"]),
    case("float-for-epochs", "training: {epochs: 2.5}\n",
         ["exp.yaml: training.epochs: must be an integer (got 2.5)"]),
    case("list-for-dropout", "model: {dropout: [0.1]}\n",
         ["exp.yaml: model.dropout: must be a number (got [0.1])"]),
    case("string-for-dropout", "model: {dropout: '0.5'}\n",
         ["exp.yaml: model.dropout: must be a number (got '0.5')"]),
    case("section-not-mapping", "training: 5\n", ["exp.yaml: training: must be a mapping (got 5)"]),
    case("hidden-not-list", "model: {hidden: 32}\n", ["exp.yaml: model.hidden: must be a list (got 32)"]),
    case("hidden-item-not-int", "model: {hidden: [8, wide]}\n",
         ["exp.yaml: model.hidden[1]: must be an integer (got 'wide')"]),
    case("bool-not-bool", "model: {batchnorm: 1}\n",
         ["exp.yaml: model.batchnorm: must be true or false (got 1)"]),
    case("residual-widths", "model: {hidden: [8, 16, 16], residual: true}\n",
         [("exp.yaml: model.residual: the skip around hidden layer 1 adds layer 0's output to layer 1's, so their "
           "widths must be equal (got [8, 16])")]),
    case("residual-block-count", "model: {depth: 4, residual: {every: 2}}\n",
         [("exp.yaml: model.residual: skips go around blocks of 2 hidden layers after the first, so the number "
           "of hidden layers must be 1 + a multiple of 2 (got 4; e.g. 3)")]),
    case("residual-every-0", "model: {depth: 3, residual: {every: 0}}\n",
         ["exp.yaml: model.residual.every: must be an integer from 1 to 1000 (got 0)"]),
    case("residual-unknown-key", "model: {depth: 3, residual: {evry: 2}}\n",
         ["exp.yaml: model.residual: unknown key 'evry' (accepted: every)"]),
    case("residual-number", "model: {depth: 3, residual: 2}\n",
         ["exp.yaml: model.residual: must be true, false or {every: k} (got 2)"]),
    case("norm-unknown", "model: {norm: groupnorm}\n",
         ["exp.yaml: model.norm: got 'groupnorm' (accepted: 'none', 'batchnorm' or 'layernorm')"]),
    case("norm-contradicts-batchnorm", "model: {batchnorm: true, norm: layernorm}\n",
         ["exp.yaml: model.norm: 'layernorm' contradicts batchnorm: true"]),
    case("gelu-approximate", "model: {activation: {name: gelu, approximate: fast}}\n",
         ["exp.yaml: model.activation: approximate must be 'none' (the exact erf form) or 'tanh' (got 'fast')"]),
    # --- schema: ranges -------------------------------------------------------------------------
    case("dropout-1", "model: {dropout: 1.0}\n", ["exp.yaml: model.dropout: must be < 1.0 (got 1.0)"]),
    case("lr-negative", "training: {optimizer: {name: adam, lr: -0.1}}\n",
         ["exp.yaml: training.optimizer: lr must be > 0 (got -0.1)"]),
    case("lr-nan", "training: {optimizer: {name: adam, lr: .nan}}\n",
         ["exp.yaml: training.optimizer: lr must be finite (got nan)"]),
    case("l2-inf", "training: {l2: .inf}\n", ["exp.yaml: training.l2: must be a finite number (got inf)"]),
    case("clip-inf", "training: {clip_grad_norm: .inf}\n",
         ["exp.yaml: training.clip_grad_norm: must be a finite number (got inf)"]),
    case("noise-nan", "data: {noise: .nan}\n", ["exp.yaml: data.noise: must be a finite number (got nan)"]),
    case("betas-out-of-range", "training: {optimizer: {name: adam, betas: [1.5, 0.9]}}\n",
         ["exp.yaml: training.optimizer: betas[0] must be in [0, 1) (got 1.5)"]),
    case("epochs-0", "training: {epochs: 0}\n", ["exp.yaml: training.epochs: must be >= 1 (got 0)"]),
    case("divergence-factor-1", "training: {divergence: {loss_factor: 1}}\n",
         ["exp.yaml: training.divergence.loss_factor: must be > 1.0 (got 1)"]),
    case("divergence-grad-norm-inf", "training: {divergence: {grad_norm_max: .inf}}\n",
         ["exp.yaml: training.divergence.grad_norm_max: must be a finite number (got inf)"]),
    case("divergence-unknown-rule", "training: {divergence: {max_loss: 10}}\n",
         ["exp.yaml: training.divergence.max_loss: unknown key (accepted: grad_norm_max, loss_factor)"]),
    case("batch-size-0", "training: {batch_size: 0}\n",
         ["exp.yaml: training.batch_size: must be an integer from 1 to 10,000,000 or 'full' (got 0)"]),
    case("batch-size-half", "training: {batch_size: half}\n",
         ["exp.yaml: training.batch_size:", "or 'full' (got 'half')"]),
    case("batch-size-typo", "training: {batch_size: ful}\n",
         ["exp.yaml: training.batch_size:", "did you mean 'full'?"]),
    case("val-fraction-1.2", "data: {val_fraction: 1.2}\n",
         ["exp.yaml: data.val_fraction: must be < 1.0 (got 1.2)"]),
    case("val-plus-test-1", "data: {val_fraction: 0.5, test_fraction: 0.5}\n",
         ["exp.yaml: data: val_fraction + test_fraction must be < 1 (got 0.5 + 0.5)"]),
    case("seed-negative", "seed: -3\n", ["exp.yaml: seed: must be >= 0 (got -3)"]),
    case("hidden-width-0", "model: {hidden: [8, 0]}\n",
         ["exp.yaml: model.hidden[1]: each width must be in [1, 100000] (got 0)"]),
    case("hidden-and-depth", "model: {hidden: [8], depth: 3}\n",
         ["exp.yaml: model: give either 'hidden'", "or 'depth' and 'width', not both"]),
    case("huge-depth", "model: {depth: 100000}\n", ["exp.yaml: model.depth: must be <= 1000 (got 100000)"]),
    case("over-parameter-cap", "model: {depth: 1000, width: 1000}\n",
         ["exp.yaml: model: at least 1,000,003,001 parameters (layer widths 2 -> 1,000", "above the limit of 50,000,000"]),
    case("name-with-slash", "name: a/b\n", ["exp.yaml: name: must be 1-100 characters", "(got 'a/b')"]),
    # --- schema: names of things ----------------------------------------------------------------
    case("unknown-activation", "model: {activation: rleu}\n",
         ["exp.yaml: model.activation: unknown activation 'rleu'; did you mean 'relu'?", "(accepted: elu,"]),
    case("unknown-init", "model: {init: he_normall}\n",
         ["exp.yaml: model.init: unknown init 'he_normall'; did you mean 'he_normal'?", "accepted:"]),
    case("unknown-loss", "training: {loss: mse2}\n",
         ["exp.yaml: training.loss: unknown loss 'mse2'; did you mean 'mse'?", "accepted:"]),
    case("unknown-optimizer", "training: {optimizer: sgdd}\n",
         ["exp.yaml: training.optimizer: unknown torch optimizer 'sgdd'; did you mean 'sgd'?", "accepted:"]),
    case("unknown-schedule", "training: {schedule: stpe}\n",
         ["exp.yaml: training.schedule: unknown schedule 'stpe'; did you mean 'step'?", "accepted:"]),
    case("unknown-optimizer-argument", "training: {optimizer: {name: adam, bogus: 1}}\n",
         ["exp.yaml: training.optimizer:", "has no argument 'bogus'", "(accepted: lr, betas"]),
    case("unknown-activation-argument", "model: {activation: {name: leaky_relu, slope: 0.1}}\n",
         ["exp.yaml: model.activation: activation 'leaky_relu' has no argument 'slope'", "negative_slope"]),
    case("schedule-missing-argument", "training: {schedule: {name: step}}\n",
         ["exp.yaml: training.schedule: schedule 'step' needs 'step_size'"]),
    case("spec-wrong-shape", "model: {activation: [relu]}\n",
         ["exp.yaml: model.activation: must be an activation name or a mapping with a 'name' key",
          "accepted names: elu,"]),
    case("spec-without-name", "training: {optimizer: {lr: 0.1}}\n",
         ["exp.yaml: training.optimizer: a mapping needs a 'name' key naming the optimizer, e.g. {name: adam",
          "(got keys ['lr']; accepted names: adadelta,"]),
    case("unknown-dtype", "dtype: float16\n",
         ["exp.yaml: dtype: got 'float16'", "(accepted: 'float64' or 'float32')"]),
    case("unknown-kind", "data: {kind: moon}\n", ["exp.yaml: data.kind: got 'moon'; did you mean 'moons'?"]),
    case("unknown-monitor", "training: {early_stopping: {monitor: val_los}}\n",
         ["exp.yaml: training.early_stopping.monitor: got 'val_los'; did you mean 'val_loss'?"]),
    case("csv-without-path", "data: {source: csv, target: y}\n",
         ["exp.yaml: data.path: required when source is 'csv'"]),
    case("csv-without-target", "data: {source: csv, path: data/x.csv}\n",
         ["exp.yaml: data.target: required when source is 'csv'"]),
    case("csv-features-empty", csv_config().replace("target: label}", "target: label, features: []}"),
         ["exp.yaml: data.features: empty list; omit it to use every column but the target"]),
    case("csv-features-repeated",
         csv_config().replace("target: label}", "target: label, features: [age, age]}"),
         ["exp.yaml: data.features: column 'age' is listed twice"]),
    case("csv-target-among-features",
         csv_config().replace("target: label}", "target: label, features: [label]}"),
         ["data/x.csv: column 'label' is the target and cannot also be in data.features"],
         files={"data/x.csv": GOOD_CSV}),
    case("path-with-synthetic", "data: {path: data/x.csv}\n",
         ["exp.yaml: data.path: only read when source is 'csv'"]),
    # --- checks that need the data (prepare) ------------------------------------------------------
    case("bce-on-3-classes", "data: {kind: blobs, n_classes: 3, n_samples: 60}\ntraining: {loss: bce}\n",
         ["exp.yaml: training.loss: bce is for two classes, the data has 3; use cce or sparse_cce"]),
    case("regression-with-cce", "data: {kind: sine, n_samples: 40}\ntraining: {loss: cce}\n",
         ["exp.yaml: training.loss: 'cce' is a classification loss but the data is a regression task"]),
    case("softmax-with-bce",
         "data: {n_samples: 40}\nmodel: {output_activation: softmax}\ntraining: {loss: bce}\n",
         ["exp.yaml: model.output_activation: bce fuses sigmoid into the loss", "(got 'softmax')"]),
    case("batchnorm-batch-1", "data: {n_samples: 40}\nmodel: {batchnorm: true}\ntraining: {batch_size: 1}\n",
         ["exp.yaml: training.batch_size: BatchNorm needs at least 2 samples per batch"]),
    case("acc-monitor-on-regression",
         "data: {kind: sine, n_samples: 40}\ntraining: {early_stopping: {monitor: val_acc}}\n",
         ["exp.yaml: training.early_stopping.monitor: 'val_acc' needs a classification task"]),
    case("xor-with-3-classes", "data: {kind: xor, n_classes: 3, n_samples: 40}\n",
         ["exp.yaml: data (synthetic xor): data.n_classes: xor has exactly 2 classes (got 3)"]),
    case("synthetic-too-few-to-split", "data: {n_samples: 10, val_fraction: 0.9}\n",
         ["exp.yaml: data (synthetic moons):", "val_fraction 0.9", "lower the fractions or add rows"]),
    case("activations-too-large",
         "data: {n_samples: 100000}\nmodel: {hidden: [100000]}\ntraining: {batch_size: full}\n",
         ["exp.yaml: training.batch_size: 80,000 rows per batch", "GiB of activations"]),
    # --- CSV files ------------------------------------------------------------------------------
    case("csv-missing-file", csv_config("data/none.csv"), ["data/none.csv: file not found"]),
    # data/x.csv exists next to the working directory, not next to sub/exp.yaml: the config's folder wins
    case("csv-path-relative-to-config", csv_config(),
         ["data/x.csv: file not found", "read from the config file's folder"],
         files={"data/x.csv": GOOD_CSV}, args=["train", "sub/exp.yaml"]),
    case("csv-is-directory", csv_config("data/x.csv"), ["data/x.csv: is a directory; expected a CSV file"],
         files={"data/x.csv": DIR}),
    case("csv-empty", csv_config(), ["data/x.csv: empty file; expected a header line"],
         files={"data/x.csv": ""}),
    case("csv-header-only", csv_config(), ["data/x.csv: header only, no data rows"],
         files={"data/x.csv": "age,income,label\n"}),
    case("csv-short-row", csv_config(),
         ["data/x.csv: row 2 (line 3 of the file) has 2 fields but the header has 3"],
         files={"data/x.csv": "age,income,label\n1,2,no\n3,4\n5,6,yes\n"}),
    case("csv-long-row", csv_config(), ["data/x.csv: row 3 (line 4 of the file) has 4 fields", "exactly 3"],
         files={"data/x.csv": "age,income,label\n1,2,no\n3,4,yes\n5,6,yes,9\n"}),
    case("csv-unknown-target", csv_config(target="lable"),
         ["data/x.csv: target column 'lable' not found; did you mean 'label'?",
          "(columns: age, income, label)"],
         files={"data/x.csv": GOOD_CSV}),
    case("csv-unknown-feature", csv_config().replace("target: label}", "target: label, features: [agee]}"),
         ["data/x.csv: feature column 'agee' (in data.features) not found; did you mean 'age'?"],
         files={"data/x.csv": GOOD_CSV}),
    case("csv-missing-values", csv_config(),
         ["data/x.csv: column 'age': 2 missing values (first at row 3, line 4 of the file)"],
         files={"data/x.csv": "age,income,label\n1,2,no\n3,4,yes\n,6,no\n7,8,yes\nNA,1,no\n"}),
    case("csv-non-numeric", csv_config(),
         ["data/x.csv: column 'income': 1 non-numeric value among numbers, first 'lots' at row 2"],
         files={"data/x.csv": "age,income,label\n1,2,no\n3,lots,yes\n5,6,no\n7,8,yes\n"}),
    case("csv-single-class", csv_config(), ["data/x.csv: target column 'label' has a single class ('no')"],
         files={"data/x.csv": "age,income,label\n1,2,no\n3,4,no\n5,6,no\n7,8,no\n"}),
    case("csv-non-utf8", csv_config(), ["data/x.csv: not UTF-8 text", "line 3"],
         files={"data/x.csv": b"age,income,label\n1,2,no\n3,4,\xe9t\xe9\n"}),
    case("csv-bce-on-3-classes",
         csv_config(extra="training: {epochs: 1, loss: bce}\n").replace("training: {epochs: 1}\n", ""),
         ["exp.yaml: training.loss: bce is for two classes, the data has 3"],
         files={"data/x.csv": "a,label\n" + "".join(f"{i},{'abc'[i % 3]}\n" for i in range(30))}),
    # --- overrides ------------------------------------------------------------------------------
    case("set-without-equals", OK, ["--set 'training.epochs': expected KEY=VALUE"],
         args=["train", "exp.yaml", "--set", "training.epochs"]),
    case("set-under-scalar", OK, ["--set training.epochs.max=3: training.epochs is 1, not a mapping"],
         args=["train", "exp.yaml", "--set", "training.epochs.max=3"]),
    case("set-unknown-key", OK, ["exp.yaml: training.epoch: unknown key; did you mean 'epochs'?"],
         args=["train", "exp.yaml", "--set", "training.epoch=3"]),
    case("set-bad-value", OK, ["exp.yaml: training.optimizer: lr must be > 0 (got -1)"],
         args=["train", "exp.yaml", "--set", "training.optimizer.lr=-1"]),
    case("set-invalid-yaml", OK, ["--set 'model.hidden=[8, 8': the value is not valid YAML"],
         args=["train", "exp.yaml", "--set", "model.hidden=[8, 8"]),
    case("set-malformed-key", OK, ["--set 'model..depth=3': malformed key 'model..depth'"],
         args=["train", "exp.yaml", "--set", "model..depth=3"]),
    # --- the command line -----------------------------------------------------------------------
    case("check-bad-syntax", OK, ["--check 'val_acc>>1': expected NAME OP NUMBER"],
         args=["train", "exp.yaml", "--check", "val_acc>>1"]),
    case("check-unknown-name", OK,
         ["--check 'vall_acc>0.5': unknown name 'vall_acc'; did you mean 'val_acc'?"],
         args=["train", "exp.yaml", "--check", "vall_acc>0.5"]),
    case("check-unknown-field-in-section", OK,
         ["--check 'final.vall_acc>0.5': unknown name 'vall_acc' in final.", "did you mean 'val_acc'?"],
         args=["train", "exp.yaml", "--check", "final.vall_acc>0.5"]),
    case("name-escapes-runs-dir", OK, ["--name '../escape': must be 1-100 characters", "inside --runs-dir"],
         args=["train", "exp.yaml", "--name", "../escape"]),
    case("name-with-slash-option", OK, ["--name 'a/b': must be 1-100 characters"],
         args=["train", "exp.yaml", "--name", "a/b"]),
    case("name-empty", OK, ["--name '': must be 1-100 characters"],
         args=["train", "exp.yaml", "--name", ""]),
    case("unknown-option", OK, ["dlexp train: No such option: --epochs"],
         args=["train", "exp.yaml", "--epochs", "3"]),
    case("seed-not-int", OK, ["dlexp train: Invalid value for '--seed'", "integer"],
         args=["train", "exp.yaml", "--seed", "abc"]),
    case("unknown-command", OK, ["dlexp: No such command 'trian'. Did you mean 'train'?"],
         args=["trian", "exp.yaml"]),
    case("runs-dir-is-a-file", OK, ["error: --runs-dir exp.yaml: is a file; expected a folder"],
         args=["train", "exp.yaml", "--runs-dir", "exp.yaml"]),
    case("resume-non-run-dir", None, ["notarun: not a dlexp run directory"],
         args=["train", "--resume", "notarun"], files={"notarun": DIR, "notarun/readme.txt": "hi"}),
    case("resume-missing-dir", None, ["gone: not a directory; --resume takes a run directory"],
         args=["train", "--resume", "gone"]),
    case("resume-and-config", OK, ["train: give a CONFIG file or --resume RUN_DIR (not both)"],
         args=["train", "exp.yaml", "--resume", "runs"]),
    case("train-no-args", None, ["train: give a CONFIG file or --resume RUN_DIR"], args=["train"]),
    case("validate-bad-config", "training: {epochs: 0}\n",
         ["exp.yaml: training.epochs: must be >= 1 (got 0)"], args=["validate", "exp.yaml"]),
    # --- files that are not regular files, or too large: refused before they are read -----------------
    case("config-is-dev-zero", None, ["/dev/zero: is a character device; expected a YAML config file"],
         args=["train", "/dev/zero"]),
    case("config-is-dev-urandom", None, ["/dev/urandom: is a character device; expected a YAML config file"],
         args=["validate", "/dev/urandom"]),
    case("config-is-fifo", None, ["pipe.yaml: is a FIFO (named pipe); expected a YAML config file"],
         args=["train", "pipe.yaml"], files={"pipe.yaml": FIFO}),
    case("config-huge-sparse", Sparse(5 * 10**9),
         ["exp.yaml: 5,000,000,000 bytes; a YAML config file may be at most 1,000,000 bytes"]),
    case("csv-is-dev-zero", csv_config("/dev/zero"), ["/dev/zero: is a character device; expected a CSV file"]),
    case("csv-is-fifo", csv_config(), ["data/x.csv: is a FIFO (named pipe); expected a CSV file"],
         files={"data/x.csv": FIFO}),
    case("csv-too-large", csv_config(), ["data/x.csv: 200,000,001 bytes; a CSV file may be at most 200,000,000 bytes"],
         files={"data/x.csv": Sparse(200_000_001)}),
    # --- the parameter cap, counted with the data's real widths -----------------------------------------
    case("csv-too-wide-for-the-model", csv_config(extra="model: {hidden: [100000]}\n"),
         ["exp.yaml: model: at least 60,200,001 parameters (layer widths 600 -> 100,000 -> 1",
          "600 feature columns in data/x.csv", "above the limit of 50,000,000"],
         files={"data/x.csv": wide_csv(600)}),
    case("csv-one-hot-too-wide-for-the-model", csv_config(extra="model: {hidden: [100000, 490]}\n"),
         ["exp.yaml: model: 57,", "parameters (layer widths 80 -> 100,000 -> 490 -> 1",
          "80 inputs and 1 outputs from the data, data/x.csv", "above the limit of 50,000,000"],
         files={"data/x.csv": CATEGORICAL_CSV}),
    case("n-classes-1000-over-parameter-cap",
         "data: {kind: blobs, n_classes: 1000, n_samples: 2000}\nmodel: {hidden: [60000]}\n",
         ["exp.yaml: model: at least 60,181,000 parameters (layer widths 2 -> 60,000 -> 1,000)",
          "above the limit of 50,000,000"]),
    case("n-classes-1000-one-hot-targets-too-large",
         "data: {kind: blobs, n_classes: 1000, n_samples: 600000}\nmodel: {hidden: [4]}\n",
         ["exp.yaml: training.loss: one-hot targets for 600,000 rows x 1,000 classes need about 4.5 GiB",
          "use sparse_cce"]),
    # --- user input echoed: bounded, control characters escaped -----------------------------------------
    case("check-100k-digits-then-garbage", OK, ["--check 'val_acc>=1111", "...': expected NAME OP NUMBER"],
         args=["train", "exp.yaml", "--check", "val_acc>=" + "1" * 100_000 + "x"]),
    case("check-number-not-finite", OK, ["--check 'val_acc>=1e999': the number is too large for a float"],
         args=["train", "exp.yaml", "--check", "val_acc>=1e999"]),
    case("csv-header-with-esc-and-nul-name", csv_config(target="lable"),
         ["data/x.csv: target column 'lable' not found", "a\\x1b[2J"],
         files={"data/x.csv": "a\x1b[2J,label\n1,no\n2,yes\n"}),
    case("csv-nul-in-header", csv_config(), ["data/x.csv: contains a NUL byte (line 1 of the file)"],
         files={"data/x.csv": "a\x00b,label\n1,no\n2,yes\n"}),
    case("config-value-with-esc", 'model: {activation: "re\\e[31mlu"}\n',
         ["exp.yaml: model.activation: unknown activation 're\\x1b[31mlu'"]),
    case("config-key-with-esc", 'model: {"a\\e]0;pwned\\a": 1}\n',
         ["exp.yaml: model['a\\x1b]0;pwned\\x07']: unknown key"]),
    case("config-huge-value", "model: {activation: " + "x" * 50_000 + "}\n",
         ["exp.yaml: model.activation: unknown activation 'xxx", "characters cut", "(accepted: elu,"]),
    case("file-name-with-esc", None, ["bad\\x1b[2J.yaml: file not found"], args=["train", "bad\x1b[2J.yaml"]),
    case("file-name-very-long", None, ["characters cut", "x.yaml: cannot open"], args=["train", "d/" * 5000 + "x.yaml"]),
    case("unknown-option-with-esc", OK, ["No such option: --x\\x1b[2J"],
         args=["train", "exp.yaml", "--x\x1b[2J"]),
    case("name-with-newline-option", OK, ["--name 'a\\nb': must be 1-100 characters"],
         args=["train", "exp.yaml", "--name", "a\nb"]),
    # --- smaller edges ----------------------------------------------------------------------------------
    case("adamw-weight-decay-null", "training: {optimizer: {name: adamw, weight_decay: null}}\n",
         ["exp.yaml: training.optimizer: weight_decay must be a number (got None)"]),
    case("adamw-keras-weight-decay-null",
         "training: {optimizer: {name: adamw, convention: keras, weight_decay: null}}\n",
         ["exp.yaml: training.optimizer: weight_decay must be a number (got None)", "without weight decay is adam"]),
    case("init-name-with-newline", None, ["'a\\nb.yaml': a file name with a line break or control characters"],
         args=["init", "a\nb.yaml"]),
    case("init-name-with-esc", None, ["'a\\x1b[2Jb.yaml': a file name with a line break"],
         args=["init", "a\x1b[2Jb.yaml"]),
]
# fmt: on


def materialize(tmp_path: Path, c: Case) -> Path:
    """Write the case's files; the directory to run in (``sub/`` holds the config for sub/ cases)."""
    in_sub = any(a.startswith("sub/") for a in c.args)
    for rel, content in c.files.items():
        target = tmp_path / ("sub/" + rel if in_sub and rel == "exp.yaml" else rel)
        if content is DIR:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is FIFO:
            os.mkfifo(target)
        elif isinstance(content, Sparse):
            with open(target, "wb") as fh:
                fh.truncate(content.size)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return tmp_path


def full_args(c: Case) -> list[str]:
    return (
        [*c.args, "--runs-dir", "runs"]
        if c.args[0] == "train" and "--runs-dir" not in c.args
        else list(c.args)
    )


def assert_one_line_error(result, expect: list[str]) -> str:
    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    lines = result.stderr.split("\n")
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1] == "", result.stderr
    assert not has_controls(lines[0]), f"raw control character in {lines[0]!r}"
    assert len(lines[0]) <= len("error: ") + MAX_ERROR_CHARS, len(lines[0])
    for part in expect:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    return lines[0]


def test_the_corpus_is_large_and_distinct():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 40


@pytest.mark.parametrize("c", CASES)
def test_bad_input_is_one_line_exit_2_and_nothing_written(cli, tmp_path, c):
    cwd = materialize(tmp_path, c)
    before = sorted(p.relative_to(cwd) for p in cwd.rglob("*"))
    result = cli(*full_args(c), cwd=cwd)
    assert_one_line_error(result, c.expect)
    runs = cwd / "runs"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
    assert sorted(p.relative_to(cwd) for p in cwd.rglob("*")) == before  # nothing created, anywhere
    for name in c.absent:
        assert not (cwd / name).exists()


def test_debug_shows_the_traceback_for_the_same_bad_input(cli, tmp_path):
    (tmp_path / "exp.yaml").write_text("training: {epochs: 0}\n", encoding="utf-8")
    result = cli("--debug", "train", "exp.yaml", "--runs-dir", "runs", cwd=tmp_path)
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.stderr and "ConfigError" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: exp.yaml: training.epochs: must be >= 1 (got 0)"
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args, expect",
    [
        (["train", "exp.yaml", "--bogus"], "error: dlexp train: No such option: --bogus"),
        (
            ["train", "exp.yaml", "--set", "model.dropout=1.0"],
            "error: exp.yaml: model.dropout: must be < 1.0 (got 1.0)",
        ),
    ],
)
def test_the_real_entry_point_behaves_the_same(tmp_path, args, expect):
    (tmp_path / "exp.yaml").write_text(OK, encoding="utf-8")
    result = run_subprocess(*args, "--runs-dir", "runs", cwd=tmp_path)
    assert result.code == 2 and result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(expect) and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_version_needs_no_command(cli):
    result = cli("--version")
    assert result.code == 0 and result.stdout.startswith("dlexp ") and not result.stderr


def test_csv_path_is_resolved_relative_to_the_config_file(cli, tmp_path):
    sub = tmp_path / "configs"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text(GOOD_CSV, encoding="utf-8")
    sub.mkdir()
    (sub / "exp.yaml").write_text(csv_config("../data/x.csv"), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("train", sub / "exp.yaml", "--runs-dir", tmp_path / "runs", "--quiet", cwd=elsewhere)
    assert result.code == 0, result.stderr


def test_yaml_scientific_numbers_and_default_optimizer_overrides(cli, tmp_path):
    # YAML 1.1 reads 1e-2 as a string; where the schema expects a number it is the number. And
    # `--set training.optimizer.lr=...` on a config naming no optimizer sets the default one's argument.
    (tmp_path / "exp.yaml").write_text(OK, encoding="utf-8")
    result = cli(
        "validate",
        "exp.yaml",
        "--set",
        "training.optimizer.lr=1e-2",
        "--set",
        "training.l2=1e-4",
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    assert "optimizer:\n    name: adam\n    lr: 0.01\n" in result.stdout and "l2: 0.0001" in result.stdout


class _TouchOnUnpickle:
    """Unpickling this creates ``path``: proof that a checkpoint's pickle ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _interrupted_run_with_pickled_checkpoint(cli, tmp_path: Path, marker: Path) -> Path:
    (tmp_path / "exp.yaml").write_text(OK.replace("epochs: 1", "epochs: 2"), encoding="utf-8")
    assert cli("train", "exp.yaml", "--runs-dir", "runs", "--quiet", cwd=tmp_path).code == 0
    run = next((tmp_path / "runs").iterdir())
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    with np.load(run / "checkpoints" / "last.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["layers.0.W"] = np.array([_TouchOnUnpickle(marker)], dtype=object)
    np.savez(run / "checkpoints" / "last.npz", **arrays)
    return run


def test_npz_is_read_with_allow_pickle_false(cli, tmp_path):
    marker = tmp_path / "unpickled"
    run = _interrupted_run_with_pickled_checkpoint(cli, tmp_path, marker)
    result = cli("train", "--resume", run, cwd=tmp_path)
    assert result.code != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    assert not marker.exists()


def test_pickled_checkpoint_is_a_one_line_exit_2(cli, tmp_path):
    run = _interrupted_run_with_pickled_checkpoint(cli, tmp_path, tmp_path / "unpickled")
    result = cli("train", "--resume", run, cwd=tmp_path)
    assert_one_line_error(result, [f"{run}", "last.npz"])


# --- damaged run directories: `train --resume` refuses them whole ----------------------------------

RUN_OK = OK.replace("epochs: 1", "epochs: 2").replace("hidden: [4]", "hidden: [4], dropout: 0.2")


def _npz_edit(name: str, value) -> object:
    """A damage: replace (or, with None, drop) one array of checkpoints/last.npz."""

    def damage(run: Path) -> None:
        path = run / "checkpoints" / "last.npz"
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value(arrays[name]) if callable(value) else value
        np.savez(path, **arrays)

    return damage


def _file_edit(name: str, edit) -> object:
    def damage(run: Path) -> None:
        path = run / name
        path.write_bytes(edit(path.read_bytes()))

    return damage


def _state_edit(**changes) -> object:
    import json

    def edit(arr):
        state = json.loads(str(arr))
        state.update(changes)
        return np.array(json.dumps(state))

    return _npz_edit("trainer.state", edit)


# fmt: off
DAMAGED = [
    pytest.param(_file_edit("checkpoints/last.npz", lambda b: b""), ["last.npz: unreadable checkpoint (empty file)"],
                 id="checkpoint-empty"),
    pytest.param(_file_edit("checkpoints/last.npz", lambda b: b[: len(b) // 2]), ["last.npz: unreadable checkpoint"],
                 id="checkpoint-truncated"),
    pytest.param(_file_edit("checkpoints/last.npz", lambda b: b"\x00garbage" * 40), ["last.npz: unreadable checkpoint"],
                 id="checkpoint-not-a-zip"),
    pytest.param(_npz_edit("layers.0.W", lambda a: a[:1]), ["last.npz: does not match", "layers.0.W", "float64[2, 4]"],
                 id="checkpoint-param-shape"),
    pytest.param(_npz_edit("layers.0.W", lambda a: a.astype(np.float32)),
                 ["last.npz: does not match", "layers.0.W: float32[2, 4], expected float64[2, 4]"],
                 id="checkpoint-param-dtype"),
    pytest.param(_npz_edit("layers.1.b", None), ["last.npz: does not match", "layers.1.b"], id="checkpoint-param-missing"),
    pytest.param(_npz_edit("optim.exp_avg.layers.0.W", lambda a: a.astype(np.float32)),
                 ["last.npz: does not match", "optimizer state 'exp_avg' must be float64"],
                 id="checkpoint-optimizer-state-dtype"),
    pytest.param(_npz_edit("optim.exp_avg_sq.layers.1.W", lambda a: a.ravel()),
                 ["last.npz: does not match", "optim.exp_avg_sq.layers.1.W: shape [4]"],
                 id="checkpoint-optimizer-state-shape"),
    pytest.param(_npz_edit("optim.step", lambda a: a.astype(np.float64)),
                 ["last.npz: does not match", "optimizer state 'step' must be int64"],
                 id="checkpoint-optimizer-step-dtype"),
    pytest.param(_npz_edit("trainer.state", np.array("{not json")), ["last.npz: does not match"],
                 id="checkpoint-state-not-json"),
    pytest.param(_state_edit(step=-3), ["last.npz: does not match", "'step' is -3, expected a non-negative integer"],
                 id="checkpoint-state-negative-step"),
    pytest.param(_state_edit(shuffle_rng={"bit_generator": "MT19937"}),
                 ["last.npz: does not match", "generator state"], id="checkpoint-state-bad-generator"),
    pytest.param(_npz_edit("trainer.has_perm", np.array(True)), ["last.npz: does not match", "trainer.perm"],
                 id="checkpoint-perm-not-a-permutation"),
    pytest.param(_npz_edit("meta.config_sha256", np.array("0" * 64)),
                 ["last.npz: its config record does not match its digest"], id="checkpoint-digest-damaged"),
    pytest.param(_file_edit("config.yaml", lambda b: b.replace(b"optimizer: adam", b"optimizer: {name: adam, lr: 0.1}")),
                 ["config.yaml: training.optimizer is {'name': 'adam', 'lr': 0.1}", "trained with 'adam'"],
                 id="config-edited-optimizer"),
    pytest.param(_file_edit("config.yaml", lambda b: b.replace(b"dropout: 0.2", b"dropout: 0.3")),
                 ["config.yaml: model.dropout is 0.3 but the checkpoint was trained with 0.2"], id="config-edited-dropout"),
    pytest.param(_file_edit("config.yaml", lambda b: b.replace(b"  - 4\n", b"  - 5\n")),
                 ["config.yaml: model.hidden[0] is 5 but the checkpoint was trained with 4"], id="config-edited-hidden"),
    pytest.param(_file_edit("metrics.csv", lambda b: b.replace(b"\n1,", b"\nzz,", 1)),
                 ["metrics.csv: line 3 is not a row dlexp wrote (column 'epoch' holds 'zz', not a number)"],
                 id="metrics-garbage-row"),
    pytest.param(_file_edit("metrics.csv", lambda b: b.replace(b"\n", b"\n1,2,3\n", 1)),
                 ["metrics.csv: line 2 is not a row dlexp wrote (3 fields, expected 9)"], id="metrics-short-row"),
    pytest.param(_file_edit("metrics.csv", lambda b: b.replace(b"train_loss", b"loss", 1)),
                 ["metrics.csv: columns 'epoch,step,loss,", "differ from the 9 this version writes",
                  "('epoch,step,train_loss,"],
                 id="metrics-renamed-column"),
    pytest.param(_file_edit("metrics.csv", lambda b: b.split(b"\n2,")[0] + b"\n"),
                 ["metrics.csv: has rows up to epoch 1 but the checkpoint is at epoch 2"], id="metrics-rows-lost"),
    pytest.param(_file_edit("grad_norms.csv", lambda b: b.replace(b"\n1,1,0,W,", b"\n1,1,0,W,\xff\xfe", 1)),
                 ["grad_norms.csv: not UTF-8 text (line 2)"], id="grad-norms-non-utf8"),
    pytest.param(_file_edit("layer_stats.csv", lambda b: b.replace(b",relu,", b",relu,\x1b[31m", 1)),
                 ["layer_stats.csv: line 2 is not a row dlexp wrote", "column 'act_mean' holds", "\\x1b[31m"],
                 id="layer-stats-escape-in-number"),
]
# fmt: on


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    from dlexp.config import validate_mapping, yaml_load
    from dlexp.experiment import run

    base = tmp_path_factory.mktemp("finished")
    result = run(validate_mapping(yaml_load(RUN_OK), "exp.yaml"), base_dir=base, runs_dir=base / "runs")
    assert result.status == "completed"
    return result.run_dir


@pytest.mark.parametrize("damage, expect", DAMAGED)
def test_a_damaged_run_is_refused_whole(cli, tmp_path, finished_run, damage, expect):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    damage(run)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    result = cli("train", "--resume", run, cwd=tmp_path)
    line = assert_one_line_error(result, [str(run), *expect])
    assert "\x1b" not in line
    after = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    assert after == before  # nothing cut back, rewritten or added


def test_config_edits_that_do_not_change_the_run_are_accepted(cli, tmp_path, finished_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    summary = run / "summary.json"
    summary.write_text(summary.read_text().replace('"completed"', '"interrupted"'))
    with open(run / "config.yaml", "a", encoding="utf-8") as fh:
        fh.write("# a note added by hand\n")
    result = cli("train", "--resume", run, "--quiet", cwd=tmp_path)
    assert result.code == 0, result.stderr


def test_a_run_without_a_checkpoint_starts_over_from_its_config(cli, tmp_path, finished_run):
    """Stopped before its first checkpoint: nothing of the first start is kept (init.npz included), so an
    edited config.yaml gives the run that config describes, equal to a fresh one."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "summary.json").write_text('{"status": "running"}')
    (run / "checkpoints" / "last.npz").unlink()
    (run / "checkpoints" / "final.npz").unlink()
    config = run / "config.yaml"
    config.write_text(config.read_text().replace("seed: 1", "seed: 2"))
    assert cli("train", "--resume", run, "--quiet", cwd=tmp_path).code == 0
    assert cli("train", config, "--runs-dir", tmp_path / "fresh", "--quiet", cwd=tmp_path).code == 0
    fresh = next((tmp_path / "fresh").iterdir())
    for name in ["metrics.csv", "grad_norms.csv", "checkpoints/init.npz", "checkpoints/final.npz"]:
        assert (run / name).read_bytes() == (fresh / name).read_bytes(), name
