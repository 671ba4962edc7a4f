"""Run an experiment from a validated config: the one entry point the CLI, sweeps and tests call.

``prepare`` does every check that can fail on user input (data, loss/task/output agreement) and
builds the pieces without touching the disk; ``run`` then creates the run directory and trains;
``resume`` continues a stopped run from ``checkpoints/last.npz`` in the same directory.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into four independent generators —
data (synthetic draw and split), init (weights), shuffle (batch order), dropout (masks) — so for a
given seed every optimizer in a comparison starts from the same weights and sees the same batches.
"""

from __future__ import annotations

import os
import platform
import signal
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlexp import __version__
from dlexp import rundir as rd
from dlexp.config import ExperimentConfig, resolved_dict, validate_mapping
from dlexp.errors import ConfigError, DataError, DlexpError
from dlexp.nn.losses import make_loss
from dlexp.nn.model import MLP, save_npz_atomic
from dlexp.optim import make_optimizer
from dlexp.optim.schedules import make_schedule
from dlexp.trainer import Callback, Split, Trainer, split_metrics

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def make_generators(seed: int) -> dict[str, np.random.Generator]:
    data, init, shuffle, dropout = np.random.SeedSequence(seed).spawn(4)
    return {"data": np.random.default_rng(data), "init": np.random.default_rng(init),
            "shuffle": np.random.default_rng(shuffle), "dropout": np.random.default_rng(dropout)}


@dataclass
class Prepared:
    cfg: ExperimentConfig
    base_dir: Path
    dataset: Any
    model: MLP
    loss: Any
    optimizer: Any
    schedule: Any
    train: Split
    val: Split | None
    test: Split | None
    rngs: dict[str, np.random.Generator]
    loss_name: str = ""


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    status: str
    signal: int | None = None
    history: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted" and self.signal in SIGNAL_EXIT:
            return SIGNAL_EXIT[self.signal]
        if self.status == "interrupted":
            return 130
        return 1 if self.status == "diverged" else 0


def _first_sentence(exc: Exception) -> str:
    return " ".join(str(exc).split(". ")[0].split())


def _field_error(cfg_path: str, field: str, message: str) -> ConfigError:
    return ConfigError(f"{cfg_path}: {field}: {message}")


def resolve_loss(cfg: ExperimentConfig, task: str, n_classes: int | None, shown: str):
    spec = cfg.training.loss
    if spec == "auto":
        if task == "regression":
            spec = "mse"
        else:
            spec = "bce" if n_classes == 2 else "cce"
    loss = make_loss(spec)
    if loss.classification and task == "regression":
        raise _field_error(shown, "training.loss", f"'{loss.name}' is a classification loss but the data is a "
                           "regression task; use mse, mae or huber")
    if loss.name == "bce" and task == "classification" and n_classes != 2:
        raise _field_error(shown, "training.loss", f"bce is for two classes, the data has {n_classes}; "
                           "use cce or sparse_cce")
    out_act = cfg.model.output_activation
    if out_act == "auto":
        out_act = loss.output_activation
    elif loss.fused and out_act != loss.output_activation:
        raise _field_error(shown, "model.output_activation", f"{loss.name} fuses {loss.output_activation} into the "
                           f"loss; use 'auto' or '{loss.output_activation}' (got '{out_act}')")
    if task == "classification":
        n_outputs = 1 if (loss.name == "bce" or (not loss.fused and n_classes == 2)) else n_classes
    else:
        n_outputs = None
    return loss, out_act, n_outputs


MAX_ACTIVATION_BYTES = 4 * 2**30  # one training batch's forward/backward arrays; refused above this
EVAL_CHUNK = 8192  # rows the trainer evaluates at once


def _check_activation_memory(cfg: ExperimentConfig, n_train: int, n_outputs: int, itemsize: int, shown: str) -> None:
    """Refuse a batch whose activations could not fit in memory, before any is allocated."""
    batch = cfg.training.batch_size
    rows = max(n_train if batch == "full" else min(batch, n_train), min(EVAL_CHUNK, n_train))
    units = sum(cfg.model.hidden_sizes()) + n_outputs
    needed = rows * units * itemsize * 4  # pre-activation, activation, their gradients
    if needed > MAX_ACTIVATION_BYTES:
        raise _field_error(shown, "training.batch_size", f"{rows:,} rows per batch through {units:,} units need "
                           f"about {needed / 2**30:.1f} GiB of activations, above the limit of "
                           f"{MAX_ACTIVATION_BYTES / 2**30:.0f} GiB; use a smaller batch_size or fewer/narrower layers")


def prepare(cfg: ExperimentConfig, base_dir: Path, shown: str = "config") -> Prepared:
    """Load data and build model, loss, optimizer and schedule. Raises DlexpError; writes nothing."""
    from dlexp.data import load_data

    rngs = make_generators(cfg.seed)
    try:
        dataset = load_data(cfg.data, Path(base_dir), rngs["data"])
    except DataError as exc:
        if cfg.data.source == "csv":
            raise  # names the CSV file as written in the config
        raise DataError(f"{shown}: {exc}") from None  # synthetic data: the config is the file to fix
    if len(dataset.X_train) < 1:
        raise ConfigError(f"{shown}: data: the training split is empty")
    if cfg.data.source == "csv" and cfg.data.delimiter is None:  # the resolved config states what was detected
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"delimiter": dataset.delimiter})})
    task = dataset.task
    loss, out_act, n_outputs = resolve_loss(cfg, task, dataset.n_classes, shown)
    if n_outputs is None:
        n_outputs = dataset.y_train.shape[1]
    batch = cfg.training.batch_size
    if cfg.model.batchnorm and (batch == 1 or len(dataset.X_train) < 2):
        raise _field_error(shown, "training.batch_size", "BatchNorm needs at least 2 samples per batch (got 1)")
    stopping = cfg.training.early_stopping
    if stopping is not None and stopping.monitor.endswith("_acc") and task != "classification":
        raise _field_error(shown, "training.early_stopping.monitor", f"'{stopping.monitor}' needs a classification "
                           "task but the data is regression; use val_loss or train_loss")
    dtype = np.dtype(cfg.dtype)
    _check_activation_memory(cfg, len(dataset.X_train), n_outputs, dtype.itemsize, shown)
    try:
        model = MLP(dataset.X_train.shape[1], cfg.model.hidden_sizes(), n_outputs,
                    activation=cfg.model.activation, init=cfg.model.init, dropout=cfg.model.dropout,
                    dropout_mode=cfg.model.dropout_mode, batchnorm=cfg.model.batchnorm,
                    output_activation=out_act, dtype=cfg.dtype, rng=rngs["init"])
        optimizer = make_optimizer(cfg.training.optimizer)
        schedule = make_schedule(cfg.training.schedule)
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None

    dataset.preprocessing.output_activation = out_act
    dataset.preprocessing.n_outputs = n_outputs

    def split(X, y):
        if len(X) == 0:
            return None
        labels = y if task == "classification" else None
        return Split(np.ascontiguousarray(X, dtype=dtype), loss.targets(y, n_outputs, dtype), labels,
                     dataset.target_std)

    return Prepared(cfg=cfg, base_dir=Path(base_dir), dataset=dataset, model=model, loss=loss,
                    optimizer=optimizer, schedule=schedule, train=split(dataset.X_train, dataset.y_train),
                    val=split(dataset.X_val, dataset.y_val), test=split(dataset.X_test, dataset.y_test),
                    rngs=rngs, loss_name=loss.name)


def make_trainer(p: Prepared, callbacks: list[Callback]) -> Trainer:
    t = p.cfg.training
    return Trainer(p.model, p.loss, p.optimizer, p.schedule, epochs=t.epochs, batch_size=t.batch_size,
                   shuffle=t.shuffle, l1=t.l1, l2=t.l2, clip_grad_norm=t.clip_grad_norm,
                   clip_grad_value=t.clip_grad_value,
                   early_stopping=t.early_stopping.model_dump() if t.early_stopping else None,
                   grad_every=p.cfg.logging.grad_every, shuffle_rng=p.rngs["shuffle"],
                   dropout_rng=p.rngs["dropout"], callbacks=callbacks, test=p.test)


class RunWriter(Callback):
    """Writes the CSVs and checkpoints of a run directory as records arrive."""

    def __init__(self, run_dir: Path, classification: bool, checkpoint_every: int, started: float,
                 log_steps: bool = False, test: bool = False):
        self.run_dir = run_dir
        self.metrics = rd.CsvLog(run_dir / rd.METRICS, rd.metrics_columns(classification, test))
        self.grads = rd.CsvLog(run_dir / rd.GRAD_NORMS, rd.GRAD_COLUMNS)
        self.layers = rd.CsvLog(run_dir / rd.LAYER_STATS, rd.LAYER_COLUMNS)
        self.timing = rd.CsvLog(run_dir / rd.TIMING, rd.TIMING_COLUMNS)
        self.steps = rd.CsvLog(run_dir / rd.STEPS, rd.STEP_COLUMNS) if log_steps else None
        self.logs = [log for log in (self.grads, self.layers, self.steps, self.metrics, self.timing) if log]
        self.checkpoint_every = checkpoint_every
        self.started = started
        self.elapsed_before = 0.0

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def on_epoch(self, row):
        for log in self.logs[:-2]:  # the epoch's step rows reach the disk before its metrics row
            log.flush()
        self.metrics.write([row], flush=True)
        self.timing.write([{"epoch": row["epoch"], "step": row["step"], "elapsed_s": round(self.elapsed(), 4)}],
                          flush=True)

    def on_step_rows(self, grad_rows, layer_rows):
        self.grads.write(grad_rows)
        self.layers.write(layer_rows)

    def on_step(self, row):
        self.steps.write([row])

    def on_epoch_end(self, trainer):
        if self.checkpoint_every and trainer.epoch % self.checkpoint_every == 0:
            self.checkpoint(trainer)

    def checkpoint(self, trainer):
        for log in self.logs:
            log.flush()  # every row up to the checkpointed step is on disk before the checkpoint
        arrays = trainer.checkpoint_arrays()
        arrays["meta.elapsed_s"] = np.array(self.elapsed())
        save_npz_atomic(self.run_dir / "checkpoints" / "last.npz", arrays)

    def close(self):
        for log in self.logs:
            log.close()


@contextmanager
def stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM ask the trainer to stop after the current step (main thread only)."""
    received: dict[str, int] = {}
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        if "signal" in received:  # a second signal: stop now
            signal.default_int_handler(signum, frame)
        received["signal"] = signum
        trainer.request_stop("interrupted")

    old = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _versions() -> dict[str, str]:
    return {"dlexp": __version__, "numpy": np.__version__, "python": platform.python_version()}


def resolved_config_text(cfg: ExperimentConfig, base_dir: Path, run_dir: Path) -> str:
    data = resolved_dict(cfg)
    if data["data"].get("path"):
        absolute = (Path(base_dir) / data["data"]["path"]).resolve()
        try:
            data["data"]["path"] = os.path.relpath(absolute, Path(run_dir).resolve())
        except ValueError:
            data["data"]["path"] = str(absolute)
    data["dlexp_version"] = __version__
    header = f"# dlexp {__version__}: resolved config; `dlexp train` on this file reproduces the run.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def build_summary(p: Prepared, run_dir: Path, result, wall_s: float, status: str) -> dict[str, Any]:
    ratios = rd.grad_ratios(run_dir / rd.GRAD_NORMS)
    summary = {
        "status": status,
        "name": p.cfg.name,
        "run_dir": str(run_dir),
        "task": p.dataset.task,
        "loss": p.loss_name,
        "optimizer": p.optimizer.name,
        "lr": p.optimizer.lr,
        "n_params": p.model.n_params,
        "epochs": result.epochs if result else 0,
        "steps": result.steps if result else 0,
        "stopped_early": bool(result.stopped_early) if result else False,
        **({"stop_reason": result.stop_reason} if result and result.stop_reason else {}),
        "final": result.final if result else {},
        "best": result.best if result else {},
        "wall_s": round(wall_s, 4),
        "grad_ratio": ratios.get("last"),
        "grad_ratio_first_epoch": ratios.get("first"),
        "divergence": result.divergence if result else None,
        "class_names": p.dataset.class_names,
        "data": p.dataset.description,
        "versions": _versions(),
    }
    if p.test is not None and result is not None and status == "completed":
        summary["test"] = {f"test_{name}": value for name, value in split_metrics(p.model, p.loss, p.test).items()}
    return rd.json_safe(summary)


def _train(p: Prepared, run_dir: Path, trainer: Trainer, writer: RunWriter, wall_before: float) -> RunResult:
    started = time.perf_counter()
    with stop_on_signals(trainer) as received:
        try:
            result = trainer.fit(p.train, p.val)
        finally:
            writer.close()
    wall = wall_before + time.perf_counter() - started
    status = result.status
    if status == "interrupted":
        writer.checkpoint(trainer)
    elif status == "completed":
        p.model.save(run_dir / "checkpoints" / "final.npz")
        if p.cfg.training.checkpoint_every:
            writer.checkpoint(trainer)
    summary = build_summary(p, run_dir, result, wall, status)
    if received.get("signal") is not None:
        summary["signal"] = int(received["signal"])
    rd.write_json_atomic(run_dir / rd.SUMMARY, summary)
    return RunResult(run_dir=run_dir, summary=summary, status=status, signal=received.get("signal"),
                     history=list(trainer.history))


def run(cfg: ExperimentConfig, *, base_dir: Path, runs_dir: Path, shown: str = "config",
        callbacks: list[Callback] | None = None, prepared: Prepared | None = None) -> RunResult:
    """Validate everything, create a fresh run directory, train, and write the summary."""
    p = prepared or prepare(cfg, base_dir, shown)
    cfg = p.cfg  # with what was resolved from the data (the CSV delimiter)
    run_dir = rd.create_run_dir(Path(runs_dir), cfg.name or "run")
    rd.write_text_atomic(run_dir / rd.CONFIG, resolved_config_text(cfg, base_dir, run_dir))
    p.dataset.preprocessing.save(run_dir)
    p.model.save(run_dir / "checkpoints" / "init.npz")
    rd.write_json_atomic(run_dir / rd.SUMMARY, {"status": "running", "name": cfg.name, "run_dir": str(run_dir),
                                                "versions": _versions()})
    writer = RunWriter(run_dir, p.train.labels is not None, cfg.training.checkpoint_every, time.perf_counter(),
                       log_steps=p.schedule.per_step, test=p.test is not None)
    trainer = make_trainer(p, [writer, *(callbacks or [])])
    return _train(p, run_dir, trainer, writer, 0.0)


def resume(run_dir: Path, *, callbacks: list[Callback] | None = None) -> RunResult:
    """Continue a run from ``checkpoints/last.npz``; the result equals an uninterrupted run's bit for bit."""
    run_dir = Path(run_dir)
    shown = str(run_dir)
    if not run_dir.is_dir():
        raise DlexpError(f"{shown}: not a directory; --resume takes a run directory")
    if not rd.is_run_dir(run_dir):
        raise DlexpError(f"{shown}: not a dlexp run directory (no config.yaml / metrics.csv)")
    ckpt = run_dir / "checkpoints" / "last.npz"
    summary_path = run_dir / rd.SUMMARY
    if summary_path.exists():
        try:
            status = rd.read_summary(run_dir).get("status")
        except ValueError:
            status = "running"
        if status == "completed":
            raise DlexpError(f"{shown}: the run already completed; nothing to resume")
    from dlexp.config import read_yaml_mapping

    data = read_yaml_mapping(run_dir / rd.CONFIG, f"{shown}/config.yaml")
    cfg = validate_mapping(data, f"{shown}/config.yaml")
    p = prepare(cfg, run_dir, f"{shown}/config.yaml")
    writer_cb: list[Callback] = []
    if ckpt.exists():
        try:
            with np.load(ckpt, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, KeyError, zipfile.BadZipFile) as exc:
            raise DlexpError(f"{ckpt}: unreadable checkpoint ({_first_sentence(exc)}); only plain numeric "
                             ".npz files written by dlexp are accepted") from None
    else:
        arrays = None
    classification = p.train.labels is not None
    trainer = make_trainer(p, writer_cb)
    if arrays is not None:
        try:
            trainer.restore(arrays)
        except (KeyError, ValueError) as exc:
            raise DlexpError(f"{ckpt}: does not match this run's config ({_first_sentence(exc)})") from None
        step, epoch = trainer.step, trainer.epoch
        elapsed_before = float(arrays.get("meta.elapsed_s", 0.0))
    else:  # killed before the first checkpoint: start over in the same directory (epoch 0 logged again)
        step, epoch, elapsed_before = 0, -1, 0.0
    columns = rd.metrics_columns(classification, p.test is not None)
    with open(run_dir / rd.METRICS, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split(",")
    if header != [""] and header != columns:  # e.g. a regression run started before rmse, mae, r2 were logged
        raise DlexpError(f"{run_dir / rd.METRICS}: columns {','.join(header)[:120]} differ from the "
                         f"{len(columns)} this version writes; the run was started by another dlexp version "
                         "and cannot be resumed by this one (train it again)")
    for name in (rd.METRICS, rd.TIMING):
        rd.truncate_csv(run_dir / name, lambda r: int(r["epoch"]) <= epoch)
    for name in (rd.GRAD_NORMS, rd.LAYER_STATS, rd.STEPS):
        rd.truncate_csv(run_dir / name, lambda r: int(r["step"]) <= step)
    rd.write_json_atomic(summary_path, {"status": "running", "name": cfg.name, "run_dir": str(run_dir),
                                        "versions": _versions()})
    writer = RunWriter(run_dir, classification, cfg.training.checkpoint_every, time.perf_counter(),
                       log_steps=p.schedule.per_step, test=p.test is not None)
    writer.elapsed_before = elapsed_before
    trainer.callbacks = [writer, *(callbacks or [])]
    return _train(p, run_dir, trainer, writer, elapsed_before)
