"""Run an experiment from a validated config: the one entry point the CLI, sweeps and tests call.

``prepare`` (:mod:`dlexp.prepare`) does every check that can fail on user input and builds the pieces
without touching the disk; ``run`` then creates the run directory and trains; ``resume`` continues a
stopped run from ``checkpoints/last.npz`` in the same directory. What the run directory holds and
how it is written is :mod:`dlexp.rundir`'s; signals are :mod:`dlexp.signals`'.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlexp import rundir as rd
from dlexp.config import ExperimentConfig, load_mapping, parse_yaml_mapping, validate_mapping
from dlexp.cores import core_to_spare
from dlexp.errors import DlexpError
from dlexp.prepare import (  # noqa: F401  (re-exported: the names callers use)
    EVAL_CHUNK,
    MAX_ACTIVATION_BYTES,
    Prepared,
    _first_sentence,
    make_generators,
    make_trainer,
    prepare,
    resolve_loss,
)
from dlexp.rundir import schema
from dlexp.rundir.formatproc import start_values
from dlexp.rundir.record import check_config_record, config_record, first_difference, resolved_config_text  # noqa: F401
from dlexp.rundir.summary import build_summary, versions
from dlexp.rundir.writer import RunWriter
from dlexp.signals import SIGNAL_EXIT, SignalStop, stop_on_signals  # noqa: F401
from dlexp.trainer import Callback, Trainer


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
        writer.save(p.model.save, run_dir / schema.CHECKPOINTS / schema.FINAL_CHECKPOINT)
        if p.cfg.training.checkpoint_every:
            writer.checkpoint(trainer)
    summary = build_summary(p, run_dir, result, wall, status)
    if signal_number is not None:
        summary["signal"] = int(signal_number)
    if status == "interrupted":
        summary["checkpoint_step"] = writer.checkpoint_step  # where --resume continues (None: from the start)
    rd.write_summary(run_dir, summary)
    return summary


def _record_failure(p: Prepared, run_dir: Path, writer: RunWriter, exc: Exception) -> None:
    """Best effort on the way out of a failed run: close the logs and mark the summary ``failed``."""
    try:
        writer.close()
    except Exception:  # the first error is the one to report
        pass
    summary = {"status": "failed", "name": p.cfg.name, "run_dir": str(run_dir), "error": str(exc),
               "versions": versions()}
    try:
        rd.write_summary(run_dir, summary)
    except OSError:  # no room for a second copy on a full disk: overwrite in place, in the old one's space
        try:
            (run_dir / rd.SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        except OSError:
            pass


def _format_after(background_format: bool | None) -> int | None:
    """The run writer's ``format_process_after`` (checked before anything is written: it reads the
    environment). None: where this process may use a second core."""
    return start_values(core_to_spare() if background_format is None else background_format)


def _writer(p: Prepared, run_dir: Path, record: dict[str, np.ndarray], format_after: int | None) -> RunWriter:
    t, logging = p.cfg.training, p.cfg.logging
    return RunWriter(run_dir, p.train.labels is not None, t.checkpoint_every, time.perf_counter(), record,
                     histograms=logging.histograms_every > 0, log_steps=p.schedule.per_step, test=p.test is not None,
                     checkpoint_every_s=t.checkpoint_every_s,
                     format_process_after=format_after)


def _running(cfg: ExperimentConfig, run_dir: Path) -> dict[str, Any]:
    """The summary of a run in progress."""
    return {"status": "running", "name": cfg.name, "run_dir": str(run_dir), "versions": versions()}


def run(cfg: ExperimentConfig, *, base_dir: Path, runs_dir: Path, shown: str = "config",
        callbacks: list[Callback] | None = None, prepared: Prepared | None = None,
        ignore_after_stop: bool = False, background_format: bool | None = None) -> RunResult:
    """Validate everything, create a fresh run directory, train, and write the summary.

    The run directory is locked (:class:`~dlexp.rundir.RunLock`) while it is written.
    ``ignore_after_stop``: see :func:`stop_on_signals`. ``background_format``: make the step-log text
    in a second process (:class:`~dlexp.rundir.formatproc.FormatProcess`; the same bytes); None: where
    this process may use two cores or more."""
    format_after = _format_after(background_format)
    p = prepared or prepare(cfg, base_dir, shown)
    cfg = p.cfg  # with what was resolved from the data (the CSV delimiter)
    run_dir = rd.create_run_dir(Path(runs_dir), cfg.name or "run")
    with rd.RunLock(run_dir):
        text = resolved_config_text(cfg, base_dir, run_dir)
        rd.write_text_atomic(run_dir / rd.CONFIG, text)
        p.dataset.preprocessing.save(run_dir)
        record = config_record(validate_mapping(parse_yaml_mapping(text, rd.CONFIG), rd.CONFIG))
        p.model.save(run_dir / schema.CHECKPOINTS / schema.INIT_CHECKPOINT)
        rd.write_summary(run_dir, _running(cfg, run_dir))
        writer = _writer(p, run_dir, record, format_after)
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


def resume(run_dir: Path, *, callbacks: list[Callback] | None = None, ignore_after_stop: bool = False,
           background_format: bool | None = None) -> RunResult:
    """Continue a run from ``checkpoints/last.npz``; the result equals an uninterrupted run's bit for bit.

    Refused (DlexpError) while another process writes the directory, when ``config.yaml`` no longer
    matches the config the checkpoint was trained with, and when a run file is damaged."""
    format_after = _format_after(background_format)
    run_dir = Path(run_dir)
    shown = str(run_dir)
    if not run_dir.is_dir():
        raise DlexpError(f"{shown}: not a directory; --resume takes a run directory")
    if not rd.is_run_dir(run_dir):
        raise DlexpError(f"{shown}: not a dlexp run directory (no config.yaml / metrics.csv)")
    with rd.RunLock(run_dir):
        return _resume_locked(run_dir, shown, callbacks, ignore_after_stop, format_after)


def _resume_locked(run_dir: Path, shown: str, callbacks: list[Callback] | None, ignore_after_stop: bool,
                   format_after: int | None) -> RunResult:
    ckpt = run_dir / schema.CHECKPOINTS / schema.LAST_CHECKPOINT
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
        elapsed_before = float(arrays.get(schema.ELAPSED, 0.0))
    else:  # stopped before the first checkpoint: start over from config.yaml as it is (epoch 0 logged again)
        step, epoch, elapsed_before = 0, -1, 0.0
    files = [schema.metrics_file(classification, p.test is not None), schema.TIMING_FILE, schema.GRAD_NORMS_FILE,
             schema.LAYER_STATS_FILE, schema.HISTOGRAMS_FILE, schema.STEPS_FILE]
    last = {"epoch": epoch, "step": step}  # the checkpoint's counters, by which each file is ordered
    cut = {f.name: rd.rows_up_to(run_dir / f.name, f.columns, f.key, last[f.key]) for f in files}
    kept = (cut[rd.METRICS] or ("", None))[1]
    if arrays is not None and kept != epoch:
        raise DlexpError(f"{run_dir / rd.METRICS}: has rows up to epoch {kept} but the checkpoint is at epoch "
                         f"{epoch}; this run file is damaged")
    for name, text in cut.items():  # every file checked: now cut them back to the checkpoint
        if text is not None:
            rd.write_text_atomic(run_dir / name, text[0])
    if arrays is None:  # nothing of the first start survives, so the run is the one config.yaml describes
        p.model.save(run_dir / schema.CHECKPOINTS / schema.INIT_CHECKPOINT)
    rd.write_summary(run_dir, _running(cfg, run_dir))
    writer = _writer(p, run_dir, record, format_after)
    writer.elapsed_before = elapsed_before
    writer.checkpoint_step = step if arrays is not None else None
    trainer.callbacks = [writer, *(callbacks or [])]
    return _train(p, run_dir, trainer, writer, elapsed_before, ignore_after_stop)
