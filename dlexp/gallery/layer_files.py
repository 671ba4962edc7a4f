"""A run's per-layer files as the papers gallery reads them: ``layer_stats.csv``, ``histograms.csv``,
and the quantiles of one histogram (:mod:`dlexp.nn.histograms` writes the bins)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from dlexp import rundir as rd


def layer_stats(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / rd.LAYER_STATS)


def histograms(run_dir: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / rd.HISTOGRAMS)


def quantile(bins: pd.DataFrame, q: float) -> float:
    """The ``q`` quantile of one histogram (rows bin_low, bin_high, count), linear within its bin."""
    bins = bins.sort_values("bin_low")
    cumulative = bins["count"].cumsum().to_numpy()
    target = q * cumulative[-1]
    k = int(np.searchsorted(cumulative, target))
    before = cumulative[k - 1] if k else 0
    low, high = bins["bin_low"].iloc[k], bins["bin_high"].iloc[k]
    return float(low + (high - low) * (target - before) / bins["count"].iloc[k])


def median_magnitude(bins: pd.DataFrame) -> float:
    """Median of |value| of a signed-log histogram (gradients), to a quarter decade: the geometric centre
    of the bin holding it."""
    magnitude_low = np.minimum(bins["bin_low"].abs(), bins["bin_high"].abs()).to_numpy()
    magnitude_high = np.maximum(bins["bin_low"].abs(), bins["bin_high"].abs()).to_numpy()
    order = np.argsort(magnitude_low, kind="stable")
    cumulative = np.cumsum(bins["count"].to_numpy()[order])
    k = order[int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))]
    low, high = magnitude_low[k], magnitude_high[k]
    return float(math.sqrt(low * high)) if low > 0 else float(high)


def step_slice(frame: pd.DataFrame, step: int, layer: int, kind: str | None = None) -> pd.DataFrame:
    """The rows of one step and layer (and histogram ``kind``)."""
    sel = (frame["step"] == step) & (frame["layer"] == layer)
    if kind is not None:
        sel &= frame["kind"] == kind
    return frame[sel]
