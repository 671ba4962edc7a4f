"""Synthetic generators: shapes, dtypes, labels, determinism and exact geometry at noise 0."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.data.synthetic import KINDS, class_sizes, make_synthetic
from dlexp.errors import DataError

CLASSIFICATION = ["moons", "circles", "spirals", "blobs", "xor"]


def make(kind, n=101, d=3, c=2, noise=0.1, seed=0, task="auto"):
    X, y, _ = make_synthetic(kind, n, d, c, noise, task, np.random.default_rng(seed))
    return X, y


@pytest.mark.parametrize("kind", CLASSIFICATION)
def test_classification_shapes_dtypes_labels(kind):
    c = 3 if kind in ("spirals", "blobs") else 2
    X, y = make(kind, n=101, d=3, c=c)
    d = 3 if kind == "blobs" else 2
    assert X.shape == (101, d) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.shape == (101,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(c))
    assert np.array_equal(np.bincount(y), class_sizes(101, c))  # as equal as possible, first classes larger
    assert np.isfinite(X).all()


@pytest.mark.parametrize("kind", CLASSIFICATION)
def test_rows_come_in_random_order_not_grouped_by_class(kind):
    y = make(kind, n=200, c=2)[1]
    assert np.count_nonzero(np.diff(y)) > 50  # grouped by class would change label once


@pytest.mark.parametrize("kind,d", [("linear", 4), ("sine", 1)])
def test_regression_shapes_dtypes(kind, d):
    X, y = make(kind, n=50, d=4)
    assert X.shape == (50, d) and X.dtype == np.float64
    assert y.shape == (50, 1) and y.dtype == np.float64


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_same_seed_identical_bytes_different_seed_differs(kind):
    X1, y1 = make(kind, c=3 if kind in ("spirals", "blobs") else 2, seed=7)
    X2, y2 = make(kind, c=3 if kind in ("spirals", "blobs") else 2, seed=7)
    X3, _ = make(kind, c=3 if kind in ("spirals", "blobs") else 2, seed=8)
    assert X1.tobytes() == X2.tobytes() and y1.tobytes() == y2.tobytes()
    assert X1.tobytes() != X3.tobytes()


def test_no_global_random_state_used():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    for kind in KINDS:
        make(kind, c=3 if kind in ("spirals", "blobs") else 2)
    assert np.array_equal(np.random.get_state()[1], before)


def test_circles_exact_radii_at_noise_0():
    X, y = make("circles", n=200, noise=0.0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(radius[y == 1], 0.5, rtol=0, atol=1e-12)


def test_moons_exact_arcs_at_noise_0():
    X, y = make("moons", n=200, noise=0.0)
    np.testing.assert_allclose(np.hypot(X[y == 0, 0], X[y == 0, 1]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(X[y == 1, 0] - 1.0, X[y == 1, 1] - 0.5), 1.0, atol=1e-12)
    assert (X[y == 0, 1] >= -1e-12).all() and (X[y == 1, 1] <= 0.5 + 1e-12).all()


def test_xor_labels_follow_sign_rule_at_noise_0():
    X, y = make("xor", n=400, noise=0.0)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] > 0).astype(np.int64))
    assert np.abs(X).max() <= 1.0
    assert np.bincount(y).tolist() == [200, 200]


def test_spirals_radius_and_arm_angle_at_noise_0():
    X, y = make("spirals", n=300, c=3, noise=0.0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r.min() == pytest.approx(0.1) and r.max() == pytest.approx(1.0)
    for k in range(3):
        rk = r[y == k]
        theta = np.arctan2(X[y == k, 1], X[y == k, 0])
        expected = 2 * np.pi * k / 3 + 3 * np.pi * rk
        np.testing.assert_allclose(np.angle(np.exp(1j * (theta - expected))), 0.0, atol=1e-9)


def test_blobs_points_sit_on_centres_at_noise_0_and_spread_by_noise():
    X, y = make("blobs", n=90, d=5, c=3, noise=0.0)
    for k in range(3):
        points = X[y == k]
        assert np.array_equal(points, np.broadcast_to(points[0], points.shape))
        assert np.abs(points[0]).max() <= 1.0
    X, y = make("blobs", n=30000, d=2, c=3, noise=0.3)
    within = np.concatenate([X[y == k] - X[y == k].mean(axis=0) for k in range(3)])
    assert within.std() == pytest.approx(0.3, rel=0.02)


def test_linear_is_exactly_linear_at_noise_0():
    X, y = make("linear", n=40, d=3, noise=0.0)
    design = np.column_stack([X, np.ones(len(X))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(design @ coef, y, atol=1e-10)


def test_sine_range_and_exact_curve_at_noise_0():
    X, y = make("sine", n=500, noise=0.0)
    assert X.min() >= -3.0 and X.max() <= 3.0
    np.testing.assert_array_equal(y, np.sin(X))
    X, y = make("sine", n=20000, noise=0.2)
    assert (y - np.sin(X)).std() == pytest.approx(0.2, rel=0.03)


def test_refusals():
    with pytest.raises(DataError, match=r"data.n_classes: moons has exactly 2 classes \(got 3\)"):
        make("moons", c=3)
    with pytest.raises(DataError, match="regression dataset"):
        make("sine", task="classification")
    with pytest.raises(DataError, match="5 samples cannot cover 6 classes"):
        make("spirals", n=5, c=6)
    with pytest.raises(DataError, match="above the limit"):
        make("blobs", n=5_000_000, d=100)
