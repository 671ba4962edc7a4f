"""The run's summary (``summary.json``) and the per-layer numbers read back from its CSVs.

:func:`layer_epoch_means` is the one place where a per-(layer, epoch) mean of logged rows is taken:
the summary's ``grad_ratio``, ``dlexp train``'s end-of-run table and ``dlexp grad-report`` all use it.
"""

from __future__ import annotations

import csv
import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.rundir.files import json_safe, write_json_atomic
from dlexp.rundir.schema import CONFIG, GRAD_NORMS, METRICS, SUMMARY, check_summary


def versions() -> dict[str, str]:
    """What produced a run: dlexp, NumPy and Python versions."""
    from dlexp import __version__

    return {"dlexp": __version__, "numpy": np.__version__, "python": platform.python_version()}


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text(encoding="utf-8"))


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file() and (Path(path) / METRICS).is_file()


def layer_epoch_means(epochs: Sequence[int] | np.ndarray, layers: Sequence[int] | np.ndarray,
                      values: Sequence[float] | np.ndarray) -> tuple[list[int], list[int], np.ndarray]:
    """Mean of ``values`` per (layer, epoch): ``(layers, epochs, means)`` with ``means[i, j]`` the mean
    over the rows of ``layers[i]`` in ``epochs[j]`` (both sorted), NaN where no row has a number.

    NaN values (a field written empty) are left out. Each sum runs over the rows in their order, one
    addition at a time (``np.bincount``), so a mean is the same float whichever caller takes it.
    """
    epochs = np.asarray(epochs, dtype=np.int64)
    layers = np.asarray(layers, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    epochs, layers, values = epochs[keep], layers[keep], values[keep]
    layer_ids, layer_index = np.unique(layers, return_inverse=True)
    epoch_ids, epoch_index = np.unique(epochs, return_inverse=True)
    cell = layer_index * len(epoch_ids) + epoch_index
    size = len(layer_ids) * len(epoch_ids)
    sums = np.bincount(cell, weights=values, minlength=size)
    counts = np.bincount(cell, minlength=size)
    with np.errstate(invalid="ignore"):
        means = (sums / counts).reshape(len(layer_ids), len(epoch_ids))
    return layer_ids.tolist(), epoch_ids.tolist(), means


def grad_ratio(layers: list[int], epochs: list[int], means: np.ndarray) -> dict[str, float]:
    """First-layer over last-layer mean gradient norm, over the first and the last epoch, from
    :func:`layer_epoch_means` (``first``/``last`` missing where either mean is missing or the last is 0)."""
    out = {}
    if not layers:
        return out
    for label, j in (("first", 0), ("last", len(epochs) - 1)):
        first, last = float(means[0, j]), float(means[-1, j])
        if first == first and last == last and last > 0:
            out[label] = first / last
    return out


def grad_norm_rows(path: Path) -> tuple[list[int], list[int], list[float]]:
    """(epochs, layers, grad norms) of the weight-matrix rows of a ``grad_norms.csv`` that hold a
    number; unreadable rows are skipped (a report reads whatever a run left)."""
    epochs, layers, values = [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("param") != "W" or not row.get("grad_norm"):
                continue
            try:
                key = (int(row["epoch"]), int(row["layer"]))
                value = float(row["grad_norm"])
            except (TypeError, ValueError):
                continue
            epochs.append(key[0])
            layers.append(key[1])
            values.append(value)
    return epochs, layers, values


def grad_ratios(path: Path) -> dict[str, float]:
    """First-layer over last-layer mean gradient norm of W, over the first and the last logged epoch,
    from a ``grad_norms.csv``."""
    path = Path(path)
    if not path.exists():
        return {}
    return grad_ratio(*layer_epoch_means(*grad_norm_rows(path)))


def build_summary(p, run_dir: Path, result, wall_s: float, status: str) -> dict[str, Any]:
    """summary.json of a finished run (``result`` None: stopped before the trainer returned)."""
    from dlexp.trainer import split_metrics

    ratios = grad_ratios(Path(run_dir) / GRAD_NORMS)
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
        "versions": versions(),
    }
    if p.test is not None and result is not None and status == "completed":
        summary["test"] = {f"test_{name}": value for name, value in split_metrics(p.model, p.loss, p.test).items()}
    return json_safe(summary)


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """Check ``summary`` against the declared fields and write it (atomically)."""
    check_summary(summary)
    write_json_atomic(Path(run_dir) / SUMMARY, summary)
