"""The per-step rows of ``grad_norms.csv`` and ``layer_stats.csv``, kept as numbers in preallocated
arrays (step × row × statistic) and turned into CSV text in bulk.

The trainer fills one slot per logged step (a few NumPy copies); at the end of an epoch, when the
arrays are full, and when training stops, it hands the filled block to its listeners and starts
over. The text is made by :func:`dlexp.rundir.stepformat.block_text`, here or in a second process
(:meth:`StepLog.message` is the block as that process reads it); it writes every number exactly as
:func:`~dlexp.rundir.csvlog.format_value` does (Python's shortest round-trip ``repr``, NaN as an
empty field), so the files hold the same bytes as when each row was formatted on its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlexp.rundir.csvlog import csv_field
from dlexp.rundir.schema import GRAD_COLUMNS, GRAD_STATISTICS, LAYER_COLUMNS, LAYER_STATISTICS
from dlexp.rundir.stepformat import block_message, texts

# a layer's numbers as the model measures them: its std is stored as a variance (already clipped at
# 0) and its square root taken when the row is written, with Python's ``** 0.5`` (NumPy's may round
# differently)
LAYER_VARIANCE = LAYER_STATISTICS.index("act_std")
# at most about this much memory per block of steps: small enough that a block reaches the formatting
# process (rundir/formatproc.py) while the epoch trains, leaving little for it to do at the epoch's end
BLOCK_BYTES = 1 << 16


class StepLog:
    """The logged steps of a run since the last hand-over.

    Args:
        grad_layers, grad_params: the layer index and parameter name of each gradient row, in the
            rows' order (``layer``, ``param`` columns).
        activations: the ``activation`` column of each layer row (one per Dense layer).
        capacity: steps held before a hand-over (default: about :data:`BLOCK_BYTES` of numbers).
    """

    def __init__(self, grad_layers: list[int], grad_params: list[str], activations: list[str],
                 capacity: int | None = None):
        self.grad_layers = list(grad_layers)
        self.grad_params = list(grad_params)
        self.activations = list(activations)
        n_grad, n_layer = len(self.grad_params), len(self.activations)
        per_step = 8 * (2 + n_grad * len(GRAD_STATISTICS) + n_layer * len(LAYER_STATISTICS))
        self.capacity = int(capacity or min(4096, max(16, BLOCK_BYTES // per_step)))
        self.steps = np.zeros(self.capacity, dtype=np.int64)
        self.epochs = np.zeros(self.capacity, dtype=np.int64)
        self.grads = np.zeros((self.capacity, n_grad, len(GRAD_STATISTICS)))
        self.layers = np.zeros((self.capacity, n_layer, len(LAYER_STATISTICS)))
        self.count = 0
        # the constant middle of each row: "layer,param," and "layer,activation,"
        self._grad_keys = [f"{layer},{csv_field(param)}," for layer, param in zip(self.grad_layers, self.grad_params)]
        self._layer_keys = [f"{layer},{csv_field(name)}," for layer, name in enumerate(self.activations)]

    @property
    def full(self) -> bool:
        return self.count == self.capacity

    def clear(self) -> None:
        self.count = 0

    def layout(self) -> dict:
        """What :func:`dlexp.rundir.stepformat.texts` needs to know of this log's rows (JSON-ready)."""
        return {"grad_keys": self._grad_keys, "layer_keys": self._layer_keys, "grad_stats": len(GRAD_STATISTICS),
                "layer_stats": len(LAYER_STATISTICS), "layer_sqrt": LAYER_VARIANCE}

    def texts(self) -> tuple[str, str]:
        """grad_norms.csv's and layer_stats.csv's lines for the held steps, made here (the run writer
        may have them made in a second process instead: :mod:`dlexp.rundir.formatproc`)."""
        return texts(self.message(), self.layout())

    def message(self) -> bytes:
        """The held steps as one block for :func:`dlexp.rundir.stepformat.texts` (raw little-endian numbers)."""
        n = self.count
        raw = [np.ascontiguousarray(a[:n], dtype=a.dtype.newbyteorder("<")).tobytes()
               for a in (self.steps, self.epochs, self.grads, self.layers)]
        return block_message(n, *raw)

    def rows(self, slot: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """One held step's rows as dicts keyed by the files' columns (for listeners that take rows)."""
        step, epoch = int(self.steps[slot]), int(self.epochs[slot])
        grad_rows = [dict(zip(GRAD_COLUMNS, (step, epoch, layer, param, *values)))
                     for layer, param, values in zip(self.grad_layers, self.grad_params, self.grads[slot].tolist())]
        layer_rows = []
        for layer, (name, values) in enumerate(zip(self.activations, self.layers[slot].tolist())):
            values[LAYER_VARIANCE] = values[LAYER_VARIANCE] ** 0.5
            layer_rows.append(dict(zip(LAYER_COLUMNS, (step, epoch, layer, name, *values))))
        return grad_rows, layer_rows

