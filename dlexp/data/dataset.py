"""``load_data``: config -> generated or read data -> random split (file order kept) -> standardized features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlexp.config import DataConfig
from dlexp.data.csv import read_csv_table
from dlexp.data.split import fit_standardizer, split_indices, standardize
from dlexp.data.synthetic import make_synthetic


@dataclass
class Dataset:
    """Train/val/test arrays ready for the trainer.

    X arrays are float64 ``(n, d)``, C-contiguous. Classification y: int64 ``(n,)`` class indices
    ``0..C-1``; regression y: float64 ``(n, k)``. Val and test may have 0 rows (same dtype and
    ndim). When standardized, ``feature_mean``/``feature_std`` are the training statistics that
    were applied to every split (targets are never standardized).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    feature_names: list[str]
    class_names: list[str] | None
    target_names: list[str]
    description: str
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def load_data(cfg: DataConfig, base_dir: Path, rng: np.random.Generator) -> Dataset:
    """Build the dataset ``cfg`` describes; ``rng`` is its only randomness (generation, then split).

    A relative ``cfg.path`` is read from ``base_dir`` (the config file's folder). Bad data raises
    :class:`~dlexp.errors.DataError` with one line naming the file as written in the config.
    """
    if cfg.source == "synthetic":
        X, y, kind = make_synthetic(
            cfg.kind, cfg.n_samples, cfg.n_features, cfg.n_classes, cfg.noise, cfg.task, rng
        )
        task = kind.task
        n_classes = cfg.n_classes if task == "classification" else None
        feature_names = [f"x{i + 1}" for i in range(X.shape[1])]
        class_names = [str(c) for c in range(n_classes)] if n_classes else None
        target_names = ["label"] if task == "classification" else ["y"]
        where = f"data (synthetic {cfg.kind})"
        target = "label"
        detail = f"{n_classes} classes" if n_classes else "regression"
        description = f"synthetic {cfg.kind} ({len(X)} samples, {detail})"
    else:
        table = read_csv_table(cfg.path, cfg.target, cfg.features, cfg.task, base_dir)
        X, y, task = table.X, table.y, table.task
        class_names = table.class_names
        n_classes = len(class_names) if class_names is not None else None
        feature_names = table.feature_names
        target_names = [table.target]
        where = cfg.path
        target = table.target
        detail = f"{n_classes} classes" if n_classes else "regression"
        description = f"{cfg.path} ({len(X)} rows, {detail})"

    labels = y if task == "classification" else None
    train, val, test = split_indices(
        len(X), cfg.val_fraction, cfg.test_fraction, rng, labels, where=where, target=target
    )
    splits = [X[train], X[val], X[test]]
    mean = std = None
    if cfg.standardize:
        mean, std = fit_standardizer(splits[0], feature_names, where)
        splits = [standardize(part, mean, std) for part in splits]
    X_train, X_val, X_test = (np.ascontiguousarray(part, dtype=np.float64) for part in splits)
    y_dtype = np.int64 if task == "classification" else np.float64
    y_train, y_val, y_test = (np.ascontiguousarray(y[idx], dtype=y_dtype) for idx in (train, val, test))
    return Dataset(
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        X_test=X_test,
        y_test=y_test,
        task=task,
        n_classes=n_classes,
        feature_names=feature_names,
        class_names=class_names,
        target_names=target_names,
        description=description,
        feature_mean=mean,
        feature_std=std,
    )
