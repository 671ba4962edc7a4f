"""Random train/val/test split (stratified for classification) and feature standardization.

Counts: a split with fraction ``f > 0`` gets ``max(1, floor(n * f + 0.5))`` rows (round half up);
a split with ``f == 0`` gets none; train gets the rest and must keep at least one row.

Stratified (classification): the same val and test totals are shared out among the classes in
proportion to their sizes by largest remainder: class ``c`` first gets ``floor(total * n_c / n)``,
then the leftover rows go one at a time to the class with the largest unmet share (ties: the lower
class index), never taking a class's last training row. So every class keeps at least one train
row and the totals equal the unstratified ones.

Which rows go where is drawn from the generator passed in (a permutation per class, or of all
rows); each part then keeps the rows in the order they have in the data (ascending row index), so
with ``training.shuffle: false`` an epoch visits the training rows in file order and a run can be
replayed batch by batch elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.errors import DataError


def split_count(n: int, fraction: float) -> int:
    """Rows for a split of ``fraction``: round half up, at least 1 when the fraction is positive."""
    if fraction <= 0:
        return 0
    return max(1, math.floor(n * fraction + 0.5))


def apportion(total: int, sizes: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Share ``total`` among groups in proportion to ``sizes`` by largest remainder, ``<= caps``.

    Requires ``caps.sum() >= total``. Returns int64 counts summing to ``total``.
    """
    quotas = total * sizes / sizes.sum()
    counts = np.minimum(np.floor(quotas).astype(np.int64), caps)
    for _ in range(total - int(counts.sum())):
        unmet = np.where(counts < caps, quotas - counts, -np.inf)
        counts[int(np.argmax(unmet))] += 1  # argmax takes the first maximum: lower index wins ties
    return counts


def _too_few(
    where: str, n: int, val_fraction: float, test_fraction: float, n_val: int, n_test: int
) -> DataError:
    return DataError(
        f"{where}: {n} rows are too few to split with val_fraction {val_fraction} and test_fraction "
        f"{test_fraction} ({n_val} val + {n_test} test leaves {n - n_val - n_test} to train; at least 1 is "
        "needed); lower the fractions or add rows"
    )


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    rng: np.random.Generator,
    labels: np.ndarray | None = None,
    *,
    where: str = "data",
    target: str = "target",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices ``(train, val, test)``, each ascending; stratified by ``labels`` (int64 classes) if given."""
    n_val = split_count(n, val_fraction)
    n_test = split_count(n, test_fraction)
    if n - n_val - n_test < 1:
        raise _too_few(where, n, val_fraction, test_fraction, n_val, n_test)
    if labels is None:
        order = rng.permutation(n)
        parts = order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]
        return tuple(np.sort(part) for part in parts)

    present = np.flatnonzero(np.bincount(labels))
    sizes = np.bincount(labels)[present]
    n_train = n - n_val - n_test
    if n_train < len(present):
        raise DataError(
            f"{where}: target '{target}': {len(present)} classes need at least one training row each but "
            f"val_fraction {val_fraction} and test_fraction {test_fraction} leave only {n_train} of {n} rows "
            "to train; lower the fractions or add rows"
        )
    val_counts = apportion(n_val, sizes, sizes - 1)
    test_counts = apportion(n_test, sizes, sizes - 1 - val_counts)
    train_parts, val_parts, test_parts = [], [], []
    for cls, n_cls_val, n_cls_test in zip(present, val_counts, test_counts):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        val_parts.append(rows[:n_cls_val])
        test_parts.append(rows[n_cls_val : n_cls_val + n_cls_test])
        train_parts.append(rows[n_cls_val + n_cls_test :])
    return tuple(np.sort(np.concatenate(parts)) for parts in (train_parts, val_parts, test_parts))


def fit_standardizer(
    X_train: np.ndarray, feature_names: list[str], where: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature ``(mean, std)`` of the training rows (population std, ``ddof=0``).

    A constant column (max == min) gets its value as mean and std 1, so it becomes exactly 0
    rather than noise amplified from rounding error.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
    constant = X_train.max(axis=0) == X_train.min(axis=0)
    mean[constant] = X_train[0, constant]
    std[constant] = 1.0
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        name = feature_names[int(np.argmax(bad))]
        raise DataError(
            f"{where}: column '{name}': values too large to standardize (mean or std overflows float64); "
            "rescale the column or set data.standardize: false"
        )
    return mean, std


def standardize(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(X - mean) / std`` as a new C-contiguous float64 array."""
    return np.ascontiguousarray((X - mean) / std, dtype=np.float64)
