"""The sweep's loss-curve figure: per grid point, the mean over its completed runs as a line and the
min–max over them as a band; training loss on the left, validation loss on the right."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.rundir import atomic_write
from dlexp.sweep.aggregate import _finite


def import_in_background() -> threading.Thread:
    """Start importing matplotlib in a thread (it takes longer than drawing the figure). A sweep whose
    runs train in worker processes does it while they train, not after the last run."""

    def load() -> None:
        from matplotlib.backends import backend_agg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401

    thread = threading.Thread(target=load, name="dlexp-import-matplotlib", daemon=True)
    thread.start()
    return thread


def _stack(histories: list[list[dict[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs, and a runs × epochs array of ``key`` (NaN where a run has no such epoch)."""
    epochs = sorted({row["epoch"] for h in histories for row in h})
    column = {e: i for i, e in enumerate(epochs)}
    values = np.full((len(histories), len(epochs)), np.nan)
    for r, history in enumerate(histories):
        for row in history:
            if _finite(row.get(key)):
                values[r, column[row["epoch"]]] = row[key]
    return np.array(epochs), values


def plot_loss_curves(path: Path, labels: list[str], histories: list[list[list[dict[str, Any]]]],
                     title: str) -> None:
    """Write a PNG; ``histories[k]`` are the completed runs' per-epoch rows of grid point ``labels[k]``."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    keys = ["train_loss"]
    if any(_finite(row.get("val_loss")) for runs in histories for h in runs for row in h):
        keys.append("val_loss")
    # Fixed margins, the legend in a right-hand strip sized for the longest label: a constrained or
    # tight layout would cost another full draw.
    plots_w = 5.0 * len(keys)
    legend_w = min(7.0, 0.8 + 0.085 * max((len(label) for label in labels), default=10))  # ~0.085 in per character
    fig = Figure(figsize=(plots_w + legend_w, 4.6), dpi=110)
    fig.subplots_adjust(left=0.8 / (plots_w + legend_w), right=plots_w / (plots_w + legend_w), bottom=0.12,
                        top=0.86, wspace=0.22)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    colors = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    low_all, high_all = np.inf, -np.inf
    for ax, key in zip(axes, keys):
        for k, (label, runs) in enumerate(zip(labels, histories)):
            color = colors(k % colors.N)
            if not runs:
                ax.plot([], [], color=color, label=f"{label} (no completed run)")
                continue
            epochs, values = _stack(runs, key)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs
                mean = np.nanmean(values, axis=0)
                low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            if np.isfinite(low).any():
                low_all, high_all = min(low_all, np.nanmin(low)), max(high_all, np.nanmax(high))
            ax.plot(epochs, mean, color=color, lw=1.6, label=label)
            if len(runs) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=0.18, lw=0)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if 0 < low_all and high_all > 10 * low_all:  # a log axis only pays off over a decade or more
        for ax in axes:
            ax.set_yscale("log")
    axes[0].set_ylabel("loss (mean line, min–max band over seeds)")
    fig.suptitle(title)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", fontsize="small", frameon=False,
               bbox_to_anchor=(plots_w / (plots_w + legend_w) + 0.01, 0.86))
    with atomic_write(Path(path), binary=True) as fh:
        fig.savefig(fh, format="png")

