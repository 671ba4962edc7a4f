"""The listener that writes a run directory as training goes: the CSVs, row by row, and the resumable
checkpoint ``checkpoints/last.npz``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dlexp.callbacks import Callback
from dlexp.errors import DlexpError
from dlexp.rundir import schema
from dlexp.rundir.csvlog import CsvLog
from dlexp.rundir.files import save_npz_atomic
from dlexp.rundir.formatproc import FormatProcess, InlineText
from dlexp.signals import SignalStop


class RunWriter(Callback):
    """Writes the CSVs and checkpoints of a run directory as records arrive.

    ``checkpoints/last.npz`` is written at the end of every ``checkpoint_every``-th epoch (0: never
    during training) once at least ``checkpoint_every_s`` seconds of training have passed since the
    previous one (or the start); the run's end writes it too (see :func:`dlexp.experiment.run`), so
    the cadence only decides how much work a crash can lose. An fsync'd checkpoint costs milliseconds:
    every epoch of a short one-second run would cost more than the epochs themselves.

    ``format_process_after``: make the text of the logged steps in a second process
    (:class:`~dlexp.rundir.formatproc.FormatProcess`), started once this many numbers have been
    logged; None: here. Worth it where a core is free; the bytes are the same.
    """

    def __init__(self, run_dir: Path, classification: bool, checkpoint_every: int, started: float,
                 config_record: dict[str, np.ndarray], histograms: bool = False, log_steps: bool = False,
                 test: bool = False, checkpoint_every_s: float = 0.0, format_process_after: int | None = None):
        self.run_dir = run_dir
        self.format_process_after = format_process_after
        self.step_text: InlineText | None = None  # made with the first block of logged steps
        def log(file: schema.CsvFile) -> CsvLog:
            return CsvLog(run_dir / file.name, file.columns)

        self.metrics = log(schema.metrics_file(classification, test))
        self.grads = log(schema.GRAD_NORMS_FILE)
        self.layers = log(schema.LAYER_STATS_FILE)
        self.timing = log(schema.TIMING_FILE)
        self.histograms = log(schema.HISTOGRAMS_FILE) if histograms else None
        self.steps = log(schema.STEPS_FILE) if log_steps else None
        self.logs = [log for log in (self.grads, self.layers, self.histograms, self.steps, self.metrics, self.timing)
                     if log]
        self.checkpoint_every = checkpoint_every
        self.checkpoint_every_s = float(checkpoint_every_s)
        self.started = started
        self.elapsed_before = 0.0
        self.checkpointed_at: float | None = None  # training seconds at the last checkpoint (None: the start)
        self.config_record = config_record
        self.signals = SignalStop()
        self.checkpoint_step: int | None = None  # step of the last checkpoint written or resumed from

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def on_epoch(self, row):
        with self.signals.held():
            self._write_steps()
            for log in self.logs[:-2]:  # the epoch's step rows reach the disk before its metrics row
                log.flush()
            self.metrics.write([row], flush=True)
            self.timing.write([dict(zip(schema.TIMING_COLUMNS, (row["epoch"], row["step"], round(self.elapsed(), 4))))],
                              flush=True)

    def on_step_log(self, log):
        if self.step_text is None:
            after = self.format_process_after
            self.step_text = InlineText(log.layout()) if after is None else FormatProcess(log.layout(), after)
        self.step_text.submit(log.message())
        self._write_steps(wait=False)  # what is ready: an epoch's text is never all held in memory

    def _write_steps(self, wait: bool = True) -> None:
        """Write the text of the logged steps handed over so far (``wait``: including the block the
        formatting process may still be working on)."""
        if self.step_text is not None:
            for grads, layers in self.step_text.take(wait):
                self.grads.write_text(grads)
                self.layers.write_text(layers)

    def on_histograms(self, rows):
        self.histograms.write(rows)

    def on_step(self, row):
        self.steps.write([row])

    def on_epoch_end(self, trainer):
        if not self.checkpoint_every or trainer.epoch % self.checkpoint_every:
            return
        since = self.elapsed_before if self.checkpointed_at is None else self.checkpointed_at
        if self.elapsed() - since >= self.checkpoint_every_s:
            self.checkpoint(trainer)

    def checkpoint(self, trainer):
        with self.signals.held():
            self._write_steps()
            for log in self.logs:
                log.flush()  # every row up to the checkpointed step is on disk before the checkpoint
            arrays = trainer.checkpoint_arrays()
            arrays[schema.ELAPSED] = np.array(self.elapsed())
            arrays.update(self.config_record)
            self.save(save_npz_atomic, self.run_dir / schema.CHECKPOINTS / schema.LAST_CHECKPOINT, arrays)
            self.checkpointed_at = float(arrays[schema.ELAPSED])
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
        try:
            if self.step_text is not None:
                self.step_text.close()
                self._write_steps()
        finally:
            for log in self.logs:
                log.close()
