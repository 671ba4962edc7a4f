"""Run directories: created exclusively, written crash-safely, read back by reports.

Layout of ``RUNS_DIR/<name>-<YYYYmmdd-HHMMSS>[-k]/``::

    config.yaml        resolved config (+ dlexp version); `dlexp train` on it reproduces the run
    metrics.csv        one row per epoch (epoch 0 = at initialisation)
    grad_norms.csv     one row per (logged step, layer, param)
    layer_stats.csv    one row per (logged step, layer)
    histograms.csv     one row per (histogram step, layer, kind, non-empty bin); only with
                       logging.histograms_every > 0
    timing.csv         wall-clock seconds per epoch (kept apart so metrics.csv is byte-reproducible)
    histograms.csv     per-layer histograms, when logging asks for them (read by reports and exports)
    steps.csv          one row per step: lr and mini-batch loss (per-step schedules only: the range test)
    summary.json       status: running | completed | interrupted | diverged
    checkpoints/       init.npz, last.npz (resumable state), final.npz
    .lock              held (``flock``) by the one process writing the directory; holds its pid

CSV rows are written whole and flushed, numbers in Python's shortest round-trip form, NaN as
an empty field; every other file dlexp writes (JSON, YAML, npz, PNG, report CSVs) goes through
:func:`atomic_write`: a new temporary file, renamed into place.
"""

from __future__ import annotations

import csv
import fcntl
import itertools
import json
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dlexp.errors import DlexpError

METRICS = "metrics.csv"
GRAD_NORMS = "grad_norms.csv"
LAYER_STATS = "layer_stats.csv"
TIMING = "timing.csv"
HISTOGRAMS = "histograms.csv"
STEPS = "steps.csv"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
LOCK = ".lock"

GRAD_COLUMNS = ["step", "epoch", "layer", "param", "grad_norm", "param_norm", "update_ratio"]
LAYER_COLUMNS = ["step", "epoch", "layer", "activation", "act_mean", "act_std", "saturated_fraction",
                 "dead_fraction"]
TIMING_COLUMNS = ["epoch", "step", "elapsed_s"]
HISTOGRAM_COLUMNS = ["step", "epoch", "layer", "kind", "bin_low", "bin_high", "count"]
STEP_COLUMNS = ["step", "epoch", "lr", "loss"]


def metrics_columns(classification: bool, test: bool = False) -> list[str]:
    """metrics.csv's columns: each split's metrics (train, val, and test when there is a test split)."""
    prefixes = ("train", "val", "test") if test else ("train", "val")
    cols = ["epoch", "step", *split_metric_columns(*prefixes, classification=classification)]
    return cols + ["penalty", "lr", "grad_norm_total"]


def split_metric_columns(*splits: str, classification: bool | None = None) -> list[str]:
    """metrics.csv's ``{split}_{metric}`` names, metric by metric, of :func:`dlexp.trainer.split_metric_names`:
    a classifier's (``True``: loss, acc), a regressor's (``False``), or every name either logs (``None``).
    The one source of metric-name lists: summaries, sweep tables, checks and the early-stopping monitor."""
    from dlexp.trainer import split_metric_names

    if classification is None:
        names = dict.fromkeys((*split_metric_names(True), *split_metric_names(False)))
    else:
        names = split_metric_names(classification)
    return [f"{split}_{name}" for name in names for split in splits]


def format_value(value: Any) -> str:
    """A number or text as dlexp writes it in CSV: floats in shortest round-trip form (``repr``),
    NaN and None as an empty field."""
    if value is None:
        return ""
    if isinstance(value, float):  # numpy floats too: repr(float(x)), never "np.float64(...)"
        return repr(float(value)) if value == value else ""
    return str(value)


class CsvLog:
    """Append-only CSV: a header once, then whole rows.

    Rows are formatted into lines and kept in memory until :meth:`flush` (called at the end of each
    epoch, on close, and whenever 64 KiB are pending), which hands them to the OS in one
    ``os.write`` of whole lines: a reader, or a run killed at any moment, sees only whole rows, and
    the training step pays no system call per row. A write the OS refuses or cuts short (a full
    disk) is rolled back to the last whole row before the error is raised.
    """

    FLUSH_BYTES = 1 << 16

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size  # bytes of whole rows on disk
        self._pending: list[str] = []
        self._pending_chars = 0
        if self._size == 0:
            self._pending.append(",".join(columns) + "\n")
            self.flush()

    def write(self, rows: list[dict[str, Any]], flush: bool = False) -> None:
        columns = self.columns
        for row in rows:
            # floats and ints inline (the bulk of every row); anything else through csv_field
            line = ",".join([(repr(v) if v == v else "") if type(v) is float else str(v) if type(v) is int
                             else csv_field(v) for v in map(row.get, columns)]) + "\n"
            self._pending.append(line)
            self._pending_chars += len(line)
        if flush or self._pending_chars >= self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._pending_chars = 0
        view = memoryview(data)
        try:
            while view:  # a regular file takes it in one call; loop in case the OS writes less
                written = os.write(self._fd, view)
                view = view[written:]
        except BaseException as exc:  # a full disk, or an exception raised by a signal handler
            os.ftruncate(self._fd, self._size)  # drop whatever part of these rows did get written
            if isinstance(exc, OSError):
                raise DlexpError(f"{self.path}: cannot write ({exc.strerror}); the file was cut back to its last "
                                 "whole row and the run stopped") from None
            raise
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None


def csv_field(value: Any) -> str:
    """:func:`format_value`, quoted as CSV requires when the text holds a comma, quote or newline."""
    text = format_value(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


TEXT_COLUMNS = {"param", "activation", "kind"}  # every other column of a run's CSVs holds numbers


def rows_up_to(path: Path, columns: list[str], key: str, last: int) -> tuple[str, int | None] | None:
    """The text of ``path`` cut back to its header and the rows whose ``key`` column is at most
    ``last``, and the last kept key (None: no row kept; the whole result None: no file or no header).

    The piece after the final newline (a row cut short by a crash) is dropped. Anything else that
    is not a row dlexp wrote — other columns, a field that is not a number, bytes that are not
    UTF-8 — raises :class:`DlexpError` naming the file and the line: a damaged file is never resumed.
    Nothing is written: the caller replaces the file (with :func:`write_text_atomic`) once every
    file of the run has been checked.
    """
    if not path.exists():
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DlexpError(f"{path}: not UTF-8 text (line {line}); this run file is damaged") from None
    complete = text.split("\n")[:-1]  # the piece after the last newline is empty or torn
    if not complete:
        return None
    if complete[0] != ",".join(columns):  # edited, or an older dlexp's run (before rmse, mae, r2, ...)
        raise DlexpError(f"{path}: columns {_clip(complete[0])!r} differ from the {len(columns)} this version "
                         f"writes ({_clip(','.join(columns))!r}); the file was edited or the run was started by "
                         "another dlexp version, and it cannot be resumed")
    kept = [complete[0]]
    last_kept = None
    position = columns.index(key)
    numeric = [i for i, name in enumerate(columns) if name not in TEXT_COLUMNS]
    for number, line in enumerate(complete[1:], start=2):
        fields = next(csv.reader([line]), [])
        problem = f"{len(fields)} fields, expected {len(columns)}" if len(fields) != len(columns) else None
        for i in numeric if problem is None else []:
            if fields[i] and not _is_number(fields[i], integer=i == position):
                problem = f"column '{columns[i]}' holds {_clip(fields[i], 40)!r}, not a number"
                break
        if problem is None and not fields[position]:
            problem = f"column '{key}' is empty"
        if problem is not None:
            raise DlexpError(f"{path}: line {number} is not a row dlexp wrote ({problem}); this run file is damaged")
        value = int(fields[position])
        if value <= last:
            kept.append(line)
            last_kept = value
    return "\n".join(kept) + "\n", last_kept


def _is_number(text: str, integer: bool = False) -> bool:
    try:
        int(text) if integer else float(text)
    except ValueError:
        return False
    return True


def _clip(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters of file content for an error line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TMP_NUMBERS = itertools.count()


@contextmanager
def atomic_write(path: Path, binary: bool = False) -> Iterator[IO]:
    """A file object whose content replaces ``path`` only when the block ends without an error.

    It writes a new temporary file next to ``path`` (created exclusively, so nothing already there, a
    symlink included, is written through), then fsyncs it and renames it over ``path``. The rename
    replaces a symlink at ``path`` rather than writing into its target. A folder at ``path`` is refused
    (DlexpError) before anything is created, and on any error the temporary file is removed, so no
    ``*.tmp`` is left behind. Text is UTF-8 with ``\\n`` line ends on every system.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise DlexpError(f"{path}: is a directory; expected the name of a file to write")
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{next(_TMP_NUMBERS)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_value, allow_nan=False)
        fh.write("\n")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def _json_value(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def create_unique_dir(parent: Path, name: str, now: float | None = None, what: str = "--runs-dir") -> Path:
    """Make a fresh ``parent/<name>-<YYYYmmdd-HHMMSS>[-k]`` folder; never reuses one (mkdir is exclusive),
    so two runs started in the same second with the same name get different folders."""
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise DlexpError(f"{what} {parent}: is a file; expected a folder for run directories")
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    for k in range(10_000):
        candidate = parent / (base if k == 0 else f"{base}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise DlexpError(f"{what} {parent}: could not create a new folder named {base}-*")


def create_run_dir(runs_dir: Path, name: str, now: float | None = None) -> Path:
    """A fresh run directory with its ``checkpoints/`` folder."""
    run_dir = create_unique_dir(runs_dir, name, now)
    (run_dir / "checkpoints").mkdir()
    return run_dir


class RunLock:
    """The one-writer lock of a run directory: an exclusive ``flock`` on ``.lock``, holding the writer's pid.

    ``flock`` belongs to the open file, so the kernel drops it when its process ends, however it ends:
    a lock left by a killed run is no obstacle. The file itself stays (deleting it would let two
    processes lock two different files of the same name).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise DlexpError(f"{self.path.parent}: another dlexp process ({holder}) is writing this run; "
                             "wait for it to end or stop it, then retry") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _lock_holder(fd: int) -> str:
    """``pid N`` from a held lock file ("pid unknown" if its holder has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {int(text)}" if text.isdigit() else "pid unknown"


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text(encoding="utf-8"))


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / METRICS).is_file()


def grad_ratios(path: Path) -> dict[str, float]:
    """First-layer over last-layer mean gradient norm of W, over the first and the last logged epoch."""
    path = Path(path)
    if not path.exists():
        return {}
    sums: dict[tuple[int, int], list[float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("param") != "W" or not row.get("grad_norm"):
                continue
            try:
                key = (int(row["epoch"]), int(row["layer"]))
                value = float(row["grad_norm"])
            except (TypeError, ValueError):
                continue
            acc = sums.setdefault(key, [0.0, 0])
            acc[0] += value
            acc[1] += 1
    if not sums:
        return {}
    epochs = sorted({e for e, _ in sums})
    layers = sorted({layer for _, layer in sums})
    out = {}
    for label, epoch in (("first", epochs[0]), ("last", epochs[-1])):
        first = sums.get((epoch, layers[0]))
        last = sums.get((epoch, layers[-1]))
        if first and last and last[0] > 0:
            out[label] = (first[0] / first[1]) / (last[0] / last[1])
    return out
