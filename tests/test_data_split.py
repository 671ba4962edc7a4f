"""Split counts, stratification, standardization with train statistics, and load_data end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlexp.config import DataConfig
from dlexp.data import Dataset, load_data
from dlexp.data.split import apportion, fit_standardizer, split_count, split_indices
from dlexp.errors import DataError


def test_split_count_rounds_half_up_and_keeps_one_row():
    assert split_count(100, 0.2) == 20
    assert split_count(10, 0.25) == 3  # 2.5 -> 3 (half up, not banker's rounding)
    assert split_count(10, 0.01) == 1  # any positive fraction gets a row
    assert split_count(10, 0.0) == 0


def test_apportion_largest_remainder():
    assert apportion(7, np.array([50, 30, 20]), np.array([49, 29, 19])).tolist() == [4, 2, 1]  # 3.5, 2.1, 1.4
    assert apportion(2, np.array([1, 1, 1]), np.array([5, 5, 5])).tolist() == [1, 1, 0]  # ties: lower index


def test_unstratified_split_is_a_partition_of_the_right_sizes():
    train, val, test = split_indices(101, 0.2, 0.1, np.random.default_rng(0))
    assert (len(train), len(val), len(test)) == (71, 20, 10)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(101))


def test_stratified_split_keeps_class_proportions():
    labels = np.repeat(np.arange(3), [500, 300, 200])
    train, val, test = split_indices(1000, 0.2, 0.1, np.random.default_rng(1), labels)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1000))
    assert np.bincount(labels[val]).tolist() == [100, 60, 40]
    assert np.bincount(labels[test]).tolist() == [50, 30, 20]
    assert np.bincount(labels[train]).tolist() == [350, 210, 140]


@pytest.mark.parametrize("stratified", [False, True])
def test_split_keeps_each_part_in_file_order_and_draws_the_rows_at_random(stratified):
    labels = np.repeat(np.arange(3), [50, 30, 20]) if stratified else None
    a = split_indices(100, 0.2, 0.1, np.random.default_rng(5), labels)
    b = split_indices(100, 0.2, 0.1, np.random.default_rng(6), labels)
    for part in a:
        assert np.all(np.diff(part) > 0)  # ascending row index: the order rows have in the file
    assert not np.array_equal(a[1], b[1])  # which rows are validation rows is random
    assert a[1].max() - a[1].min() > 2 * len(a[1])  # spread over the file, not one block of rows


def test_split_without_val_or_test_is_every_row_in_file_order():
    labels = np.array([2, 0, 1, 0, 2, 1, 1])
    for lab in (None, labels):
        train, val, test = split_indices(7, 0.0, 0.0, np.random.default_rng(0), lab)
        assert train.tolist() == list(range(7)) and len(val) == len(test) == 0


def test_stratified_split_keeps_a_train_row_for_every_class():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 2])  # classes 1 and 2 have a single row each
    train, val, test = split_indices(8, 0.25, 0.25, np.random.default_rng(0), labels)
    assert (len(val), len(test)) == (2, 2)
    assert set(labels[train]) == {0, 1, 2}


def test_too_few_rows_refused():
    with pytest.raises(DataError, match=r"data/x.csv: 4 rows are too few.*leaves 0 to train"):
        split_indices(4, 0.5, 0.4, np.random.default_rng(0), where="data/x.csv")
    labels = np.array([0, 1, 2, 3, 0])
    with pytest.raises(
        DataError, match=r"data/x.csv: target 'kind': 4 classes need at least one training row"
    ):
        split_indices(5, 0.2, 0.2, np.random.default_rng(0), labels, where="data/x.csv", target="kind")


def test_standardizer_constant_column_is_centred_with_unit_scale():
    X = np.array([[1.0, 0.1], [2.0, 0.1], [3.0, 0.1]])
    mean, std = fit_standardizer(X, ["a", "b"])
    assert mean.tolist() == [2.0, 0.1] and std[1] == 1.0
    assert std[0] == pytest.approx(np.sqrt(2 / 3))


def data(**kw) -> DataConfig:
    return DataConfig(**kw)


def test_load_data_standardizes_with_train_statistics_only():
    cfg = data(kind="blobs", n_samples=500, n_features=4, n_classes=3, noise=0.5, test_fraction=0.2)
    ds = load_data(cfg, Path("."), np.random.default_rng(3))
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, atol=1e-12)
    # Same rng, no standardization: the raw val rows are the same rows, so val = (raw - train stats).
    raw = load_data(data(**{**cfg.model_dump(), "standardize": False}), Path("."), np.random.default_rng(3))
    mean, std = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    np.testing.assert_allclose(ds.feature_mean, mean, atol=1e-12)
    np.testing.assert_allclose(ds.X_val, (raw.X_val - mean) / std, atol=1e-12)
    np.testing.assert_allclose(ds.X_test, (raw.X_test - mean) / std, atol=1e-12)
    assert not np.allclose(ds.X_val.mean(axis=0), 0.0, atol=1e-6)  # val was not re-centred on itself
    assert np.array_equal(ds.y_val, raw.y_val)


def test_load_data_regression_targets_standardized_unless_asked_not_to():
    ds = load_data(data(kind="sine", noise=0.0, standardize_target=False), Path("."), np.random.default_rng(0))
    assert ds.task == "regression" and ds.n_classes is None and ds.class_names is None
    x_raw = ds.X_train * ds.feature_std + ds.feature_mean
    np.testing.assert_allclose(ds.y_train, np.sin(x_raw), atol=1e-12)
    assert ds.target_mean is None
    scaled = load_data(data(kind="sine", noise=0.0), Path("."), np.random.default_rng(0))
    np.testing.assert_allclose(scaled.y_train * scaled.target_std + scaled.target_mean, np.sin(x_raw), atol=1e-12)
    np.testing.assert_allclose(scaled.y_train.mean(), 0.0, atol=1e-12)


def test_load_data_synthetic_dataset_fields_and_zero_row_splits():
    ds = load_data(
        data(kind="spirals", n_classes=3, n_samples=300, val_fraction=0.0),
        Path("."),
        np.random.default_rng(0),
    )
    assert isinstance(ds, Dataset)
    assert ds.description == "synthetic spirals (300 samples, 3 classes)"
    assert ds.X_train.shape == (300, 2) and ds.X_train.flags.c_contiguous
    assert ds.X_val.shape == (0, 2) and ds.X_val.dtype == np.float64
    assert ds.y_val.shape == (0,) and ds.y_val.dtype == np.int64
    assert ds.X_test.shape == (0, 2)
    assert ds.n_classes == 3 and ds.class_names == ["0", "1", "2"] and ds.n_features == 2
    assert ds.feature_names == ["x1", "x2"]
    reg = load_data(data(kind="linear", n_features=3, val_fraction=0.0), Path("."), np.random.default_rng(0))
    assert reg.y_val.shape == (0, 1) and reg.y_val.dtype == np.float64 and reg.target_names == ["y"]


def test_load_data_is_bit_identical_for_the_same_rng_state():
    cfg = data(kind="moons", n_samples=200, test_fraction=0.1)
    a = load_data(cfg, Path("."), np.random.default_rng(11))
    b = load_data(cfg, Path("."), np.random.default_rng(11))
    c = load_data(cfg, Path("."), np.random.default_rng(12))
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.X_train.tobytes() != c.X_train.tobytes()
