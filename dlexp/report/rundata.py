"""Read a run directory back from disk, tolerating a run that is still going or was killed.

Only the files :mod:`dlexp.rundir` documents are read: ``grad_norms.csv`` and ``layer_stats.csv``
(required for gradient reports: at least one logged step), ``metrics.csv``, ``timing.csv``,
``histograms.csv``, ``config.yaml`` and ``summary.json`` (each optional). A run killed mid-write may end a CSV with a torn line (no final
newline): that line is dropped. A missing or unreadable summary gives status ``unknown``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlexp import rundir as rd
from dlexp.errors import DlexpError

NUMERIC_GRAD = ["step", "epoch", "layer", "grad_norm", "param_norm", "update_ratio"]
NUMERIC_LAYER = ["step", "epoch", "layer", "act_mean", "act_std", "saturated_fraction", "dead_fraction"]
NUMERIC_HISTOGRAM = ["step", "epoch", "layer", "bin_low", "bin_high", "count"]
METRICS_REQUIRED = ["epoch", "step", "train_loss", "val_loss"]


@dataclass
class RunData:
    """What a report needs from one run directory."""

    path: Path
    name: str  # the config's name (or the folder's name)
    status: str  # running | completed | interrupted | diverged | unknown
    config: dict[str, Any]
    summary: dict[str, Any]
    grads: pd.DataFrame  # rundir.GRAD_COLUMNS, numeric columns as floats/ints
    layers: pd.DataFrame  # rundir.LAYER_COLUMNS (may be empty)
    metrics: pd.DataFrame  # every metrics.csv column, as floats (epoch, step: ints); may be empty
    timing: pd.DataFrame = field(default_factory=pd.DataFrame)  # rundir.TIMING_COLUMNS (may be empty)
    histograms: pd.DataFrame | None = None  # rundir.HISTOGRAM_COLUMNS, None when the run logged none
    notes: list[str] = field(default_factory=list)

    @property
    def model(self) -> dict[str, Any]:
        model = self.config.get("model")
        return model if isinstance(model, dict) else {}

    @property
    def training(self) -> dict[str, Any]:
        training = self.config.get("training")
        return training if isinstance(training, dict) else {}


def _empty(columns: list[str], numeric: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c in numeric else object) for c in columns})


def read_csv_tolerant(path: Path, columns: list[str], numeric: list[str]) -> pd.DataFrame:
    """A run CSV as a DataFrame; a torn last line is dropped, numbers coerced (bad field -> NaN).

    A missing file gives an empty frame with ``columns``; a file that is not CSV at all, or lacks
    one of ``columns``, raises a one-line :class:`DlexpError` naming the file.
    """
    if not path.exists():
        return _empty(columns, numeric)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DlexpError(f"{path}: cannot read ({exc})") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the writer flushes whole lines: the rest is torn
    if not text.strip():
        return _empty(columns, numeric)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DlexpError(f"{path}: not a dlexp CSV ({' '.join(str(exc).split())})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DlexpError(f"{path}: missing column(s) {', '.join(missing)} (expected {', '.join(columns)})")
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame = frame.dropna(subset=[c for c in ("step", "epoch", "layer") if c in numeric])
    for column in ("step", "epoch", "layer"):
        if column in numeric:
            frame[column] = frame[column].astype(int)
    return frame.reset_index(drop=True)


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / rd.SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_config(path: Path) -> dict[str, Any]:
    from dlexp.config import read_yaml_mapping

    if not (path / rd.CONFIG).is_file():
        return {}
    try:
        return read_yaml_mapping(path / rd.CONFIG, str(path / rd.CONFIG))
    except DlexpError:
        return {}  # a report needs only the CSVs; the config adds labels


def read_run(path: str | Path, require_steps: bool = True) -> RunData:
    """Load a run directory; raises :class:`DlexpError` naming ``path`` if it is not a usable run.

    ``require_steps``: a gradient report needs at least one logged step; loading a run for a
    notebook or an export does not (a run that has only just started has empty frames).
    """
    path = Path(path)
    if not path.exists():
        raise DlexpError(f"{path}: no such run directory")
    if not path.is_dir():
        raise DlexpError(f"{path}: not a directory; expected a run directory made by `dlexp train`")
    if not any((path / name).is_file() for name in (rd.CONFIG, rd.GRAD_NORMS, rd.METRICS)):
        raise DlexpError(f"{path}: not a dlexp run directory (no {rd.CONFIG}, {rd.METRICS} or {rd.GRAD_NORMS})")
    grads = read_csv_tolerant(path / rd.GRAD_NORMS, rd.GRAD_COLUMNS, NUMERIC_GRAD)
    if require_steps and not (grads["param"] == "W").any():
        raise DlexpError(f"{path}: no gradient rows in {rd.GRAD_NORMS} yet (the run has not logged a step)")
    layers = read_csv_tolerant(path / rd.LAYER_STATS, rd.LAYER_COLUMNS, NUMERIC_LAYER)
    metrics = read_csv_tolerant(path / rd.METRICS, METRICS_REQUIRED, METRICS_REQUIRED)
    for column in metrics.columns:  # every metrics.csv column is a number, whichever metrics the run logs
        metrics[column] = pd.to_numeric(metrics[column], errors="coerce").astype(float)
    metrics[["epoch", "step"]] = metrics[["epoch", "step"]].astype(int)
    timing = read_csv_tolerant(path / rd.TIMING, rd.TIMING_COLUMNS, rd.TIMING_COLUMNS)
    histograms = None
    if (path / rd.HISTOGRAMS).is_file():
        histograms = read_csv_tolerant(path / rd.HISTOGRAMS, rd.HISTOGRAM_COLUMNS, NUMERIC_HISTOGRAM)
    config = _read_config(path)
    summary = _read_summary(path)
    status = str(summary.get("status") or "unknown")
    name = config.get("name") or summary.get("name") or path.name
    notes = []
    if not summary:
        notes.append("no readable summary.json")
    return RunData(path=path, name=str(name), status=status, config=config, summary=summary, grads=grads,
                   layers=layers, metrics=metrics, timing=timing, histograms=histograms, notes=notes)
