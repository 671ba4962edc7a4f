"""``load_data``: config -> generated or read data -> random split (file order kept) -> standardized features."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.config import DataConfig
from dlexp.data.preprocessing import Preprocessing
from dlexp.data.split import fit_standardizer, split_indices, standardize
from dlexp.data.synthetic import make_synthetic
from dlexp.data.table import ColumnEncoding, csv_format, read_csv_table


@dataclass
class Dataset:
    """Train/val/test arrays ready for the trainer.

    X arrays are float64 ``(n, d)``, C-contiguous. Classification y: int64 ``(n,)`` class indices
    ``0..C-1``; regression y: float64 ``(n, k)``. Val and test may have 0 rows (same dtype and
    ndim). When standardized, ``feature_mean``/``feature_std`` are the training statistics that
    were applied to every split; a regression target standardized (``data.standardize_target``)
    has ``target_mean``/``target_std``, and every split's y is then in standardized units.
    ``preprocessing`` holds all of it, to be saved beside the weights; ``notes`` are one-line
    notices for the user (e.g. an index column left out).
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
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    preprocessing: Preprocessing | None = None
    notes: list[str] = field(default_factory=list)
    delimiter: str | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]


def load_data(cfg: DataConfig, base_dir: Path, rng: np.random.Generator,
              check_inputs: Callable[[int], None] | None = None) -> Dataset:
    """Build the dataset ``cfg`` describes; ``rng`` is its only randomness (generation, then split).

    A relative ``cfg.path`` is read from ``base_dir`` (the config file's folder). Bad data raises
    :class:`~dlexp.errors.DataError` with one line naming the file as written in the config.
    ``check_inputs(n)``, if given, is called with a CSV's number of feature columns as soon as they are
    chosen, before any column is checked or encoded, so a model too wide for them is refused early.
    """
    if cfg.source == "synthetic":
        X, y, kind = _synthetic(cfg, rng)
        task = kind.task
        n_classes = cfg.n_classes if task == "classification" else None
        feature_names = [f"x{i + 1}" for i in range(X.shape[1])]
        target = "label" if task == "classification" else "y"
        classes = ({"kind": "numeric", "names": [str(c) for c in range(n_classes)],
                    "values": [float(c) for c in range(n_classes)]} if n_classes else None)
        encoding = ColumnEncoding([{"name": name, "kind": "numeric"} for name in feature_names], target, task, classes)
        where = f"data (synthetic {cfg.kind})"
        detail = f"{n_classes} classes" if n_classes else "regression"
        description = f"synthetic {cfg.kind} ({len(X)} samples, {detail})"
        notes, delimiter, reading = [], None, None
    else:
        table = _csv_table(cfg, Path(base_dir), check_inputs)
        X, y, task, encoding = table.X, table.y, table.task, table.encoding
        n_classes = len(encoding.classes["names"]) if encoding.classes is not None else None
        feature_names = encoding.feature_names
        where = cfg.path
        target = encoding.target
        detail = f"{n_classes} classes" if n_classes else "regression"
        description = f"{cfg.path} ({len(X)} rows, {detail})"
        notes, delimiter = table.notes, table.delimiter
        reading = dict(vars(csv_format(cfg)), delimiter=delimiter)
    class_names = encoding.class_names
    target_names = [target]

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
    y_mean = y_std = None
    if task == "regression" and cfg.standardize_target:
        y_mean, y_std = fit_standardizer(y_train, target_names * y_train.shape[1], where)
        y_train, y_val, y_test = (standardize(part, y_mean, y_std) for part in (y_train, y_val, y_test))
    preprocessing = Preprocessing(encoding=encoding, reading=reading, feature_mean=mean, feature_std=std,
                                  target_mean=y_mean, target_std=y_std)
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
        target_mean=y_mean,
        target_std=y_std,
        preprocessing=preprocessing,
        notes=notes,
        delimiter=delimiter,
    )


# A process keeps the last few datasets it read or generated, so a sweep worker reads each distinct CSV
# file (or draws each distinct synthetic set) once, not once per run. The arrays are made read-only:
# every run takes its splits as copies.
CACHED_DATASETS = 4
_cache: dict[tuple, Any] = {}
_READ_FIELDS = {"path", "target", "features", "exclude", "header", "names", "skip_rows", "delimiter", "comment",
                "encoding", "index_col", "task"}


def _remember(key: tuple, value: Any) -> Any:
    _cache.pop(key, None)
    _cache[key] = value
    while len(_cache) > CACHED_DATASETS:
        _cache.pop(next(iter(_cache)))
    return value


def _frozen(*arrays: np.ndarray) -> None:
    for array in arrays:
        array.flags.writeable = False


def _csv_table(cfg: DataConfig, base_dir: Path, check_inputs: Callable[[int], None] | None):
    path = base_dir / cfg.path
    try:
        stat = path.stat()
    except OSError:
        return read_csv_table(cfg, base_dir)  # its message says what is wrong with the path
    key = ("csv", str(path.resolve()), stat.st_mtime_ns, stat.st_size, cfg.path,
           cfg.model_dump_json(include=_READ_FIELDS))
    if key not in _cache:
        table = read_csv_table(cfg, base_dir, check_inputs)
        _frozen(table.X, table.y)
        _remember(key, table)
    return _cache[key]


def _synthetic(cfg: DataConfig, rng: np.random.Generator):
    """make_synthetic, or the arrays it gave for the same config and generator state, the generator
    left in the state it would have after drawing them."""
    key = ("synthetic", cfg.kind, cfg.n_samples, cfg.n_features, cfg.n_classes, cfg.noise, cfg.task,
           json.dumps(rng.bit_generator.state, sort_keys=True))
    if key not in _cache:
        X, y, kind = make_synthetic(cfg.kind, cfg.n_samples, cfg.n_features, cfg.n_classes, cfg.noise, cfg.task, rng)
        _frozen(X, y)
        _remember(key, (X, y, kind, rng.bit_generator.state))
    X, y, kind, state = _cache[key]
    rng.bit_generator.state = state
    return X, y, kind
