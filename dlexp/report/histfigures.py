"""Figures of ``histograms.csv``: per layer, how a kind of value is distributed and how that changes.

For each kind logged: ``histograms_<kind>.png``, one panel per layer, a value × step heatmap whose
colour is the share of the layer's values in each bin at that step (Glorot & Bengio 2010, figures
6–7, over the whole run); and ``histograms_last.png``, one panel per kind, one curve per layer at
the last logged step (their figures' style: the share of values per bin, against the value).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dlexp.nn.histograms import KINDS
from dlexp.report.figures import _figure, _layer_colors, _save

LABELS = {"activation": "activation value", "pre_activation": "pre-activation (input of the activation)",
          "gradient": "back-propagated gradient ∂L/∂z", "weight": "weight value"}
LINEAR_THRESHOLD = 1e-10  # gradients: a symmetric log axis, linear below this magnitude


def _shares(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with ``share``: count over the (step, layer, kind) total."""
    totals = frame.groupby(["step", "layer", "kind"])["count"].transform("sum")
    return frame.assign(share=frame["count"] / totals)


GRADIENT_TICKS = [-1.0, -1e-4, -1e-8, 0.0, 1e-8, 1e-4, 1.0]


def _gradient_axis(ax, which: str) -> None:
    """A symmetric log scale for gradients (they differ by decades between layers), few ticks."""
    getattr(ax, f"set_{which}scale")("symlog", linthresh=LINEAR_THRESHOLD)
    getattr(ax, f"set_{which}ticks")(GRADIENT_TICKS, ["−1", "−10⁻⁴", "−10⁻⁸", "0", "10⁻⁸", "10⁻⁴", "1"])


def _grid(n: int) -> tuple[int, int]:
    ncols = min(n, 4)
    return math.ceil(n / ncols), ncols


def plot_kind_heatmaps(hist: pd.DataFrame, kind: str, path: Path, label: str) -> Path:
    """One panel per layer: value (y) × logged step (x), colour = share of the layer's values."""
    from matplotlib.colors import LogNorm

    frame = _shares(hist[hist["kind"] == kind])
    layers = sorted(frame["layer"].unique())
    steps = np.array(sorted(frame["step"].unique()), dtype=float)
    edges = sorted(set(frame["bin_low"]) | set(frame["bin_high"]))
    nrows, ncols = _grid(len(layers))
    fig = _figure((1.0 + 3.4 * ncols, 0.9 + 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    step_edges = np.concatenate([steps, [steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1.0)]])
    mesh = None
    for k, layer in enumerate(layers):
        ax = axes[k // ncols][k % ncols]
        sel = frame[frame["layer"] == layer]
        grid = np.full((len(edges) - 1, len(steps)), np.nan)
        rows = np.searchsorted(edges, sel["bin_low"].to_numpy())
        cols = np.searchsorted(steps, sel["step"].to_numpy())
        grid[rows, cols] = sel["share"].to_numpy()
        mesh = ax.pcolormesh(step_edges, edges, np.ma.masked_invalid(grid), cmap="viridis",
                             norm=LogNorm(1e-4, 1.0), shading="flat")
        if kind == "gradient":
            _gradient_axis(ax, "y")
        ax.set_title(f"layer {layer}", fontsize=9)
        if k % ncols == 0:
            ax.set_ylabel(LABELS[kind], fontsize=8)
        if k // ncols == nrows - 1:
            ax.set_xlabel("step")
    for k in range(len(layers), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes, label="share of the layer's values in the bin", shrink=0.8)
    fig.suptitle(f"{label}: {LABELS[kind]} per layer over training")
    return _save(fig, path)


def plot_last_step_curves(hist: pd.DataFrame, path: Path, label: str, step: int | None = None) -> Path:
    """One panel per kind, one curve per layer: share of values per bin at ``step`` (default: the last)."""
    step = int(hist["step"].max()) if step is None else step
    frame = _shares(hist[hist["step"] == step])
    kinds = [k for k in KINDS if k in set(frame["kind"])]
    nrows, ncols = _grid(len(kinds))
    fig = _figure((1.0 + 4.2 * ncols, 0.9 + 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, kind in enumerate(kinds):
        ax = axes[k // ncols][k % ncols]
        sel = frame[frame["kind"] == kind]
        layers = sorted(sel["layer"].unique())
        bins = sel.drop_duplicates("bin_low").sort_values("bin_low")  # every bin some layer filled
        centres = ((bins["bin_low"] + bins["bin_high"]) / 2).to_numpy()
        for color, layer in zip(_layer_colors(len(layers)), layers):
            one = sel[sel["layer"] == layer]
            share = dict(zip(one["bin_low"], one["share"]))  # a bin without a row holds no value
            ax.plot(centres, [share.get(low, 0.0) for low in bins["bin_low"]], color=color, linewidth=1.2,
                    label=f"layer {layer}")
        if kind == "gradient":
            _gradient_axis(ax, "x")
        ax.set_xlabel(LABELS[kind])
        ax.set_ylabel("share of the layer's values")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(layers) > 6 else 1)
    for k in range(len(kinds), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(f"{label}: histograms per layer at step {step}")
    return _save(fig, path)


def plot_histograms(hist: pd.DataFrame, out_dir: Path, label: str, prefix: str = "") -> list[Path]:
    """Every histogram figure of one run (none when it logged no histograms)."""
    if hist.empty:
        return []
    out_dir = Path(out_dir)
    files = [plot_kind_heatmaps(hist, kind, out_dir / f"{prefix}histograms_{kind}.png", label)
             for kind in KINDS if (hist["kind"] == kind).any()]
    return [*files, plot_last_step_curves(hist, out_dir / f"{prefix}histograms_last.png", label)]
