"""`dlexp export --tensorboard LOGDIR`: one TensorBoard run (a folder of event files) per dlexp run.

``LOGDIR/<run folder>/`` for a run, ``LOGDIR/sweeps/<sweep folder>/<run folder>/`` for the runs of a
sweep.
The event files are written with TensorBoard's own event writer and protocol buffers (the
``tensorboard`` extra; neither TensorFlow nor PyTorch is imported): scalars as
:func:`dlexp.export.scalar_series` names them (stored as float32, as TensorBoard stores every
scalar), histograms from histograms.csv, and the config and summary as text.

Every run is written into a hidden staging folder beside its target first; only when all of them
are complete are they moved into place, each replacing the folder of an earlier export of the same
run. A failure removes the staging folders and leaves LOGDIR as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

from dlexp.errors import ArgumentError
from dlexp.export import ExportItem, config_text, histograms, missing_extra, scalar_series


def export(items: list[ExportItem], logdir: Path) -> list[Path]:
    """Write every item's event files under ``logdir``; returns the run folders written."""
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError:
        raise missing_extra("tensorboard", "tensorboard") from None
    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise ArgumentError("logdir", logdir, "is a file; expected a folder for event files")
    staged: list[tuple[Path, Path]] = []
    made: list[Path] = []  # folders this export created, removed again if it fails
    try:
        for item in items:
            target = logdir / item.key
            for folder in reversed([target.parent, *target.parent.parents]):
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            stage = target.parent / f".{target.name}.partial-{os.getpid()}"
            shutil.rmtree(stage, ignore_errors=True)
            staged.append((stage, target))
            write_run(item, stage)
    except BaseException:
        for stage, _ in staged:
            shutil.rmtree(stage, ignore_errors=True)
        for folder in reversed(made):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    for stage, target in staged:
        replace_dir(stage, target)
    return [target for _, target in staged]


def write_run(item: ExportItem, folder: Path) -> None:
    """One event file in ``folder``: per step, one event holding every scalar of that step (TensorBoard
    reads each value as its own series; one event per value would cost several times the time)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
    from tensorboard.plugins.text.summary_v2 import text_pb
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = item.run
    by_step: dict[int, list] = defaultdict(list)
    for tag, step, value in scalar_series(run):
        by_step[step].append(Summary.Value(tag=tag, simple_value=value))
    writer = EventFileWriter(str(folder), max_queue_size=10_000, flush_secs=3600)
    now = time.time()

    def add(summary, step: int) -> None:
        writer.add_event(Event(wall_time=now, step=step, summary=summary))

    try:
        for step in sorted(by_step):
            add(Summary(value=by_step[step]), step)
        for h in histograms(run):
            centres = [(lo + hi) / 2 for lo, hi in zip(h.bin_low, h.bin_high)]
            histo = HistogramProto(min=h.bin_low[0], max=h.bin_high[-1], num=sum(h.counts),
                                   sum=sum(c * x for c, x in zip(h.counts, centres)),
                                   sum_squares=sum(c * x * x for c, x in zip(h.counts, centres)),
                                   bucket_limit=h.bin_high, bucket=h.counts)
            add(Summary(value=[Summary.Value(tag=h.tag, histo=histo)]), h.step)
        # TensorBoard renders text as Markdown: indented lines stay verbatim
        add(text_pb("config", _code(config_text(run))), 0)
        if run.summary:
            add(text_pb("summary", _code(json.dumps(run.summary, indent=2))), 0)
    finally:
        writer.close()


def replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` (an earlier export) is removed after the move."""
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def _code(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
