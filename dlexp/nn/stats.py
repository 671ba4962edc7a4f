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


def layer_stats(model) -> list[dict]:
    """Per-layer activation statistics of the last forward pass (one dict per Dense layer).

    ``saturated_fraction``: share of (sample, unit) entries whose local derivative is below
    5% of the activation's maximum derivative. ``dead_fraction``: share of units whose
    activation is exactly 0 for every sample of the batch (dead ReLUs). The output layer
    reports its logits' mean and std, with NaN for the two fractions.
    """
    ws = model._last_ws
    act = model.activation
    rows = []
    n_hidden = model.n_layers - 1
    if n_hidden:
        counts = [ws.n * w for w in model.sizes[1:-1]]
        if len(ws.a_flat) < 4096 * n_hidden:  # many small layers: a few reduceat calls in all
            sums = np.add.reduceat(ws.a_flat, ws.starts)
            squares = np.add.reduceat(ws.a_flat * ws.a_flat, ws.starts)
            mask = act.saturated_mask(ws.u_flat, ws.a_flat)
            saturated = np.add.reduceat(mask, ws.starts, dtype=np.intp)
            column_sums = [ws.ones @ a for a in ws.a[:n_hidden]] if act.can_die else None
        else:  # few large layers: per layer a BLAS gemv (column sums) and dot, which read memory once
            column_sums = [ws.ones @ a for a in ws.a[:n_hidden]]
            sums = [c.sum() for c in column_sums]
            flats = [ws.a_flat[int(b) : int(b) + c] for b, c in zip(ws.starts, counts)]
            squares = [np.dot(f, f) for f in flats]
            saturated = [act.saturated_count(ws.u[i], ws.a[i]) for i in range(n_hidden)]
        # plain Python numbers from here on: indexing NumPy arrays element by element is slow
        sums = np.asarray(sums, dtype=np.float64).tolist()
        squares = np.asarray(squares, dtype=np.float64).tolist()
        saturated = np.asarray(saturated).tolist()
        # a unit is dead when it is 0 for the whole batch: activations are >= 0 where can_die
        dead = [int(np.count_nonzero(c == 0)) for c in column_sums] if act.can_die else [0] * n_hidden
        for i, (count, width) in enumerate(zip(counts, model.sizes[1:-1])):
            mean, std = _moments(sums[i], squares[i], count)
            rows.append(dict(zip(_ROW_KEYS, (i, act.name, mean, std, saturated[i] / count, dead[i] / width))))
    z = ws.z[-1]
    flat = z.reshape(-1)
    mean, std = _moments((ws.ones @ z).sum(), np.dot(flat, flat), flat.size)
    rows.append(dict(zip(_ROW_KEYS, (model.n_layers - 1, model.output_activation, mean, std, float("nan"),
                                     float("nan")))))
    return rows


def _moments(total, squares, count: int) -> tuple[float, float]:
    """Mean and (biased) std from a sum and a sum of squares: one pass over the data, not two.

    Exact enough for statistics: the variance loses relative precision of about eps * mean^2 / var.
    """
    mean = float(total) / count
    return mean, max(float(squares) / count - mean * mean, 0.0) ** 0.5
