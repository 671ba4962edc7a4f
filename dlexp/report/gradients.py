"""Gradient health of a run, layer by layer, computed from its run directory alone.

For each Dense layer ``i`` (0 = input side; the last one is the output layer) and its weight
matrix ``layers.i.W``, from ``grad_norms.csv`` and ``layer_stats.csv``:

- ``grad_norm_first_epoch`` / ``grad_norm_last_epoch``: mean of the logged ‖∂L/∂W‖₂ over the
  first and over the last epoch that has rows (a run stopped mid-epoch: its partial last epoch).
- ``ratio_to_output``: ``grad_norm_last_epoch`` over the output layer's, and ``log10_ratio``.
  ``ratio_to_output_first_epoch`` is the same over the first epoch.
- ``update_ratio``: mean ‖ΔW‖ / ‖W‖ of an optimizer step over the last epoch.
- ``saturated_pct`` / ``dead_pct``: mean over the last epoch's logged steps of the share of
  (sample, unit) entries with f'(z) < 5% of max f' / of units that output 0 for every sample.

Verdict of a layer, first rule that holds (defaults in :class:`Thresholds`):

1. ``exploding``: ``ratio_to_output`` > ``explode_above`` (1e3), or the layer's gradient norm itself,
   over the first or the last epoch, > ``explode_norm_above`` (1e4): a gradient can blow up in every
   layer at once, which the ratio alone does not see;
2. ``vanishing``: ``ratio_to_output`` < ``vanish_below`` (1e-3);
3. ``dead``: ``dead_pct`` > ``dead_above`` (50);
4. ``saturated``: ``saturated_pct`` > ``saturated_above`` (50), for a saturating activation
   (sigmoid, tanh) only — for ReLU-like units f' = 0 just means z ≤ 0, which ``dead`` covers;
5. ``healthy`` otherwise.

Why 1e-3: the output layer's gradient is the reference, so the ratio is how much slower a layer
learns under plain SGD. At 1e-3 a layer needs a thousand epochs to move as far as the output layer
does in one; in practice it stays at its initial weights. Healthy deep nets (ReLU + He,
BatchNorm) keep every layer within 10^±1 of the output layer, so three decades leave a wide margin
and still flag the textbook case: ten sigmoid layers (each f' ≤ 0.25) reach 10^-6 at layer 0.

Every flag that holds is kept in ``flags``; a run's verdict is its worst layer's, worst first in
the order above (``VERDICTS`` read backwards).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlexp.errors import ArgumentError
from dlexp.report.rundata import RunData, read_run
from dlexp.rundir.summary import layer_epoch_means

VERDICTS = ["healthy", "saturated", "dead", "vanishing", "exploding"]  # mild to severe
PROBLEMS = VERDICTS[1:]
SATURATING = {"sigmoid", "tanh"}

LAYER_COLUMNS = ["layer", "activation", "grad_norm_first_epoch", "grad_norm_last_epoch", "ratio_to_output",
                 "log10_ratio", "ratio_to_output_first_epoch", "update_ratio", "saturated_pct", "dead_pct",
                 "verdict", "flags"]

FIXES = {
    "vanishing": "ReLU or Leaky ReLU instead of sigmoid/tanh, He initialisation, BatchNorm, "
                 "an adaptive optimizer (Adam, RMSProp)",
    "exploding": "a lower learning rate, gradient clipping (training.clip_grad_norm), BatchNorm, "
                 "a smaller initial scale (Xavier or He rather than normal/uniform)",
    "saturated": "BatchNorm before the activation, Xavier initialisation, standardised inputs, "
                 "a lower learning rate, or ReLU",
    "dead": "Leaky ReLU or ELU, He initialisation, a lower learning rate, BatchNorm",
}


@dataclass(frozen=True)
class Thresholds:
    """Where a layer stops being healthy. Percentages are in percent (50 = half)."""

    vanish_below: float = 1e-3
    explode_above: float = 1e3
    saturated_above: float = 50.0
    dead_above: float = 50.0
    explode_norm_above: float = 1e4  # mean ‖∂L/∂W‖ of a layer over an epoch; see the module docstring

    def __post_init__(self) -> None:
        checks = [
            ("vanish_below", self.vanish_below, 0 < self.vanish_below < 1, "a number in (0, 1)"),
            ("explode_above", self.explode_above, 1 < self.explode_above < math.inf, "a finite number > 1"),
            ("saturated_above", self.saturated_above, 0 <= self.saturated_above <= 100,
             "a percentage in [0, 100]"),
            ("dead_above", self.dead_above, 0 <= self.dead_above <= 100, "a percentage in [0, 100]"),
            ("explode_norm_above", self.explode_norm_above, 0 < self.explode_norm_above < math.inf,
             "a finite number > 0"),
        ]
        for argument, value, ok, accepted in checks:
            if not ok:
                raise ArgumentError(argument, f"{value:g}", f"must be {accepted}")


@dataclass
class RunReport:
    """One run's per-layer table and its verdict."""

    path: Path
    label: str
    status: str
    activation: str
    first_epoch: int
    last_epoch: int
    last_epoch_partial: bool
    layers: pd.DataFrame  # LAYER_COLUMNS, one row per layer, input side first
    verdict: str
    worst_layer: int | None
    diagnosis: str
    fix: str
    config: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        rows = self.layers.to_dict("records")
        for row in rows:
            row["flags"] = list(row["flags"])
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.path), "label": self.label, "status": self.status,
                "activation": self.activation, "first_epoch": self.first_epoch, "last_epoch": self.last_epoch,
                "last_epoch_partial": self.last_epoch_partial, "verdict": self.verdict,
                "worst_layer": self.worst_layer, "diagnosis": self.diagnosis, "fix": self.fix,
                "layers": self.records()}


def judge_layer(row: dict[str, Any], th: Thresholds) -> list[str]:
    """Every rule that holds for one layer, most severe first (empty: healthy)."""
    flags = []
    ratio = row["ratio_to_output"]
    if (_finite(ratio) and ratio > th.explode_above) or _too_large(row, th):
        flags.append("exploding")
    if _finite(ratio) and ratio < th.vanish_below:
        flags.append("vanishing")
    if _finite(row["dead_pct"]) and row["dead_pct"] > th.dead_above:
        flags.append("dead")
    saturated = row["saturated_pct"]
    if row["activation"] in SATURATING and _finite(saturated) and saturated > th.saturated_above:
        flags.append("saturated")
    return flags


def layer_table(run: RunData, th: Thresholds) -> tuple[pd.DataFrame, int, int]:
    """The per-layer frame (LAYER_COLUMNS) and the first and last epoch it summarises."""
    w = run.grads[run.grads["param"] == "W"]
    first, last = int(w["epoch"].min()), int(w["epoch"].max())

    def mean_by_layer(frame: pd.DataFrame, epoch: int, column: str) -> pd.Series:
        """The column's mean per layer over the epoch's rows (the same means as the summary's grad_ratio)."""
        rows = frame[frame["epoch"] == epoch]
        layers, _, means = layer_epoch_means(rows["epoch"].to_numpy(), rows["layer"].to_numpy(),
                                             rows[column].to_numpy(dtype=np.float64))
        return pd.Series(means[:, 0] if layers else [], index=layers, dtype=float).dropna()

    first_norm = mean_by_layer(w, first, "grad_norm")
    last_norm = mean_by_layer(w, last, "grad_norm")
    update = mean_by_layer(w, last, "update_ratio")
    layers = sorted(set(w["layer"]))
    output = layers[-1]
    stats = run.layers
    if len(stats):
        stats_last = stats[stats["epoch"] == min(last, int(stats["epoch"].max()))]
        saturated = stats_last.groupby("layer")["saturated_fraction"].mean() * 100.0
        dead = stats_last.groupby("layer")["dead_fraction"].mean() * 100.0
        names = stats.groupby("layer")["activation"].last()
    else:
        saturated = dead = pd.Series(dtype=float)
        names = pd.Series(dtype=object)
    rows = []
    for layer in layers:
        rows.append({
            "layer": layer,
            "activation": str(names.get(layer, _config_activation(run, layer == output))),
            "grad_norm_first_epoch": float(first_norm.get(layer, np.nan)),
            "grad_norm_last_epoch": float(last_norm.get(layer, np.nan)),
            "ratio_to_output": _ratio(last_norm.get(layer, np.nan), last_norm.get(output, np.nan)),
            "ratio_to_output_first_epoch": _ratio(first_norm.get(layer, np.nan),
                                                  first_norm.get(output, np.nan)),
            "update_ratio": float(update.get(layer, np.nan)),
            "saturated_pct": float(saturated.get(layer, np.nan)),
            "dead_pct": float(dead.get(layer, np.nan)),
        })
    for row in rows:
        ratio = row["ratio_to_output"]
        if _finite(ratio) and ratio > 0:
            row["log10_ratio"] = math.log10(ratio)
        else:
            row["log10_ratio"] = -math.inf if ratio == 0 else math.nan
        row["flags"] = judge_layer(row, th)
        row["verdict"] = row["flags"][0] if row["flags"] else "healthy"
    return pd.DataFrame(rows, columns=LAYER_COLUMNS), first, last


def grad_report(path: str | Path, th: Thresholds = Thresholds(), label: str | None = None) -> RunReport:
    """Read a run directory and judge its gradients (raises DlexpError naming the path)."""
    return report_run(read_run(path), th, label)


def report_run(run: RunData, th: Thresholds = Thresholds(), label: str | None = None) -> RunReport:
    """Judge the gradients of a run already read from disk."""
    table, first, last = layer_table(run, th)
    verdict, worst = run_verdict(table, th)
    activation = _config_activation(run, False)
    hidden = table[table["layer"] < table["layer"].max()]
    if len(hidden):
        activation = str(hidden["activation"].iloc[0])
    partial = _partial(run, last)
    diagnosis = describe(table, verdict, activation, th, run.status)
    return RunReport(path=run.path, label=label or run.name, status=run.status, activation=activation,
                     first_epoch=first, last_epoch=last, last_epoch_partial=partial, layers=table,
                     verdict=verdict, worst_layer=worst, diagnosis=diagnosis, fix=FIXES.get(verdict, ""),
                     config=run.config)


def run_verdict(table: pd.DataFrame, th: Thresholds = Thresholds()) -> tuple[str, int | None]:
    """The worst layer verdict, and the layer showing it most strongly (None if healthy)."""
    verdict = max(table["verdict"], key=VERDICTS.index, default="healthy")
    if verdict == "healthy":
        return verdict, None
    flagged = table[table["verdict"] == verdict]
    if verdict == "exploding":
        return verdict, int(flagged.loc[_most_exploding(flagged, th)[0], "layer"])
    column, pick = {"vanishing": ("ratio_to_output", "idxmin"), "dead": ("dead_pct", "idxmax"),
                    "saturated": ("saturated_pct", "idxmax")}[verdict]
    return verdict, int(flagged.loc[getattr(flagged[column], pick)(), "layer"])


def _most_exploding(flagged: pd.DataFrame, th: Thresholds) -> tuple[Any, bool]:
    """The index of the exploding layer to name, and whether the ratio rule (else the size rule) flags it."""
    by_ratio = flagged["ratio_to_output"] > th.explode_above
    if by_ratio.any():
        return flagged.loc[by_ratio, "ratio_to_output"].idxmax(), True
    return _gradient_size(flagged).idxmax(), False


def _gradient_size(table: pd.DataFrame) -> pd.Series:
    return table[["grad_norm_first_epoch", "grad_norm_last_epoch"]].max(axis=1)


def describe(table: pd.DataFrame, verdict: str, activation: str, th: Thresholds, status: str) -> str:
    """The diagnosis in words: what is wrong, where, and why (the fix is in ``FIXES``)."""
    flagged = table[table["verdict"] == verdict]
    where = layer_ranges(flagged["layer"].tolist())
    get = "gets" if len(flagged) == 1 else "get"
    if verdict == "vanishing":
        worst = flagged.loc[flagged["ratio_to_output"].idxmin()]
        text = (f"vanishing gradients: layer{where} {get} less than {th.vanish_below:g} of the output "
                f"layer's gradient (layer {int(worst['layer'])}: {_power(worst['log10_ratio'])}). "
                + chain_rule_sentence(activation, int(table["layer"].max())))
    elif verdict == "exploding":
        index, by_ratio = _most_exploding(flagged, th)
        worst = flagged.loc[index]
        if by_ratio:
            text = (f"exploding gradients: layer{where} {get} more than {th.explode_above:g} × the output "
                    f"layer's gradient (layer {int(worst['layer'])}: {_power(worst['log10_ratio'])}); the "
                    "backward signal grows as it passes through the layers.")
        else:
            text = (f"exploding gradients: layer{where} {get} a gradient norm above {th.explode_norm_above:g} "
                    f"(layer {int(worst['layer'])}: {_gradient_size(flagged).max():.3g}); steps that large "
                    "throw the weights far from where the loss was measured.")
    elif verdict == "dead":
        worst = flagged.loc[flagged["dead_pct"].idxmax()]
        text = (f"dead units: in layer{where} more than {th.dead_above:g}% of units output 0 for every "
                f"sample (layer {int(worst['layer'])}: {worst['dead_pct']:.0f}%), so no gradient flows "
                "through them.")
    elif verdict == "saturated":
        worst = flagged.loc[flagged["saturated_pct"].idxmax()]
        text = (f"saturated units: in layer{where} more than {th.saturated_above:g}% of {activation} units "
                f"sit on the flat tails where f' < 5% of its maximum (layer {int(worst['layer'])}: "
                f"{worst['saturated_pct']:.0f}%), so little gradient passes.")
    else:
        text = (f"healthy: every layer's gradient is within {th.vanish_below:g}–{th.explode_above:g} × the "
                f"output layer's (first layer: {_power(table.iloc[0]['log10_ratio'])}) and no layer is "
                "saturated or dead past the thresholds.")
    if status == "diverged":
        text += (" The run diverged (non-finite loss or gradient): a lower learning rate or clipping "
                 "usually helps.")
    elif status in ("running", "interrupted", "unknown"):
        text += f" (run {status}: numbers so far)"
    return text


def parse_fail_on(text: str | None) -> list[str]:
    """``"vanishing,exploding"`` -> the verdicts ``fail_on`` names (ArgumentError on an unknown one)."""
    from dlexp.registry import did_you_mean

    if text is None:
        return []
    verdicts = [part.strip() for part in text.split(",") if part.strip()]
    if not verdicts:
        raise ArgumentError("fail_on", repr(text), f"name one or more verdicts (accepted: {', '.join(PROBLEMS)})")
    for verdict in verdicts:
        if verdict not in PROBLEMS:
            hint = did_you_mean(verdict, PROBLEMS)
            raise ArgumentError("fail_on", repr(text), f"unknown verdict '{verdict}'{hint} "
                                f"(accepted: {', '.join(PROBLEMS)})")
    return verdicts


def fail_on_hits(reports: list[RunReport], verdicts: list[str]) -> list[str]:
    """One message per run and verdict in ``verdicts`` that flags one of its layers."""
    messages = []
    for report in reports:
        for verdict in verdicts:
            layers = [int(row.layer) for row in report.layers.itertuples() if verdict in row.flags]
            if layers:
                messages.append(f"{report.label}: {verdict} in layer{layer_ranges(layers)}")
    return messages


def reports_frame(reports: list[RunReport]) -> pd.DataFrame:
    """Every run's layer table in one frame, a run's columns first (``--csv``)."""
    frames = []
    for report in reports:
        frame = report.layers.copy()
        frame["flags"] = frame["flags"].map(";".join)
        for column, value in reversed([("run", report.label), ("run_dir", str(report.path)),
                                       ("status", report.status), ("run_verdict", report.verdict)]):
            frame.insert(0, column, value)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def chain_rule_sentence(activation: str, depth: int) -> str:
    """Why a stack of ``depth`` hidden activations shrinks the backward signal, from sup f'."""
    bound = max_derivative(activation)
    if bound is None:
        return ""
    if bound >= 1.0:
        return (f"{activation}'s derivative reaches {bound:g}, so the decay comes from the weights and from "
                "units that pass little or no gradient.")
    shrink = _power(depth * math.log10(bound))
    return (f"Each {activation} layer multiplies the backward signal by f' ≤ {bound:g} (chain rule), so "
            f"{depth} of them can shrink it by up to {bound:g}^{depth} = {shrink}.")


def max_derivative(activation: str | dict | None) -> float | None:
    """sup f' of an activation (sigmoid 0.25, tanh 1, ReLU 1); None if unknown."""
    from dlexp.nn.activations import make_activation

    try:
        return float(make_activation(activation).max_derivative)
    except (ValueError, TypeError, KeyError):
        return None


def bound_log10(activation: str | dict | None, depth: int) -> float:
    """log10 of the chain-rule bound ∏ sup f' over ``depth`` hidden layers (NaN if unknown)."""
    bound = max_derivative(activation)
    return depth * math.log10(bound) if bound else math.nan


def layer_ranges(layers: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"s 0–2, 5"`` (plural marker for "layer" included), ``[3]`` -> ``" 3"``."""
    if not layers:
        return "s (none)"
    spans, start, prev = [], layers[0], layers[0]
    for layer in layers[1:] + [None]:
        if layer is not None and layer == prev + 1:
            prev = layer
            continue
        spans.append(f"{start}" if start == prev else f"{start}–{prev}")
        if layer is not None:
            start = prev = layer
    return ("s " if len(layers) > 1 else " ") + ", ".join(spans)


def thresholds_dict(th: Thresholds) -> dict[str, float]:
    return asdict(th)


def _power(log10_value: float) -> str:
    if not _finite(log10_value):
        return "0" if log10_value == -math.inf else "n/a"
    return f"10^{log10_value:.1f}"


def _ratio(num: float, den: float) -> float:
    if not (_finite(num) and _finite(den)) or den <= 0:
        return math.nan
    return float(num) / float(den)


def _too_large(row: dict[str, Any], th: Thresholds) -> bool:
    """A layer's gradient norm, over its first or its last epoch, above ``explode_norm_above``."""
    return any(_finite(row[key]) and row[key] > th.explode_norm_above
               for key in ("grad_norm_first_epoch", "grad_norm_last_epoch"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating)) and math.isfinite(value)


def _partial(run: RunData, last: int) -> bool:
    """True when the last epoch with gradient rows has no metrics row yet (stopped mid-epoch)."""
    if not len(run.metrics):
        return run.status != "completed"
    return last not in set(run.metrics["epoch"].astype(int))


def _config_activation(run: RunData, output: bool) -> str:
    model = run.model
    spec = model.get("output_activation" if output else "activation", "?")
    if isinstance(spec, dict):
        spec = spec.get("name", "?")
    return str(spec)
