"""A split of data as training sees it, and the metrics of a model over a whole split.

Evaluation runs the model in evaluation mode (running BatchNorm statistics, no dropout masks) one
chunk of rows at a time; the chunk size is part of the result (the loss is summed chunk by chunk),
so it is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlexp.rundir.schema import split_metric_names


@dataclass
class Split:
    """One split of a dataset as the trainer needs it."""

    X: np.ndarray
    targets: np.ndarray  # in the loss's format
    labels: np.ndarray | None  # int class labels, for accuracy
    target_scale: np.ndarray | None = None  # regression: std of each target (RMSE and MAE in its units)

    def __len__(self) -> int:
        return len(self.X)



def predicted_classes(out: np.ndarray) -> np.ndarray:
    """Class predictions from model outputs: one output is thresholded at 0.5 (targets 0/1), several
    are argmaxed — whatever the output activation, so mse on one-hot targets gets an accuracy too."""
    return (out[:, 0] >= 0.5) if out.shape[1] == 1 else out.argmax(axis=1)


def evaluate(model, loss, split: Split | None, chunk: int = 8192) -> tuple[float, float]:
    """(mean data loss, accuracy) over a whole split in evaluation mode; NaN for an empty split.

    Accuracy is NaN for a regression split. See :func:`split_metrics` for every metric.
    """
    metrics = split_metrics(model, loss, split, chunk)
    return metrics["loss"], metrics.get("acc", float("nan"))


def split_metrics(model, loss, split: Split | None, chunk: int = 8192, *,
                  classification: bool | None = None) -> dict[str, float]:
    """Metrics over a whole split in evaluation mode, from one forward pass per chunk of rows.

    Always ``loss`` (the mean data loss); ``acc`` for a classification split (labels), else
    ``rmse``, ``mae`` and ``r2``: per output, ``rmse = sqrt(mean((ŷ - y)²))``, ``mae = mean(|ŷ - y|)``
    (both times ``split.target_scale``, which undoes a standardized target), ``r2 = 1 - Σ(ŷ - y)² /
    Σ(y - ȳ)²`` (NaN when y is constant), then averaged over outputs (scikit-learn's uniform average).
    An empty split gives NaN for each; ``classification`` says which metrics when the split is None.
    """
    if classification is None:
        classification = split is None or split.labels is not None
    names = split_metric_names(classification)
    if split is None or len(split) == 0:
        return dict.fromkeys(names, float("nan"))
    fused = loss.fused or model.output_activation == "identity"
    total = 0.0
    correct = 0
    squares = absolute = 0.0
    for start in range(0, len(split), chunk):
        stop = min(start + chunk, len(split))
        logits = model.forward(split.X[start:stop], training=False)
        out = model.output(logits)
        targets = split.targets[start:stop]
        total += loss.value(logits if fused else out, targets) * (stop - start)
        if classification:
            correct += int(np.count_nonzero(predicted_classes(out) == split.labels[start:stop]))
        else:
            error = out.astype(np.float64) - targets
            squares = squares + np.einsum("ij,ij->j", error, error)
            absolute = absolute + np.abs(error).sum(axis=0)
    n = len(split)
    if classification:
        return {"loss": total / n, "acc": correct / n}
    scale = np.ones(split.targets.shape[1]) if split.target_scale is None else split.target_scale
    spread = split.targets.astype(np.float64) - split.targets.mean(axis=0, dtype=np.float64)
    total_squares = np.einsum("ij,ij->j", spread, spread)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total_squares > 0, 1.0 - squares / total_squares, np.nan)
    return {"loss": total / n, "rmse": float(np.mean(np.sqrt(squares / n) * scale)),
            "mae": float(np.mean(absolute / n * scale)), "r2": float(np.mean(r2))}
