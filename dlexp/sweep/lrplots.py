"""The learning-rate figures: the range test (loss against lr) and the tuning's sensitivity curves
(final validation loss against lr), both on a log10 lr axis."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.rundir import atomic_write


def _figure(width: float = 7.5, height: float = 4.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n)]


def _save(fig, path: Path) -> None:
    with atomic_write(Path(path), binary=True) as fh:
        fig.savefig(fh, format="png")


def plot_range_test(path: Path, analysis: dict[str, Any], title: str) -> None:
    """Smoothed loss against lr, one colour per optimizer, one line per seed; ``|`` marks the
    suggested lr (minimum/10), ``o`` the steepest point."""
    fig, ax = _figure()
    optimizers = analysis["optimizers"]
    low, high = math.inf, -math.inf
    for color, opt in zip(_colors(len(optimizers)), optimizers):
        label = opt["optimizer"]
        for run in opt["runs"]:
            smooth = np.asarray(run.get("smoothed") or [], dtype=float)
            if not len(smooth):
                continue
            lrs = np.asarray(run["lr"][: len(smooth)], dtype=float)
            ax.plot(lrs, smooth, color=color, lw=1.4, alpha=0.85, label=label)
            label = None
            lo, hi = run["window"]
            if hi > lo:
                low = min(low, float(np.min(smooth[lo:hi])))
                high = max(high, float(smooth[lo]))
            if run.get("steep_lr"):
                k = int(np.argmin(np.abs(np.log(lrs) - math.log(run["steep_lr"]))))
                ax.plot(lrs[k], smooth[k], "o", color=color, ms=5)
        if opt.get("suggested_lr"):
            ax.axvline(opt["suggested_lr"], color=color, ls=":", lw=1.2)
    if math.isfinite(low) and high > low:
        span = high - low
        ax.set_ylim(low - 0.1 * span, high + 0.6 * span)  # the blow-up runs off the top
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("smoothed mini-batch training loss")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", title="dotted: suggested lr; o: steepest", title_fontsize="small")
    _save(fig, path)


def plot_lr_sensitivity(path: Path, choices: dict, title: str) -> None:
    """Mean final validation loss against lr per optimizer, min–max band over the tuning seeds; a
    star on the chosen lr, ``x`` on grid points where a run diverged or failed (drawn at the top)."""
    fig, ax = _figure()
    finite = [v for c in choices.values() for p in c.points for v in p["val_losses"] if math.isfinite(v)]
    top = max(finite) if finite else 1.0
    for color, choice in zip(_colors(len(choices)), choices.values()):
        ok = [p for p in choice.points if p["eligible"]]
        lrs = np.array([p["lr"] for p in ok])
        if len(ok):
            values = [np.asarray(p["val_losses"], dtype=float) for p in ok]
            ax.plot(lrs, [v.mean() for v in values], color=color, lw=1.6, marker=".", label=choice.optimizer)
            ax.fill_between(lrs, [v.min() for v in values], [v.max() for v in values], color=color, alpha=0.18,
                            lw=0)
        else:
            ax.plot([], [], color=color, label=f"{choice.optimizer} (no eligible lr)")
        bad = [p["lr"] for p in choice.points if not p["eligible"]]
        if bad:
            ax.plot(bad, [top * 1.05] * len(bad), "x", color=color, ms=6)
        if choice.lr is not None:
            ax.plot([choice.lr], [choice.points[choice.best_index]["mean_val_loss"]], "*", color=color, ms=12,
                    mec="black", mew=0.6)
    if finite and min(finite) > 0 and top > 10 * min(finite):  # a blown-up lr would flatten the rest
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("final validation loss (mean, min–max band over seeds)")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", title="★ chosen; x diverged/failed", title_fontsize="small")
    _save(fig, path)
