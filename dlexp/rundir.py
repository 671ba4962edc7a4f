"""Run directories: created exclusively, written crash-safely, read back by reports.

Layout of ``RUNS_DIR/<name>-<YYYYmmdd-HHMMSS>[-k]/``::

    config.yaml        resolved config (+ dlexp version); `dlexp train` on it reproduces the run
    metrics.csv        one row per epoch (epoch 0 = at initialisation)
    grad_norms.csv     one row per (logged step, layer, param)
    layer_stats.csv    one row per (logged step, layer)
    timing.csv         wall-clock seconds per epoch (kept apart so metrics.csv is byte-reproducible)
    steps.csv          one row per step: lr and mini-batch loss (per-step schedules only: the range test)
    summary.json       status: running | completed | interrupted | diverged
    checkpoints/       init.npz, last.npz (resumable state), final.npz

CSV rows are written whole and flushed, numbers in Python's shortest round-trip form, NaN as
an empty field; JSON and npz files go to a temporary name and are renamed into place.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from dlexp.errors import DlexpError

METRICS = "metrics.csv"
GRAD_NORMS = "grad_norms.csv"
LAYER_STATS = "layer_stats.csv"
TIMING = "timing.csv"
STEPS = "steps.csv"
SUMMARY = "summary.json"
CONFIG = "config.yaml"

GRAD_COLUMNS = ["step", "epoch", "layer", "param", "grad_norm", "param_norm", "update_ratio"]
LAYER_COLUMNS = ["step", "epoch", "layer", "activation", "act_mean", "act_std", "saturated_fraction",
                 "dead_fraction"]
TIMING_COLUMNS = ["epoch", "step", "elapsed_s"]
STEP_COLUMNS = ["step", "epoch", "lr", "loss"]


def metrics_columns(classification: bool, test: bool = False) -> list[str]:
    """metrics.csv's columns: each split's metrics (train, val, and test when there is a test split)."""
    from dlexp.trainer import split_metric_names

    prefixes = ("train", "val", "test") if test else ("train", "val")
    cols = ["epoch", "step"]
    cols += [f"{prefix}_{name}" for name in split_metric_names(classification) for prefix in prefixes]
    return cols + ["penalty", "lr", "grad_norm_total"]


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
    the training step pays no system call per row.
    """

    FLUSH_BYTES = 1 << 16

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pending: list[str] = []
        self._pending_chars = 0
        if new:
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
        while view:  # a regular file takes it in one call; loop in case the OS writes less
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None


def csv_field(value: Any) -> str:
    """:func:`format_value`, quoted as CSV requires when the text holds a comma, quote or newline."""
    text = format_value(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def truncate_csv(path: Path, keep) -> None:
    """Keep the header and the whole rows for which ``keep(row_dict)`` is true (drops a torn last line)."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not lines or not lines[0]:
        return
    complete = lines[:-1]  # the piece after the last newline is empty or torn
    header = complete[0].split(",") if complete else []
    kept = [complete[0]] if complete else []
    for line in complete[1:]:
        row = dict(zip(header, next(csv.reader([line]))))
        if len(row) == len(header) and keep(row):
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(kept) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_value, allow_nan=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
