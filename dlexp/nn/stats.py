"""Per-parameter and per-layer statistics of an :class:`~dlexp.nn.model.MLP`'s last step, computed
from its flat buffers and workspaces with as few NumPy calls as the sizes allow.

The keys of a layer's statistics are ``layer_stats.csv``'s columns (:mod:`dlexp.rundir.schema`).
"""

from __future__ import annotations

import numpy as np

from dlexp.rundir.schema import LAYER_COLUMNS

_ROW_KEYS = LAYER_COLUMNS[LAYER_COLUMNS.index("layer"):]  # step and epoch are the trainer's


def segment_squares(model, flat: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Squared L2 norm of each parameter's segment of ``flat``, in ``memory_order`` (float64).

    Many small segments: square once and ``np.add.reduceat`` (two NumPy calls in all). Large
    segments: one BLAS dot per segment, which reads memory once and writes nothing.
    """
    if model.n_params < 4096 * len(model.memory_order):
        np.multiply(flat, flat, out=scratch)
        return np.add.reduceat(scratch, model.segment_starts).astype(np.float64)
    ends = model._segment_ends
    return np.array([np.dot(flat[a:b], flat[a:b]) for a, b in zip(model.segment_starts, ends)], dtype=np.float64)


def layer_statistics(model, out: np.ndarray | None = None) -> np.ndarray:
    """Per-layer activation statistics of the last forward pass: an array (n_layers, 4) of
    ``act_mean``, the variance whose square root is ``act_std``, ``saturated_fraction`` and
    ``dead_fraction`` (layer_stats.csv's columns, :data:`dlexp.rundir.schema.LAYER_STATISTICS`).

    ``saturated_fraction``: share of (sample, unit) entries whose local derivative is below
    5% of the activation's maximum derivative. ``dead_fraction``: share of units whose
    activation is exactly 0 for every sample of the batch (dead ReLUs). The output layer
    reports its logits' mean and variance, with NaN for the two fractions.

    Mean and variance come from one pass (a sum and a sum of squares): exact enough for
    statistics, the variance loses relative precision of about eps * mean^2 / var. The variance is
    clipped at 0; its square root is left to the caller (:func:`layer_stats`, the step log), taken
    with Python's ``** 0.5`` so that every writer gives the same digits.
    """
    ws = model._last_ws
    act = model.activation
    if out is None:
        out = np.empty((model.n_layers, 4))
    n_hidden = model.n_layers - 1
    if n_hidden:
        counts = ws.n * model._hidden_widths
        if len(ws.a_flat) < 4096 * n_hidden:  # many small layers: a few reduceat calls in all
            sums = np.add.reduceat(ws.a_flat, ws.starts)
            squares = np.add.reduceat(ws.a_flat * ws.a_flat, ws.starts)
            mask = act.saturated_mask(ws.u_flat, ws.a_flat)
            saturated = np.add.reduceat(mask, ws.starts, dtype=np.intp)
            column_sums = [ws.ones @ a for a in ws.a[:n_hidden]] if act.can_die else None
        else:  # few large layers: per layer a BLAS gemv (column sums) and dot, which read memory once
            column_sums = [ws.ones @ a for a in ws.a[:n_hidden]]
            sums = [c.sum() for c in column_sums]
            flats = [ws.a_flat[int(b) : int(b + c)] for b, c in zip(ws.starts, counts)]
            squares = [np.dot(f, f) for f in flats]
            saturated = [act.saturated_count(ws.u[i], ws.a[i]) for i in range(n_hidden)]
        hidden = out[:n_hidden]
        mean = np.divide(np.asarray(sums, dtype=np.float64), counts, out=hidden[:, 0])
        variance = np.asarray(squares, dtype=np.float64) / counts
        variance -= mean * mean
        np.maximum(variance, 0.0, out=hidden[:, 1])
        np.divide(np.asarray(saturated, dtype=np.int64), counts, out=hidden[:, 2])
        # a unit is dead when it is 0 for the whole batch: activations are >= 0 where can_die
        if act.can_die:
            dead = np.array([np.count_nonzero(c == 0) for c in column_sums], dtype=np.int64)
            np.divide(dead, model._hidden_widths, out=hidden[:, 3])
        else:
            hidden[:, 3] = 0.0
    z = ws.z[-1]
    flat = z.reshape(-1)
    count = flat.size
    mean = float((ws.ones @ z).sum()) / count
    out[-1] = (mean, max(float(np.dot(flat, flat)) / count - mean * mean, 0.0), np.nan, np.nan)
    return out


def layer_stats(model) -> list[dict]:
    """:func:`layer_statistics` as one dict per Dense layer, keyed by layer_stats.csv's columns."""
    names = [model.activation.name] * (model.n_layers - 1) + [model.output_activation]
    rows = []
    for layer, (name, values) in enumerate(zip(names, layer_statistics(model).tolist())):
        values[1] = values[1] ** 0.5
        rows.append(dict(zip(_ROW_KEYS, (layer, name, *values))))
    return rows
