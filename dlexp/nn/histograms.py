"""Per-layer histograms of one training step, with bins fixed per kind so that steps and layers compare.

Kinds, for Dense layer ``i`` (0 = input side), taken from the same forward/backward pass as the
step's gradient and before the optimizer changes the weights:

- ``pre_activation``: the activation's input (after BatchNorm/LayerNorm where present), hidden layers.
- ``activation``: the activation's output (before dropout and any residual skip), hidden layers.
- ``gradient``: the back-propagated gradient ∂L/∂z at the Dense layer's output (z = xW + b; for the
  output layer the logits' gradient), every layer (L is the batch's mean loss).
- ``weight``: the entries of W, every layer.

Bins: ``pre_activation`` 100 of width 0.2 on [−10, 10]; ``activation`` 50 over the activation's range
where it is bounded (sigmoid [0, 1], tanh [−1, 1]), else 100 of width 0.1 on [−5, 5]; ``weight`` 100 of
width 0.02 on [−1, 1]; ``gradient`` on a signed log scale, 4 bins a decade from 10⁻¹⁰ to 10 on each
side of 0 (88 bins; the two innermost hold |g| < 10^−9.75, exact zeros included), because gradients
of different layers differ by orders of magnitude. The first and last bin of each kind also hold
every value beyond the range, so a histogram's counts add up to the number of values. Only bins
with a count above 0 become rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("activation", "pre_activation", "gradient", "weight")
GRADIENT_DECADES = (-10, 1)  # |g| from 10^-10 to 10^1
BINS_PER_DECADE = 4


@dataclass(frozen=True)
class Bins:
    """``count`` bins between ``low`` and ``high`` in position space; ``edges`` in value units."""

    low: float
    high: float
    count: int
    signed_log: bool = False

    @property
    def edges(self) -> np.ndarray:
        """Bin edges in value units, rounded to 12 significant digits (-1.8, not -1.799999999999999)."""
        positions = np.linspace(self.low, self.high, self.count + 1)
        if self.signed_log:
            # position p ↦ value sign(p)·10^(|p| + lowest decade), and 0 ↦ 0
            zero = positions == 0
            positions = np.sign(positions) * 10.0 ** (np.abs(positions) + GRADIENT_DECADES[0])
            positions[zero] = 0.0
        return np.array([float(f"{v:.12g}") for v in positions]) + 0.0  # + 0.0: no -0.0

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Histogram of ``values`` (any shape): counts per bin, beyond-range values in the edge bins."""
        x = values.reshape(-1).astype(np.float64, copy=False)
        if self.signed_log:  # bins count outwards from 0 on each side; a value's sign picks the side
            with np.errstate(divide="ignore"):
                magnitude = np.log10(np.abs(x))
            np.clip(magnitude, GRADIENT_DECADES[0], GRADIENT_DECADES[1], out=magnitude)
            outward = np.floor((magnitude - GRADIENT_DECADES[0]) * BINS_PER_DECADE)
            half = self.count // 2
            index = np.where(np.signbit(x), half - 1 - outward, half + outward)
        else:
            index = np.floor((x - self.low) * (self.count / (self.high - self.low)))
        np.clip(index, 0, self.count - 1, out=index)  # ±inf land in the edge bins
        if np.isnan(index).any():  # NaN has no bin: left out
            index = index[~np.isnan(index)]
        return np.bincount(index.astype(np.intp), minlength=self.count)


def bins_for(kind: str, activation_range: tuple[float, float] | None = None) -> Bins:
    if kind == "pre_activation":
        return Bins(-10.0, 10.0, 100)
    if kind == "activation":
        if activation_range is not None:
            return Bins(float(activation_range[0]), float(activation_range[1]), 50)
        return Bins(-5.0, 5.0, 100)
    if kind == "weight":
        return Bins(-1.0, 1.0, 100)
    if kind == "gradient":
        span = float(GRADIENT_DECADES[1] - GRADIENT_DECADES[0])
        return Bins(-span, span, int(2 * span * BINS_PER_DECADE), signed_log=True)
    raise ValueError(f"unknown histogram kind {kind!r} (accepted: {', '.join(KINDS)})")


class LayerHistograms:
    """Histogram rows of a model's last training step; the bins are fixed when it is built."""

    def __init__(self, model):
        self.model = model
        self.bins = {kind: bins_for(kind, model.activation.output_range) for kind in KINDS}
        self._edges = {kind: b.edges.tolist() for kind, b in self.bins.items()}

    def rows(self, step: int, epoch: int) -> list[dict]:
        """Rows ``step, epoch, layer, kind, bin_low, bin_high, count`` (non-empty bins only)."""
        model = self.model
        ws = model._last_ws
        rows: list[dict] = []
        for i in range(model.n_layers):
            arrays = []
            if model.is_hidden(i):
                arrays += [("pre_activation", ws.u[i]), ("activation", ws.a[i]), ("gradient", ws.grad_z[i])]
            else:
                arrays.append(("gradient", ws.grad_out))
            arrays.append(("weight", model.param(f"layers.{i}.W")))
            for kind, values in arrays:
                edges = self._edges[kind]
                counts = self.bins[kind].counts(values)
                for k in np.flatnonzero(counts).tolist():
                    rows.append({"step": step, "epoch": epoch, "layer": i, "kind": kind, "bin_low": edges[k],
                                 "bin_high": edges[k + 1], "count": int(counts[k])})
        return rows
