"""PNG figures of runs and grids, drawn headless with matplotlib's Agg canvas.

The ``Figure`` API is used directly (no pyplot): no global figure state, no GUI backend, and the
caller's matplotlib backend is left alone. Every figure has a title, axis labels with units, and a
legend or colourbar; sizes are fixed in inches at ``DPI`` so a PNG is exactly
``figsize × DPI`` pixels (no tight bounding box).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dlexp.report.gradients import bound_log10
from dlexp.report.rundata import RunData
from dlexp.rundir import atomic_write

DPI = 100
RUN_FIGSIZE = (9.0, 5.5)
MAX_LEGEND_LAYERS = 12


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    """Write through a temporary name so a half-written PNG never carries the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, binary=True) as fh:
        fig.savefig(fh, format="png", dpi=DPI)
    return path


def _layer_colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(k / max(n - 1, 1)) for k in range(n)]


# -- one run ----------------------------------------------------------------------------------


# train under validation: drawn first, wider and paler, so a validation curve lying on top of it
# leaves the train curve visible on both sides; test dotted
TRAIN_STYLE = {"linestyle": "-", "linewidth": 3.0, "alpha": 0.45, "zorder": 2}
VAL_STYLE = {"linestyle": "--", "linewidth": 1.5, "zorder": 3}
TEST_STYLE = {"linestyle": ":", "linewidth": 1.5, "zorder": 3}
SPLITS = (("train", TRAIN_STYLE, "train"), ("val", VAL_STYLE, "validation"), ("test", TEST_STYLE, "test"))
METRIC_AXIS = {"acc": "accuracy (fraction of samples classified right)"}
METRIC_FILE = {"acc": "accuracy"}


def _series(run: RunData, column: str) -> pd.Series:
    values = run.metrics[column] if column in run.metrics else pd.Series(dtype=float)
    return values if len(values) and values.notna().any() else pd.Series(dtype=float)


def _markers(n: int) -> dict:
    return {"marker": "o", "markersize": 3} if n <= 30 else {}


def _test_after_training(run: RunData, metric: str) -> float | None:
    """The test split's score from summary.json, for a run that did not log the test split per epoch."""
    if len(_series(run, f"test_{metric}")):
        return None
    value = (run.summary.get("test") or {}).get(f"test_{metric}")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _draw_splits(ax, run: RunData, metric: str, name: str | None = None, color=None) -> None:
    """One line per split that logged ``<split>_<metric>`` (train, validation, test); the test score
    measured once after training, if that is all the run has, as a star at the last epoch.
    ``name``: label the lines "<name> (<split>)" (overlays) instead of "<split> <metric>"."""
    epochs = run.metrics["epoch"] if "epoch" in run.metrics else pd.Series(dtype=float)
    colour = {} if color is None else {"color": color}
    for split, style, split_name in SPLITS:
        values = _series(run, f"{split}_{metric}")
        if len(values):
            markers = _markers(len(values)) if name is None else {}
            ax.plot(epochs, values, **style, **markers, **colour,
                    label=f"{name} ({split_name})" if name else f"{split_name} {metric}")
    test = _test_after_training(run, metric)
    if test is not None and len(epochs):
        ax.plot([epochs.max()], [test], "*", markersize=12, zorder=4, **colour,
                label=f"{name} (test)" if name else f"test {metric} (after training): {test:.3g}")


def epoch_metrics(metrics: pd.DataFrame) -> list[str]:
    """The metrics logged per split besides the loss (``acc``, ...), in column order."""
    names = [c.split("_", 1)[1] for c in metrics.columns if c.split("_", 1)[0] in ("train", "val", "test")
             and "_" in c]
    return [name for name in dict.fromkeys(names) if name != "loss"]


def _metrics_drawn(run: RunData) -> list[str]:
    """Besides the loss, the metrics this run logged values of."""
    return [m for m in epoch_metrics(run.metrics) if any(len(_series(run, f"{s}_{m}")) for s, _, _ in SPLITS)]


def metric_figure(run: RunData, metric: str, label: str):
    """``metric`` ('loss', 'acc', ...) per epoch: train, validation and test."""
    fig = _figure(RUN_FIGSIZE)
    ax = fig.add_subplot()
    _draw_splits(ax, run, metric)
    ax.set_xlabel("epoch (0 = at initialisation)")
    if metric == "loss":
        loss_name = run.summary.get("loss") or _spec_name(run.training.get("loss", "loss"))
        ax.set_ylabel(f"loss ({loss_name}, mean per sample)")
    else:
        ax.set_ylabel(METRIC_AXIS.get(metric, metric))
    ax.set_title(f"{label}: {metric} per epoch ({run.status})")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no epoch finished yet", transform=ax.transAxes, ha="center", va="center")
    return fig


def plot_loss(run: RunData, path: Path, label: str) -> Path:
    return _save(metric_figure(run, "loss", label), path)


def plot_metric(run: RunData, path: Path, label: str, metric: str) -> Path:
    """``<split>_<metric>`` per epoch, e.g. ``metric="acc"``: train, validation and test accuracy."""
    return _save(metric_figure(run, metric, label), path)


def overlay_figure(runs: list[RunData], names: list[str], metric: str):
    """Several runs on one set of axes: a colour per run (legend by run name); validation dashed on
    top of the wider, paler train curve."""
    fig = _figure(RUN_FIGSIZE)
    ax = fig.add_subplot()
    for run, name, color in zip(runs, names, _run_colors(len(runs))):
        _draw_splits(ax, run, metric, name=name, color=color)
    ax.set_xlabel("epoch (0 = at initialisation)")
    ax.set_ylabel("loss (mean per sample)" if metric == "loss" else METRIC_AXIS.get(metric, metric))
    shown = ", ".join(names)
    ax.set_title(f"{metric} per epoch: {shown if len(shown) <= 60 else f'{len(runs)} runs'}")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, ncol=2 if len(runs) > 4 else 1, loc="best",
                  title="run (solid wide: train, dashed: validation)", title_fontsize=8)
    return fig


def _run_colors(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(k if n <= 10 else k / max(n - 1, 1)) for k in range(n)]


def plot_overlay(runs: list[RunData], names: list[str], out_dir: Path, prefix: str = "overlay_") -> list[Path]:
    """``overlay_loss.png`` and one per other metric any run logged (``overlay_accuracy.png``, ...)."""
    out_dir = Path(out_dir)
    metrics = ["loss", *dict.fromkeys(m for run in runs for m in _metrics_drawn(run))]
    return [_save(overlay_figure(runs, names, m), out_dir / f"{prefix}{METRIC_FILE.get(m, m)}.png")
            for m in metrics]


def _w_norms(run: RunData) -> pd.DataFrame:
    """step × layer table of ‖∂L/∂W‖ (columns: layers, input side first)."""
    w = run.grads[run.grads["param"] == "W"]
    return w.pivot_table(index="step", columns="layer", values="grad_norm", aggfunc="mean").sort_index()


def plot_grad_lines(run: RunData, path: Path, label: str) -> Path:
    import matplotlib
    from matplotlib.colors import Normalize

    fig = _figure(RUN_FIGSIZE)
    ax = fig.add_subplot()
    table = _w_norms(run)
    layers = list(table.columns)
    colors = _layer_colors(len(layers))
    output = layers[-1] if layers else None
    # Per-step norms are noisy (each batch differs): draw them faintly and a rolling geometric
    # mean over ~1/40 of the run on top, so layers separate at a glance.
    window = max(1, len(table) // 40)
    for color, layer in zip(colors, layers):
        values = table[layer].where(table[layer] > 0)
        smooth = 10.0 ** np.log10(values).rolling(window, min_periods=1, center=True).mean()
        if window > 1:
            ax.plot(table.index, values, color=color, linewidth=0.5, alpha=0.25)
        ax.plot(table.index, smooth, color=color, linewidth=1.4,
                label=f"layer {layer}" + (" (output)" if layer == output else ""))
    ax.set_yscale("log")
    ax.set_xlabel("step (optimizer updates)" + (f"; bold: rolling geometric mean over {window} logged steps"
                                                if window > 1 else ""))
    ax.set_ylabel("‖∂L/∂W‖₂ per layer (log scale)")
    ax.set_title(f"{label}: gradient norm of each layer's weights")
    ax.grid(True, which="major", alpha=0.3)
    if len(layers) <= MAX_LEGEND_LAYERS:
        ax.legend(title="input → output", fontsize=8, ncol=2 if len(layers) > 6 else 1, loc="best")
    else:
        mappable = matplotlib.cm.ScalarMappable(norm=Normalize(layers[0], layers[-1]),
                                                cmap=matplotlib.colormaps["viridis"])
        fig.colorbar(mappable, ax=ax, label="layer (0 = input side)")
    return _save(fig, path)


def plot_grad_heatmap(run: RunData, path: Path, label: str) -> Path:
    fig = _figure(RUN_FIGSIZE)
    ax = fig.add_subplot()
    table = _w_norms(run)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log10(table.to_numpy(dtype=float).T)  # layers × steps
    values[~np.isfinite(values)] = np.nan
    steps = table.index.to_numpy(dtype=float)
    layers = np.asarray(table.columns, dtype=float)
    mesh = ax.pcolormesh(_edges(steps), _edges(layers), np.ma.masked_invalid(values), cmap="magma",
                         shading="flat")
    fig.colorbar(mesh, ax=ax, label="log10 ‖∂L/∂W‖₂")
    ax.set_xlabel("step (optimizer updates)")
    ax.set_ylabel("layer (0 = input side)")
    if len(layers) <= 20:
        ax.set_yticks(layers)
    ax.set_title(f"{label}: log10 gradient norm, layer × step")
    return _save(fig, path)


def _edges(centers: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centers (for pcolormesh with uneven logging steps)."""
    if len(centers) == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    first, last = centers[0] - (mid[0] - centers[0]), centers[-1] + (centers[-1] - mid[-1])
    return np.concatenate([[first], mid, [last]])


def plot_run(run: RunData, out_dir: Path, label: str, prefix: str = "") -> list[Path]:
    """The figures of one run: ``loss.png``, one per other logged metric (``accuracy.png`` for a
    classifier), ``grad_norms.png``, ``grad_heatmap.png``."""
    out_dir = Path(out_dir)
    files = [plot_loss(run, out_dir / f"{prefix}loss.png", label)]
    for metric in _metrics_drawn(run):
        files.append(plot_metric(run, out_dir / f"{prefix}{METRIC_FILE.get(metric, metric)}.png", label, metric))
    from dlexp.report.histfigures import plot_histograms

    return files + [plot_grad_lines(run, out_dir / f"{prefix}grad_norms.png", label),
                    plot_grad_heatmap(run, out_dir / f"{prefix}grad_heatmap.png", label),
                    *(plot_histograms(run.histograms, out_dir, label, prefix) if run.histograms is not None
                      else [])]


# -- a grid -----------------------------------------------------------------------------------


def heatmap_size(n_depths: int, n_columns: int) -> tuple[float, float]:
    return (max(6.0, 2.2 + 1.45 * n_columns), max(4.0, 1.8 + 0.6 * n_depths))


def plot_grid_heatmap(matrix: pd.DataFrame, path: Path, vanish_below: float, epoch: str, title: str,
                      xlabel: str = "configuration") -> Path:
    """depth × configuration, colour = mean log10 first/output gradient ratio, text = mean ± std.

    ``epoch``: "first" or "last", which of the matrix's two measurements to draw.
    """
    from matplotlib.colors import TwoSlopeNorm

    columns = list(dict.fromkeys(matrix["column"]))
    depths = sorted(set(matrix["depth"]))
    grid = np.full((len(depths), len(columns)), np.nan)
    spread = np.full_like(grid, np.nan)
    for row in matrix.itertuples():
        i, j = depths.index(row.depth), columns.index(row.column)
        grid[i, j] = getattr(row, f"log10_ratio_{epoch}_mean")
        spread[i, j] = getattr(row, f"log10_ratio_{epoch}_std")
    fig = _figure(heatmap_size(len(depths), len(columns)))
    ax = fig.add_subplot()
    threshold = math.log10(vanish_below)
    finite = grid[np.isfinite(grid)]
    low = min(float(finite.min()) if finite.size else threshold, threshold) - 1
    high = max(float(finite.max()) if finite.size else 1.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", aspect="auto",
                      norm=TwoSlopeNorm(vmin=low, vcenter=threshold, vmax=high))
    for i in range(len(depths)):
        for j in range(len(columns)):
            if np.isfinite(grid[i, j]):
                mean = round(float(grid[i, j]), 1) + 0.0  # no "-0.0"
                text = f"{mean:.1f}" + (f"\n± {spread[i, j]:.1f}" if np.isfinite(spread[i, j]) else "")
            else:
                text = "no run"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    crowded = len(columns) > 4
    ax.set_xticks(range(len(columns)), columns, rotation=20 if crowded else 0,
                  ha="right" if crowded else "center")
    ax.set_yticks(range(len(depths)), [str(d) for d in depths])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("depth (hidden layers)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=f"log10(‖∂L/∂W₀‖ / ‖∂L/∂W_out‖), {epoch} epoch\n"
                                     f"yellow at --vanish-below = {vanish_below:g}")
    return _save(fig, path)


def grad_vs_layer_size(n_columns: int) -> tuple[float, float]:
    ncols = min(n_columns, 4)
    nrows = math.ceil(n_columns / ncols)
    return (1.0 + 3.6 * ncols, 0.9 + 3.1 * nrows)


def plot_grad_vs_layer(layers: pd.DataFrame, columns: list[tuple[str, str, bool, str]], path: Path,
                       epoch: str, title: str) -> Path:
    """One panel per configuration: ratio to the output layer against layer, a line per depth.

    ``columns``: (activation, init, batchnorm, label). The dashed line is the chain-rule bound
    (sup f')^(layers between) for the deepest network, which only counts activation derivatives.
    """
    from matplotlib.ticker import MaxNLocator

    ratio_column = "ratio_to_output" if epoch == "last" else "ratio_to_output_first_epoch"
    ncols = min(len(columns), 4)
    nrows = math.ceil(len(columns) / ncols)
    fig = _figure(grad_vs_layer_size(len(columns)))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    depths = sorted(set(layers["depth"])) if len(layers) else []
    colors = dict(zip(depths, _layer_colors(len(depths))))
    for k, (activation, init, bn, label) in enumerate(columns):
        ax = axes[k // ncols][k % ncols]
        sel = layers[(layers["activation"] == activation) & (layers["init"] == init)
                     & (layers["batchnorm"] == bn)]
        for depth in depths:
            runs = sel[sel["depth"] == depth]
            if not len(runs):
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.log10(runs[ratio_column].to_numpy(dtype=float))
            frame = pd.DataFrame({"layer": runs["layer"].to_numpy(), "log": logs})
            frame = frame[np.isfinite(frame["log"])]
            mean = frame.groupby("layer")["log"].mean()
            ax.plot(mean.index, 10.0 ** mean.to_numpy(), marker="o", markersize=3, color=colors[depth],
                    label=f"depth {depth}")
        if depths:
            deepest = depths[-1]
            x = np.arange(deepest + 1)
            bound = [10.0 ** bound_log10(activation, deepest - i) for i in x]
            if all(np.isfinite(bound)):
                ax.plot(x, bound, "--", color="grey", linewidth=1, label=f"bound ∏ sup f' (depth {deepest})")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(label)
        ax.set_xlabel("layer (0 = input side)")
        ax.grid(True, alpha=0.3)
        if k % ncols == 0:
            ax.set_ylabel(f"‖∂L/∂W‖ / output layer's ({epoch} epoch)")
        ax.legend(fontsize=7, loc="lower right")
    for k in range(len(columns), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.suptitle(title)
    return _save(fig, path)


def _spec_name(spec) -> str:
    return str(spec.get("name")) if isinstance(spec, dict) else str(spec)
