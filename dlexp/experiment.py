"""Run an experiment from a validated config: the one entry point the CLI, sweeps and tests call.

``prepare`` does every check that can fail on user input (data, loss/task/output agreement) and
builds the pieces without touching the disk; ``run`` then creates the run directory and trains;
``resume`` continues a stopped run from ``checkpoints/last.npz`` in the same directory.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into four independent generators —
data (synthetic draw and split), init (weights), shuffle (batch order), dropout (masks) — so for a
given seed every optimizer in a comparison starts from the same weights and sees the same batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlexp import __version__
from dlexp import rundir as rd
from dlexp.config import (
    ExperimentConfig,
    check_parameter_count,
    load_mapping,
    parse_yaml_mapping,
    resolved_dict,
    validate_mapping,
)
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


def _check_model_size(cfg: ExperimentConfig, n_inputs: int, n_outputs: int, shown: str, bound: str = "") -> None:
    """The parameter count for the data's widths against the cap, before the model exists.

    ``bound="at least "`` when the widths are lower bounds (a CSV's feature columns, counted before any
    is checked or encoded; one-hot encoding can only add inputs).
    """
    where = cfg.data.path if cfg.data.source == "csv" else f"synthetic {cfg.data.kind}"
    why = f"; {n_inputs:,} inputs and {n_outputs:,} outputs from the data, {where}"
    if bound:
        why = f"; {n_inputs:,} feature columns in {where}"
    try:
        check_parameter_count([n_inputs, *cfg.model.hidden_sizes(), n_outputs], cfg.model.batchnorm, bound, why)
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None


def _check_target_memory(dataset, loss, n_outputs: int, itemsize: int, shown: str) -> None:
    """Refuse one-hot targets that could not fit in memory (many rows times many classes)."""
    if dataset.task != "classification" or n_outputs == 1 or loss.name == "sparse_cce":
        return
    rows = len(dataset.X_train) + len(dataset.X_val) + len(dataset.X_test)
    needed = rows * n_outputs * itemsize
    if needed > MAX_ACTIVATION_BYTES:
        raise _field_error(shown, "training.loss", f"one-hot targets for {rows:,} rows x {n_outputs:,} classes "
                           f"need about {needed / 2**30:.1f} GiB, above the limit of "
                           f"{MAX_ACTIVATION_BYTES / 2**30:.0f} GiB; use sparse_cce, or fewer rows or classes")


def prepare(cfg: ExperimentConfig, base_dir: Path, shown: str = "config") -> Prepared:
    """Load data and build model, loss, optimizer and schedule. Raises DlexpError; writes nothing."""
    from dlexp.data import load_data

    rngs = make_generators(cfg.seed)
    try:
        dataset = load_data(cfg.data, Path(base_dir), rngs["data"],
                            check_inputs=lambda n: _check_model_size(cfg, n, 1, shown, "at least "))
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
    _check_model_size(cfg, dataset.X_train.shape[1], n_outputs, shown)
    _check_activation_memory(cfg, len(dataset.X_train), n_outputs, dtype.itemsize, shown)
    _check_target_memory(dataset, loss, n_outputs, dtype.itemsize, shown)
    try:
        model = MLP(dataset.X_train.shape[1], cfg.model.hidden_sizes(), n_outputs,
                    activation=cfg.model.activation, init=cfg.model.init, dropout=cfg.model.dropout,
                    dropout_mode=cfg.model.dropout_mode, norm=cfg.model.normalization(),
                    residual=cfg.model.residual_every(),
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
                   divergence_loss_factor=t.divergence.loss_factor, divergence_grad_norm=t.divergence.grad_norm_max,
                   grad_every=p.cfg.logging.grad_every, histograms_every=p.cfg.logging.histograms_every,
                   shuffle_rng=p.rngs["shuffle"], dropout_rng=p.rngs["dropout"], callbacks=callbacks, test=p.test)


class RunWriter(Callback):
    """Writes the CSVs and checkpoints of a run directory as records arrive."""

    def __init__(self, run_dir: Path, classification: bool, checkpoint_every: int, started: float,
                 config_record: dict[str, np.ndarray], histograms: bool = False, log_steps: bool = False,
                 test: bool = False):
        self.run_dir = run_dir
        self.metrics = rd.CsvLog(run_dir / rd.METRICS, rd.metrics_columns(classification, test))
        self.grads = rd.CsvLog(run_dir / rd.GRAD_NORMS, rd.GRAD_COLUMNS)
        self.layers = rd.CsvLog(run_dir / rd.LAYER_STATS, rd.LAYER_COLUMNS)
        self.timing = rd.CsvLog(run_dir / rd.TIMING, rd.TIMING_COLUMNS)
        self.histograms = rd.CsvLog(run_dir / rd.HISTOGRAMS, rd.HISTOGRAM_COLUMNS) if histograms else None
        self.steps = rd.CsvLog(run_dir / rd.STEPS, rd.STEP_COLUMNS) if log_steps else None
        self.logs = [log for log in (self.grads, self.layers, self.histograms, self.steps, self.metrics, self.timing)
                     if log]
        self.checkpoint_every = checkpoint_every
        self.started = started
        self.elapsed_before = 0.0
        self.config_record = config_record
        self.signals = SignalStop()
        self.checkpoint_step: int | None = None  # step of the last checkpoint written or resumed from

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def on_epoch(self, row):
        with self.signals.held():
            for log in self.logs[:-2]:  # the epoch's step rows reach the disk before its metrics row
                log.flush()
            self.metrics.write([row], flush=True)
            self.timing.write([{"epoch": row["epoch"], "step": row["step"], "elapsed_s": round(self.elapsed(), 4)}],
                              flush=True)

    def on_step_rows(self, grad_rows, layer_rows):
        self.grads.write(grad_rows)
        self.layers.write(layer_rows)

    def on_histograms(self, rows):
        self.histograms.write(rows)

    def on_step(self, row):
        self.steps.write([row])

    def on_epoch_end(self, trainer):
        if self.checkpoint_every and trainer.epoch % self.checkpoint_every == 0:
            self.checkpoint(trainer)

    def checkpoint(self, trainer):
        with self.signals.held():
            for log in self.logs:
                log.flush()  # every row up to the checkpointed step is on disk before the checkpoint
            arrays = trainer.checkpoint_arrays()
            arrays["meta.elapsed_s"] = np.array(self.elapsed())
            arrays.update(self.config_record)
            self.save(save_npz_atomic, self.run_dir / "checkpoints" / "last.npz", arrays)
            self.checkpoint_step = trainer.step

    def save(self, write, path: Path, *args) -> None:
        """``write(path, *args)`` (an atomic save); a full disk becomes one line naming the file, and the
        file it was to replace is kept."""
        try:
            write(path, *args)
        except OSError as exc:  # atomic_write has removed its temporary file
            raise DlexpError(f"{path}: cannot write ({exc.strerror}); the previous file is kept and the run "
                             "stopped") from None

    def close(self):
        for log in self.logs:
            log.close()


class SignalStop:
    """What :func:`stop_on_signals` saw. The first signal asks the trainer to stop after its step and
    decides the exit code; a second one stops a step at once, except while :meth:`held` (a checkpoint
    or the summary is being written), where it is only noted: a file is never cut by a signal."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.holding = False

    @contextmanager
    def held(self):
        before, self.holding = self.holding, True
        try:
            yield self
        finally:
            self.holding = before


@contextmanager
def stop_on_signals(trainer: Trainer, ignore_after_stop: bool = False):
    """SIGINT/SIGTERM ask the trainer to stop after the current step (main thread only).

    ``ignore_after_stop``: for a caller that exits as soon as the run returns (the CLI). Once a signal
    has stopped the run, further ones are ignored to the end of the process instead of meeting the
    old handlers, so a late one can neither kill the process before it reports nor change its exit code.
    """
    stop = SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.signal is None:
            stop.signal = signum
            trainer.request_stop("interrupted")
        elif not stop.holding:
            raise KeyboardInterrupt  # a second signal: stop now; the last checkpoint stays the one to resume

    old = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, signal.SIG_IGN if ignore_after_stop and stop.signal is not None else h)


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


def config_record(cfg: ExperimentConfig) -> dict[str, np.ndarray]:
    """The run's config as checkpoints record it: the resolved config as JSON (``meta.config``, to name
    what changed) and its SHA-256 (``meta.config_sha256``). The dlexp version is left out: it does not
    change the run. ``cfg`` is the config as read back from the run's ``config.yaml``."""
    data = resolved_dict(cfg)
    data.pop("dlexp_version", None)
    text = json.dumps(data, separators=(",", ":"))
    return {"meta.config": np.array(text), "meta.config_sha256": np.array(hashlib.sha256(text.encode()).hexdigest())}


def first_difference(old: Any, new: Any, loc: tuple = ()) -> tuple | None:
    """The path of the first place where two JSON values differ (None if equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in old or key not in new:
                return (*loc, key)
            found = first_difference(old[key], new[key], (*loc, key))
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = first_difference(a, b, (*loc, i))
            if found is not None:
                return found
        return None
    return None if old == new and type(old) is type(new) else loc


def check_config_record(arrays: dict[str, np.ndarray], ckpt: Path, current: dict[str, np.ndarray],
                        config_path: Path) -> None:
    """DlexpError unless the checkpoint was written for the config now in ``config_path``."""
    from dlexp.config import _format_loc, _short_repr

    recorded, digest = arrays.get("meta.config"), arrays.get("meta.config_sha256")
    if recorded is None or digest is None:
        raise DlexpError(f"{ckpt}: holds no record of the config it was trained with (written by an older "
                         "dlexp?); start a new run")
    text = str(recorded)
    if hashlib.sha256(text.encode()).hexdigest() != str(digest):
        raise DlexpError(f"{ckpt}: its config record does not match its digest; the checkpoint is damaged")
    if str(current["meta.config_sha256"]) == str(digest):
        return
    old, new = json.loads(text), json.loads(str(current["meta.config"]))
    loc = first_difference(old, new) or ()
    pick = [old, new]
    for part in loc:
        pick = [v[part] if isinstance(v, (dict, list)) and (part in v if isinstance(v, dict) else part < len(v))
                else "(absent)" for v in pick]
    raise DlexpError(f"{config_path}: {_format_loc(loc) or '(top level)'} is {_short_repr(pick[1])} but the "
                     f"checkpoint was trained with {_short_repr(pick[0])}; restore the file, or start a new run "
                     f"with `dlexp train {config_path}`")


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


def _train(p: Prepared, run_dir: Path, trainer: Trainer, writer: RunWriter, wall_before: float,
           ignore_after_stop: bool) -> RunResult:
    started = time.perf_counter()
    with stop_on_signals(trainer, ignore_after_stop) as stop:
        writer.signals = stop
        try:
            try:
                try:
                    result = trainer.fit(p.train, p.val)
                finally:
                    stop.holding = True  # from here on a signal is only noted: the files are written whole
            except KeyboardInterrupt:  # a second signal stopped a step half-done: keep the last checkpoint
                result = None
            summary = _finish(p, run_dir, trainer, writer, result, wall_before + time.perf_counter() - started,
                              stop.signal)
        except Exception as exc:  # a run file could not be written (a full disk): say so in the summary
            _record_failure(p, run_dir, writer, exc)
            raise
    return RunResult(run_dir=run_dir, summary=summary, status=summary["status"], signal=stop.signal,
                     history=list(trainer.history))


def _finish(p: Prepared, run_dir: Path, trainer: Trainer, writer: RunWriter, result, wall: float,
            signal_number: int | None) -> dict[str, Any]:
    """Close the logs, write the last checkpoints and the summary; ``result`` None: stopped mid-step."""
    writer.close()
    stopped_mid_step = result is None
    if stopped_mid_step:
        result = trainer._result("interrupted")
    status = result.status
    if status == "interrupted" and not stopped_mid_step:
        writer.checkpoint(trainer)
    elif status == "completed":
        writer.save(p.model.save, run_dir / "checkpoints" / "final.npz")
        if p.cfg.training.checkpoint_every:
            writer.checkpoint(trainer)
    summary = build_summary(p, run_dir, result, wall, status)
    if signal_number is not None:
        summary["signal"] = int(signal_number)
    if status == "interrupted":
        summary["checkpoint_step"] = writer.checkpoint_step  # where --resume continues (None: from the start)
    rd.write_json_atomic(run_dir / rd.SUMMARY, summary)
    return summary


def _record_failure(p: Prepared, run_dir: Path, writer: RunWriter, exc: Exception) -> None:
    """Best effort on the way out of a failed run: close the logs and mark the summary ``failed``."""
    try:
        writer.close()
    except Exception:  # the first error is the one to report
        pass
    summary = {"status": "failed", "name": p.cfg.name, "run_dir": str(run_dir), "error": str(exc),
               "versions": _versions()}
    try:
        rd.write_json_atomic(run_dir / rd.SUMMARY, summary)
    except OSError:  # no room for a second copy on a full disk: overwrite in place, in the old one's space
        try:
            (run_dir / rd.SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError:
            pass


def run(cfg: ExperimentConfig, *, base_dir: Path, runs_dir: Path, shown: str = "config",
        callbacks: list[Callback] | None = None, prepared: Prepared | None = None,
        ignore_after_stop: bool = False) -> RunResult:
    """Validate everything, create a fresh run directory, train, and write the summary.

    The run directory is locked (:class:`~dlexp.rundir.RunLock`) while it is written.
    ``ignore_after_stop``: see :func:`stop_on_signals`."""
    p = prepared or prepare(cfg, base_dir, shown)
    cfg = p.cfg  # with what was resolved from the data (the CSV delimiter)
    run_dir = rd.create_run_dir(Path(runs_dir), cfg.name or "run")
    with rd.RunLock(run_dir):
        text = resolved_config_text(cfg, base_dir, run_dir)
        rd.write_text_atomic(run_dir / rd.CONFIG, text)
        p.dataset.preprocessing.save(run_dir)
        record = config_record(validate_mapping(parse_yaml_mapping(text, rd.CONFIG), rd.CONFIG))
        p.model.save(run_dir / "checkpoints" / "init.npz")
        rd.write_json_atomic(run_dir / rd.SUMMARY, {"status": "running", "name": cfg.name, "run_dir": str(run_dir),
                                                    "versions": _versions()})
        writer = RunWriter(run_dir, p.train.labels is not None, cfg.training.checkpoint_every, time.perf_counter(),
                           record, histograms=cfg.logging.histograms_every > 0, log_steps=p.schedule.per_step,
                           test=p.test is not None)
        trainer = make_trainer(p, [writer, *(callbacks or [])])
        return _train(p, run_dir, trainer, writer, 0.0, ignore_after_stop)


def _read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Every array of a checkpoint, or DlexpError naming it (empty, cut short, not an npz, pickled)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:  # a damaged zip fails in many ways (EOFError, BadZipFile, zlib, ValueError...)
        what = "empty file" if path.stat().st_size == 0 else _first_sentence(exc) or type(exc).__name__
        raise DlexpError(f"{path}: unreadable checkpoint ({what}); only plain numeric .npz files written "
                         "by dlexp are accepted") from None


def resume(run_dir: Path, *, callbacks: list[Callback] | None = None, ignore_after_stop: bool = False) -> RunResult:
    """Continue a run from ``checkpoints/last.npz``; the result equals an uninterrupted run's bit for bit.

    Refused (DlexpError) while another process writes the directory, when ``config.yaml`` no longer
    matches the config the checkpoint was trained with, and when a run file is damaged."""
    run_dir = Path(run_dir)
    shown = str(run_dir)
    if not run_dir.is_dir():
        raise DlexpError(f"{shown}: not a directory; --resume takes a run directory")
    if not rd.is_run_dir(run_dir):
        raise DlexpError(f"{shown}: not a dlexp run directory (no config.yaml / metrics.csv)")
    with rd.RunLock(run_dir):
        return _resume_locked(run_dir, shown, callbacks, ignore_after_stop)


def _resume_locked(run_dir: Path, shown: str, callbacks: list[Callback] | None, ignore_after_stop: bool) -> RunResult:
    ckpt = run_dir / "checkpoints" / "last.npz"
    summary_path = run_dir / rd.SUMMARY
    if summary_path.exists():
        try:
            status = rd.read_summary(run_dir).get("status")
        except ValueError:
            status = "running"
        if status == "completed":
            raise DlexpError(f"{shown}: the run already completed; nothing to resume")
    config_path = run_dir / rd.CONFIG
    cfg = validate_mapping(load_mapping(config_path), str(config_path))
    p = prepare(cfg, run_dir, str(config_path))
    record = config_record(cfg)
    arrays = _read_checkpoint(ckpt) if ckpt.exists() else None
    if arrays is not None:
        check_config_record(arrays, ckpt, record, config_path)
    classification = p.train.labels is not None
    trainer = make_trainer(p, [])
    if arrays is not None:
        try:
            trainer.restore(arrays, n_train=len(p.train))
        except (KeyError, ValueError) as exc:
            raise DlexpError(f"{ckpt}: does not match this run's config ({_first_sentence(exc)})") from None
        step, epoch = trainer.step, trainer.epoch
        elapsed_before = float(arrays.get("meta.elapsed_s", 0.0))
    else:  # stopped before the first checkpoint: start over from config.yaml as it is (epoch 0 logged again)
        step, epoch, elapsed_before = 0, -1, 0.0
    logs = [(rd.METRICS, rd.metrics_columns(classification, p.test is not None), "epoch", epoch),
            (rd.TIMING, rd.TIMING_COLUMNS, "epoch", epoch),
            (rd.GRAD_NORMS, rd.GRAD_COLUMNS, "step", step), (rd.LAYER_STATS, rd.LAYER_COLUMNS, "step", step),
            (rd.HISTOGRAMS, rd.HISTOGRAM_COLUMNS, "step", step), (rd.STEPS, rd.STEP_COLUMNS, "step", step)]
    cut = {name: rd.rows_up_to(run_dir / name, columns, key, last) for name, columns, key, last in logs}
    kept = (cut[rd.METRICS] or ("", None))[1]
    if arrays is not None and kept != epoch:
        raise DlexpError(f"{run_dir / rd.METRICS}: has rows up to epoch {kept} but the checkpoint is at epoch "
                         f"{epoch}; this run file is damaged")
    for name, text in cut.items():  # every file checked: now cut them back to the checkpoint
        if text is not None:
            rd.write_text_atomic(run_dir / name, text[0])
    if arrays is None:  # nothing of the first start survives, so the run is the one config.yaml describes
        p.model.save(run_dir / "checkpoints" / "init.npz")
    rd.write_json_atomic(summary_path, {"status": "running", "name": cfg.name, "run_dir": str(run_dir),
                                        "versions": _versions()})
    writer = RunWriter(run_dir, classification, cfg.training.checkpoint_every, time.perf_counter(), record,
                       histograms=cfg.logging.histograms_every > 0, log_steps=p.schedule.per_step,
                       test=p.test is not None)
    writer.elapsed_before = elapsed_before
    writer.checkpoint_step = step if arrays is not None else None
    trainer.callbacks = [writer, *(callbacks or [])]
    return _train(p, run_dir, trainer, writer, elapsed_before, ignore_after_stop)
