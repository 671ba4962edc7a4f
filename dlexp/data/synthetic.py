"""Synthetic datasets, every random number drawn from the ``numpy.random.Generator`` passed in.

Classification kinds return ``X`` float64 ``(n, d)`` and ``y`` int64 ``(n,)`` class indices;
regression kinds return ``y`` float64 ``(n, 1)``. ``noise`` is the standard deviation of the
Gaussian noise each generator adds (where it is added is said per generator); with ``noise=0``
the geometry is exact. Class sizes are as equal as possible: ``n // C`` each, and the first
``n % C`` classes one more. The generators draw rows grouped by class; ``make_synthetic`` then puts
them in a random order (drawn from the same generator), which plays the part of a CSV's file order:
the split keeps it and ``training.shuffle: false`` trains in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlexp.errors import DataError

MAX_VALUES = 50_000_000  # n_samples * n_features above this (400 MB of float64) is refused


def class_sizes(n_samples: int, n_classes: int) -> np.ndarray:
    """``n // C`` rows per class, the first ``n % C`` classes one more; int64 ``(C,)``."""
    sizes = np.full(n_classes, n_samples // n_classes, dtype=np.int64)
    sizes[: n_samples % n_classes] += 1
    return sizes


def _labels(sizes: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)


def moons(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles of radius 1, as scikit-learn's ``make_moons``.

    Class 0: ``(cos t, sin t)``; class 1: ``(1 - cos t, 0.5 - sin t)``, with ``t`` evenly spaced
    over ``[0, pi]`` within each class; then ``X += noise * N(0, 1)``. X ``(n, 2)``, 2 classes.
    """
    sizes = class_sizes(n_samples, 2)
    t0 = np.linspace(0.0, np.pi, sizes[0])
    t1 = np.linspace(0.0, np.pi, sizes[1])
    outer = np.column_stack([np.cos(t0), np.sin(t0)])
    inner = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([outer, inner])
    X += noise * rng.standard_normal(X.shape)
    return X, _labels(sizes)


def circles(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles, as scikit-learn's ``make_circles`` with ``factor=0.5``.

    Class 0 on radius 1, class 1 on radius 0.5, angles evenly spaced over ``[0, 2 pi)`` within
    each class; then ``X += noise * N(0, 1)``. X ``(n, 2)``, 2 classes.
    """
    sizes = class_sizes(n_samples, 2)
    parts = []
    for radius, size in zip((1.0, 0.5), sizes):
        t = np.linspace(0.0, 2.0 * np.pi, size, endpoint=False)
        parts.append(radius * np.column_stack([np.cos(t), np.sin(t)]))
    X = np.vstack(parts)
    X += noise * rng.standard_normal(X.shape)
    return X, _labels(sizes)


SPIRAL_TURN_RATE = 3.0 * np.pi  # radians of angle per unit of radius: 1.35 turns over r in [0.1, 1]


def spirals(
    n_samples: int, n_classes: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``C`` interleaved spiral arms around the origin.

    Arm ``k`` has radii ``r`` evenly spaced over ``[0.1, 1]`` and angles
    ``theta = 2 pi k / C + 3 pi r``; a point is ``r (cos theta, sin theta)``, then
    ``X += noise * N(0, 1)``. The arms start at radius 0.1 so that no two classes share a point.
    X ``(n, 2)``, ``C`` classes.
    """
    sizes = class_sizes(n_samples, n_classes)
    parts = []
    for k, size in enumerate(sizes):
        r = np.linspace(0.1, 1.0, size)
        theta = 2.0 * np.pi * k / n_classes + SPIRAL_TURN_RATE * r
        parts.append(r[:, None] * np.column_stack([np.cos(theta), np.sin(theta)]))
    X = np.vstack(parts)
    X += noise * rng.standard_normal(X.shape)
    return X, _labels(sizes)


def blobs(
    n_samples: int, n_features: int, n_classes: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``C`` isotropic Gaussian clusters in ``d`` dimensions.

    Centres are drawn first, ``c_k ~ Uniform(-1, 1)^d``; a point of class ``k`` is
    ``c_k + noise * N(0, I)``, so ``noise`` is each cluster's standard deviation.
    X ``(n, d)``, ``C`` classes.
    """
    centres = rng.uniform(-1.0, 1.0, size=(n_classes, n_features))
    y = _labels(class_sizes(n_samples, n_classes))
    X = centres[y] + noise * rng.standard_normal((n_samples, n_features))
    return X, y


def xor(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The XOR pattern: label 1 where ``x1 * x2 > 0`` (quadrants I and III), else 0.

    Clean points are uniform on ``[-1, 1]^2`` given their label: ``|x1|, |x2| ~ Uniform(0, 1)``
    and a random sign ``s``; class 1 is ``(s|x1|, s|x2|)``, class 0 is ``(s|x1|, -s|x2|)``. So the
    classes are balanced exactly and, with noise 0, ``y == (x1 * x2 > 0)``. The noise
    ``X += noise * N(0, 1)`` is added after labelling. X ``(n, 2)``, 2 classes.
    """
    sizes = class_sizes(n_samples, 2)
    y = _labels(sizes)
    magnitude = rng.uniform(0.0, 1.0, size=(n_samples, 2))
    sign = rng.choice(np.array([-1.0, 1.0]), size=n_samples)
    second_sign = np.where(y == 1, sign, -sign)
    X = np.column_stack([sign * magnitude[:, 0], second_sign * magnitude[:, 1]])
    X += noise * rng.standard_normal(X.shape)
    return X, y


def linear(
    n_samples: int, n_features: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Linear regression: ``y = X w + b + noise * N(0, 1)``.

    The true ``w ~ N(0, I)`` of shape ``(d, 1)`` and ``b ~ N(0, 1)`` are drawn first, then
    ``X ~ N(0, I)``. X ``(n, d)``, y ``(n, 1)``.
    """
    w = rng.standard_normal((n_features, 1))
    b = rng.standard_normal()
    X = rng.standard_normal((n_samples, n_features))
    y = X @ w + b + noise * rng.standard_normal((n_samples, 1))
    return X, y


def sine(n_samples: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One-dimensional regression: ``x ~ Uniform(-3, 3)``, ``y = sin(x) + noise * N(0, 1)``.

    X ``(n, 1)``, y ``(n, 1)``.
    """
    X = rng.uniform(-3.0, 3.0, size=(n_samples, 1))
    y = np.sin(X) + noise * rng.standard_normal((n_samples, 1))
    return X, y


@dataclass(frozen=True)
class Kind:
    """What a synthetic kind produces. ``n_features``/``n_classes`` None: taken from the config."""

    task: str
    n_features: int | None
    n_classes: int | None
    make: Callable[..., tuple[np.ndarray, np.ndarray]]


KINDS: dict[str, Kind] = {
    "moons": Kind("classification", 2, 2, lambda n, d, c, noise, rng: moons(n, noise, rng)),
    "circles": Kind("classification", 2, 2, lambda n, d, c, noise, rng: circles(n, noise, rng)),
    "spirals": Kind("classification", 2, None, lambda n, d, c, noise, rng: spirals(n, c, noise, rng)),
    "blobs": Kind("classification", None, None, lambda n, d, c, noise, rng: blobs(n, d, c, noise, rng)),
    "xor": Kind("classification", 2, 2, lambda n, d, c, noise, rng: xor(n, noise, rng)),
    "linear": Kind("regression", None, None, lambda n, d, c, noise, rng: linear(n, d, noise, rng)),
    "sine": Kind("regression", 1, None, lambda n, d, c, noise, rng: sine(n, noise, rng)),
}


def make_synthetic(
    kind: str,
    n_samples: int,
    n_features: int,
    n_classes: int,
    noise: float,
    task: str,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, Kind]:
    """Generate ``kind`` after checking the config fits it; returns ``(X, y, kind_info)``, rows in random order.

    ``n_features`` is used by blobs and linear only (the others have a fixed dimension);
    ``n_classes`` by spirals and blobs; moons, circles and xor refuse anything but 2.
    """
    if kind not in KINDS:
        raise DataError(f"data.kind: unknown synthetic kind {kind!r} (accepted: {', '.join(KINDS)})")
    info = KINDS[kind]
    where = f"data (synthetic {kind})"
    if task != "auto" and task != info.task:
        raise DataError(f"{where}: data.task is {task!r} but {kind} is a {info.task} dataset; use task: auto")
    if info.task == "classification":
        if info.n_classes is not None and n_classes != info.n_classes:
            raise DataError(
                f"{where}: data.n_classes: {kind} has exactly {info.n_classes} classes (got {n_classes}); "
                "use spirals or blobs for more"
            )
        if n_samples < n_classes:
            raise DataError(f"{where}: data.n_samples: {n_samples} samples cannot cover {n_classes} classes")
    d = info.n_features if info.n_features is not None else n_features
    if n_samples * d > MAX_VALUES:
        raise DataError(
            f"{where}: {n_samples:,} samples x {d:,} features = {n_samples * d:,} values, "
            f"above the limit of {MAX_VALUES:,}; lower data.n_samples or data.n_features"
        )
    X, y = info.make(n_samples, d, n_classes, float(noise), rng)
    order = rng.permutation(n_samples)  # no class-sorted "file": shuffle: false must still mix classes
    return np.ascontiguousarray(X[order], dtype=np.float64), y[order], info
