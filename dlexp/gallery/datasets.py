"""Datasets the gallery writes as CSV files, for claims no shipped dataset or synthetic kind covers.

- ``sparse.csv`` (claim 10): 1200 rows of 100 binary features, 3 of them set per row, feature k
  drawn with probability ∝ 1/k (a few common features, a long tail of rare ones: the "sparse
  gradients" Adamax is said to like). The label is whether a hidden linear score ``x · w``,
  ``w ~ N(0, 1)``, is above its median.
- ``diabetes-clean.csv`` / ``diabetes-outliers.csv`` (claim 12): ``data/diabetes.csv`` with the
  target standardized (mean 0, std 1, so MAE and MSE can share a learning rate); in the outlier
  copy 10 % of the rows get +8 added to the target.

Every file comes from its own fixed generator seed, so it is the same on every machine and in
every run. They are also shipped as ``data/gallery/<file>`` (a test checks the shipped bytes
equal the generator's), so ``dlexp train configs/gallery/...`` works on a fresh checkout; the
gallery itself regenerates them into its runs folder and points each run there.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.gallery.core import REPO
from dlexp.rundir import atomic_write

SPARSE_ROWS, SPARSE_FEATURES, SPARSE_ACTIVE = 1200, 100, 3
OUTLIER_FRACTION, OUTLIER_SHIFT = 0.10, 8.0
DATA_SEEDS = {"sparse.csv": 10, "diabetes-outliers.csv": 12}


def _write_rows(path: Path, header: list[str], rows) -> None:
    with atomic_write(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def sparse_features(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """X int (n, d) with ``SPARSE_ACTIVE`` ones per row (Zipf-like feature frequencies), y int (n,)."""
    n, d = SPARSE_ROWS, SPARSE_FEATURES
    weights = 1.0 / np.arange(1, d + 1)
    weights /= weights.sum()
    X = np.zeros((n, d), dtype=np.int64)
    for i in range(n):
        X[i, rng.choice(d, size=SPARSE_ACTIVE, replace=False, p=weights)] = 1
    score = X @ rng.standard_normal(d)
    y = (score > np.median(score)).astype(np.int64)
    return X, y


def write_sparse(path: Path) -> None:
    X, y = sparse_features(np.random.default_rng(DATA_SEEDS["sparse.csv"]))
    header = [f"f{k:03d}" for k in range(X.shape[1])] + ["label"]
    labels = np.where(y == 1, "pos", "neg")
    _write_rows(path, header, ([*map(int, row), label] for row, label in zip(X, labels)))


def diabetes_table() -> tuple[list[str], np.ndarray]:
    with open(REPO / "data" / "diabetes.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


def _diabetes(path: Path, outliers: bool) -> None:
    header, values = diabetes_table()
    target = values[:, -1]
    values[:, -1] = (target - target.mean()) / target.std()
    if outliers:
        rng = np.random.default_rng(DATA_SEEDS["diabetes-outliers.csv"])
        hit = rng.choice(len(values), round(OUTLIER_FRACTION * len(values)), replace=False)
        values[hit, -1] += OUTLIER_SHIFT
    _write_rows(path, header, ([repr(float(v)) for v in row] for row in values))


GENERATED: dict[str, Callable[[Path], None]] = {
    "sparse.csv": write_sparse,
    "diabetes-clean.csv": lambda path: _diabetes(path, outliers=False),
    "diabetes-outliers.csv": lambda path: _diabetes(path, outliers=True),
}
_written: set[Path] = set()


def ensure(data_dir: Path, name: str) -> Path:
    """Write ``name`` into ``data_dir`` (once per process) and return its absolute path."""
    path = (Path(data_dir) / name).resolve()
    if path not in _written or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        GENERATED[name](path)
        _written.add(path)
    return path


def point_to_generated(mapping: dict[str, Any], data_dir: Path) -> None:
    """If the config reads a generated file, write it into ``data_dir`` and point ``data.path`` there."""
    data = mapping.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return
    name = Path(data["path"]).name
    if name in GENERATED and "data/gallery/" in data["path"].replace("\\", "/"):
        data["path"] = str(ensure(data_dir, name))
