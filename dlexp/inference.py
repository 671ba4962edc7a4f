"""A trained run applied to new rows: predictions, probabilities, and metrics on labelled data.

:func:`load_run` reads a run directory (final weights, preprocessing, config) into a
:class:`TrainedRun`. Data is a CSV path (read with the run's column rules), a pandas DataFrame
(its columns by name), or an array of raw feature values in ``feature_names`` order.

Classification: :meth:`TrainedRun.predict` gives the class of each row as the training labelled
it (class names; numbers for a numeric target), whatever the output activation (one output: p ≥ 0.5,
several: argmax, as the accuracy in metrics.csv counts them); :meth:`TrainedRun.predict_proba`
gives one probability per class (``[1 - p, p]`` for a single sigmoid output) and needs a sigmoid or
softmax output. Regression: predictions in the target's units.

:func:`classification_report` is scikit-learn's ``confusion_matrix`` and ``classification_report``:
rows of the matrix are true classes, columns predicted ones; precision, recall and F1 are 0 where
their denominator is 0; ``macro`` averages classes equally, ``weighted`` by their support.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlexp import rundir as rd
from dlexp.data.csv import CsvFormat, parse_csv_text
from dlexp.data.csv_file import CsvFile
from dlexp.data.preprocessing import Preprocessing
from dlexp.errors import DataError, DlexpError
from dlexp.nn.model import MLP
from dlexp.trainer import Split, predicted_classes, split_metrics


@dataclass
class TrainedRun:
    run_dir: Path
    model: MLP
    preprocessing: Preprocessing
    loss: Any

    @property
    def task(self) -> str:
        return self.preprocessing.task

    @property
    def class_names(self) -> list[str] | None:
        return self.preprocessing.class_names

    # -- data in ------------------------------------------------------------------------------

    def table(self, data, shown: str | None = None) -> CsvFile:
        """``data`` (a CSV path or a DataFrame) parsed with the run's column rules."""
        if hasattr(data, "to_csv"):  # a pandas DataFrame: its columns by name
            return parse_csv_text(data.to_csv(index=False), shown or "DataFrame", CsvFormat(delimiter=","))
        return self.preprocessing.read(Path(data), shown or str(data))

    def features(self, data) -> np.ndarray:
        """The model's input rows for ``data``: standardized, in the model's dtype."""
        if isinstance(data, np.ndarray):
            X = np.asarray(data, dtype=np.float64)
            expected = len(self.preprocessing.feature_names)
            if X.ndim != 2 or X.shape[1] != expected:
                raise DataError(f"features: shape {X.shape}; expected (n, {expected}) raw values in the order "
                                f"{self.preprocessing.feature_names[:5]}...")
            if self.preprocessing.feature_mean is not None:
                X = (X - self.preprocessing.feature_mean) / self.preprocessing.feature_std
        else:
            X = self.preprocessing.features(data if isinstance(data, CsvFile) else self.table(data))
        return np.ascontiguousarray(X, dtype=self.model.dtype)

    # -- predictions --------------------------------------------------------------------------

    def outputs(self, data) -> np.ndarray:
        """The model's outputs (after its output activation), evaluation mode."""
        return self.model.predict_proba(self.features(data))

    def predict(self, data) -> np.ndarray:
        """Class labels (classification) or values in the target's units (regression: ``(n,)`` for one target)."""
        out = self.outputs(data)
        if self.task == "classification":
            return self.labels(predicted_classes(out))
        values = self.preprocessing.target_units(out)
        return values[:, 0] if values.shape[1] == 1 else values

    def predict_proba(self, data) -> np.ndarray:
        """``(n, n_classes)`` class probabilities, columns in ``class_names`` order."""
        if self.task != "classification":
            raise DlexpError(f"{self.run_dir}: predict_proba is for classification; this run is a regression")
        if self.model.output_activation not in ("sigmoid", "softmax"):
            raise DlexpError(f"{self.run_dir}: the model's output activation is {self.model.output_activation}, so "
                             "its outputs are not probabilities; train with a sigmoid or softmax output "
                             "(loss bce, cce or sparse_cce) to get them")
        out = self.outputs(data)
        return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out

    def labels(self, indices: np.ndarray) -> np.ndarray:
        """Class indices as the training data labelled them: names, or numbers for a numeric target."""
        classes = self.preprocessing.encoding.classes
        if classes["kind"] == "numeric":
            values = np.asarray(classes["values"], dtype=np.float64)
            if np.all(values == np.round(values)):
                values = values.astype(np.int64)
            return values[indices]
        return np.asarray(classes["names"], dtype=object)[indices]

    # -- metrics ------------------------------------------------------------------------------

    def evaluate(self, data) -> dict[str, Any]:
        """Metrics on labelled ``data`` (the target column must be there): as metrics.csv names them
        without the split prefix (``loss``, ``acc`` or ``rmse``, ``mae``, ``r2``; ``n_rows``), and for
        classification ``confusion_matrix`` and ``per_class`` (see :func:`classification_report`)."""
        table = data if isinstance(data, CsvFile) else self.table(data)
        X = self.features(table)
        y = self.preprocessing.encoding.encode_target(table)
        classification = self.task == "classification"
        if not classification and self.preprocessing.target_mean is not None:
            y = (y - self.preprocessing.target_mean) / self.preprocessing.target_std
        n_outputs = self.model.sizes[-1]
        split = Split(X, self.loss.targets(y, n_outputs, self.model.dtype), y if classification else None,
                      self.preprocessing.target_std)
        result: dict[str, Any] = {"n_rows": len(X), **split_metrics(self.model, self.loss, split)}
        if classification:
            predicted = predicted_classes(self.model.predict_proba(X))
            result.update(classification_report(y, predicted, self.class_names))
        return result


def classification_report(true: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Confusion matrix (rows: true class, columns: predicted) and per-class precision, recall, F1, support."""
    n = len(class_names)
    matrix = np.bincount(np.asarray(true, dtype=np.int64) * n + np.asarray(predicted, dtype=np.int64),
                         minlength=n * n).reshape(n, n)
    hits = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(matrix.sum(axis=0) > 0, hits / matrix.sum(axis=0), 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                 for name, p, r, f, s in zip(class_names, precision, recall, f1, support)]
    weights = support / support.sum()
    averages = {"macro": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                          "f1": float(f1.mean()), "support": int(support.sum())},
                "weighted": {"precision": float(weights @ precision), "recall": float(weights @ recall),
                             "f1": float(weights @ f1), "support": int(support.sum())}}
    return {"confusion_matrix": matrix.tolist(), "per_class": per_class, "averages": averages}


def load_run(path: str | Path) -> TrainedRun:
    """A finished run directory as a :class:`TrainedRun` (final weights, preprocessing, loss)."""
    from dlexp.config import load_mapping, validate_mapping
    from dlexp.experiment import resolve_loss

    run_dir = Path(path)
    shown = str(path)
    if not run_dir.is_dir() or not rd.is_run_dir(run_dir):
        raise DlexpError(f"{shown}: not a dlexp run directory (no config.yaml / metrics.csv)")
    weights = run_dir / "checkpoints" / "final.npz"
    if not weights.is_file():
        status = "unknown"
        try:
            status = rd.read_summary(run_dir).get("status", status)
        except (OSError, ValueError):
            pass
        raise DlexpError(f"{shown}: no final weights (checkpoints/final.npz; the run's status is {status}); "
                         "only a completed run can predict (resume it with `dlexp train --resume`)")
    preprocessing = Preprocessing.load(run_dir)
    cfg = validate_mapping(load_mapping(run_dir / rd.CONFIG, shown=f"{shown}/config.yaml"), f"{shown}/config.yaml")
    n_classes = len(preprocessing.class_names) if preprocessing.class_names else None
    loss, _, _ = resolve_loss(cfg, preprocessing.task, n_classes, f"{shown}/config.yaml")
    try:
        model = MLP.load(weights)
    except (ValueError, KeyError, OSError) as exc:
        raise DlexpError(f"{weights}: unreadable weights ({' '.join(str(exc).split())[:200]})") from None
    return TrainedRun(run_dir=run_dir, model=model, preprocessing=preprocessing, loss=loss)
