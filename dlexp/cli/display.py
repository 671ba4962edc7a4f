"""Terminal display for training: a rich progress bar, or plain lines when not on a terminal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dlexp.cli.tables import num
from dlexp.rundir import split_metric_columns
from dlexp.trainer import Callback

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], log: bool = True) -> str:
    """Unicode sparkline of ``values`` (log10 scale by default); blank for missing values."""
    vals = [math.log10(v) if (log and v and v > 0) else (v if not log else None) for v in values]
    finite = [v for v in vals if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    out = []
    for v in vals:
        if v is None or not math.isfinite(v):
            out.append(" ")
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


class GradCollector(Callback):
    """Gradient norms of each layer's W, kept in memory for the end-of-run table (mean per epoch)."""

    def __init__(self):
        self.epochs: list[int] = []
        self.layers: list[int] = []
        self.values: list[float] = []

    def on_step_log(self, log):
        weights = [i for i, param in enumerate(log.grad_params) if param == "W"]
        n = log.count
        self.epochs += np.repeat(log.epochs[:n], len(weights)).tolist()
        self.layers += [log.grad_layers[i] for i in weights] * n
        self.values += log.grads[:n, weights, 0].ravel().tolist()

    def per_layer(self) -> dict[int, list[float]]:
        from dlexp.rundir.summary import layer_epoch_means

        layers, _epochs, means = layer_epoch_means(self.epochs, self.layers, self.values)
        return {layer: means[i].tolist() for i, layer in enumerate(layers)}


class TrainDisplay(Callback):
    """Progress while training. Interactive: a rich bar with loss, val loss and ETA. Otherwise
    one plain line per epoch (at most ~20 lines), or nothing but the summary with ``quiet``."""

    def __init__(self, console: Console, epochs: int, name: str, interactive: bool, quiet: bool):
        self.console = console
        self.epochs = epochs
        self.interactive = interactive
        self.quiet = quiet
        self.every = max(1, epochs // 20)
        self.progress = None
        if interactive:
            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                     TextColumn("epoch {task.completed}/{task.total}"),
                                     TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
            self.task = self.progress.add_task(name, total=epochs, loss="—", val="—")

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def on_epoch(self, row):
        if self.progress:
            self.progress.update(self.task, completed=row["epoch"], loss=num(row["train_loss"]), val=num(row["val_loss"]))
        elif not self.quiet and (row["epoch"] % self.every == 0 or row["epoch"] == self.epochs):
            parts = [f"epoch {row['epoch']}/{self.epochs}", f"train_loss {num(row['train_loss'])}",
                     f"val_loss {num(row['val_loss'])}"]
            if "val_acc" in row:
                parts += [f"train_acc {num(row['train_acc'])}", f"val_acc {num(row['val_acc'])}"]
            self.console.print("  ".join(parts), highlight=False, soft_wrap=True)


def summary_tables(summary: dict, grads: GradCollector) -> list[Table]:
    final = summary.get("final") or {}
    metrics = Table(title=f"{summary.get('name')} — {summary.get('status')}", show_header=True)
    metrics.add_column("metric")
    metrics.add_column("final", justify="right")
    best = summary.get("best") or {}
    monitor = best.get("monitor", "val_loss")
    metrics.add_column(f"at best {monitor} (epoch {best.get('epoch', '—')})", justify="right")
    for key in (*split_metric_columns("train", "val", "test"), "penalty", "lr", "grad_norm_total"):
        if key in final:
            metrics.add_row(key, num(final.get(key)), num(best.get(key)) if key in best else "")
    metrics.add_row("epochs / steps", f"{summary.get('epochs')} / {summary.get('steps')}", "")
    metrics.add_row("wall time (s)", num(summary.get("wall_s")), "")
    metrics.add_row("grad ratio first/last layer", num(summary.get("grad_ratio")), "")
    layers = Table(title="gradient norm of W per layer (mean over each epoch's logged steps)")
    layers.add_column("layer", justify="right")
    layers.add_column("first epoch", justify="right")
    layers.add_column("last epoch", justify="right")
    layers.add_column("per epoch (log scale)")
    for layer, values in grads.per_layer().items():
        layers.add_row(str(layer), num(values[0]), num(values[-1]), sparkline(values[-40:]))
    return [metrics, layers]


class RunsProgress:
    """A rich bar over the runs of a sweep or grid (done / running / failed / diverged) on a terminal;
    silent otherwise. ``slots`` is how many runs go at once."""

    def __init__(self, console: Console, total: int, slots: int, interactive: bool):
        self.total, self.slots = total, slots
        self.counts = {"done": 0, "failed": 0, "diverged": 0}
        self.progress = None
        if interactive:
            self.progress = Progress(TextColumn("[bold]runs"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                     TextColumn("{task.fields[state]}"), TimeElapsedColumn(), console=console,
                                     transient=True)
            self.task = self.progress.add_task("runs", total=total, state=self._state())

    def _state(self) -> str:
        running = min(self.slots, self.total - self.counts["done"])
        return (f"running {running}  failed {self.counts['failed']}  diverged {self.counts['diverged']}")

    def __enter__(self) -> RunsProgress:
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.stop()

    def on_result(self, result: dict[str, Any]) -> None:
        self.counts["done"] += 1
        if result["status"] in ("failed", "diverged"):
            self.counts[result["status"]] += 1
        if self.progress:
            self.progress.update(self.task, completed=self.counts["done"], state=self._state())
