"""Learning-rate schedules and gradient clipping, without torch (see test_optim_torch.py for the
cross-check against torch.optim.lr_scheduler and torch.nn.utils)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlexp.optim import SCHEDULES, clip_by_global_norm, clip_by_value, global_norm, make_schedule


def lrs(spec, base_lr, epochs):
    schedule = make_schedule(spec)
    return [schedule.lr_at(base_lr, e) for e in range(epochs)]


def test_constant_and_none():
    assert lrs(None, 0.1, 3) == [0.1, 0.1, 0.1]
    assert lrs("constant", 0.1, 3) == [0.1, 0.1, 0.1]


def test_step():
    got = lrs({"name": "step", "step_size": 3, "gamma": 0.5}, 0.1, 8)
    np.testing.assert_allclose(got, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025], rtol=1e-15)
    assert lrs({"name": "step", "step_size": 2}, 1.0, 3)[2] == 0.1  # gamma defaults to 0.1


def test_multistep():
    got = lrs({"name": "multistep", "milestones": [2, 4], "gamma": 0.1}, 1.0, 6)
    np.testing.assert_allclose(got, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-15)


def test_exponential():
    got = lrs({"name": "exponential", "gamma": 0.9}, 0.5, 30)
    np.testing.assert_allclose(got, 0.5 * 0.9 ** np.arange(30), rtol=1e-14)


@pytest.mark.parametrize(("t_max", "eta_min"), [(10, 0.0), (7, 0.01), (1, 0.0)])
def test_cosine_closed_form_and_periodicity(t_max, eta_min):
    base = 0.2
    got = lrs({"name": "cosine", "T_max": t_max, "eta_min": eta_min}, base, 4 * t_max + 1)
    closed = [
        eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2 for e in range(4 * t_max + 1)
    ]
    # torch's recursive form drifts from the closed form by rounding only.
    np.testing.assert_allclose(got, closed, rtol=1e-12, atol=1e-15)
    assert got[t_max] == pytest.approx(eta_min, abs=1e-15)
    assert got[2 * t_max] == pytest.approx(base, rel=1e-12)  # back up after a full period, as in torch


def test_lr_at_is_a_function_of_epoch_only():
    schedule = make_schedule({"name": "cosine", "T_max": 9})
    late_first = schedule.lr_at(0.1, 25)
    fresh = make_schedule({"name": "cosine", "T_max": 9})
    in_order = [fresh.lr_at(0.1, e) for e in range(26)]
    assert late_first == in_order[25]
    assert schedule.lr_at(0.3, 4) == fresh.lr_at(0.3, 4)  # memo is per base lr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "step", "step_size": 0}, "step_size must be >= 1 (got 0)"),
        ({"name": "step", "step_size": 2.5}, "step_size must be an integer (got 2.5)"),
        ({"name": "step", "step_size": 2, "gamma": -0.1}, "gamma must be > 0 (got -0.1)"),
        ({"name": "multistep", "milestones": [5, 3]}, "milestones must be strictly increasing (got [5, 3])"),
        ({"name": "multistep", "milestones": [0, 3]}, "milestones[0] must be >= 1 (got 0)"),
        ({"name": "multistep", "milestones": "3"}, "milestones must be a list of epochs (got '3')"),
        ({"name": "exponential", "gamma": 0}, "gamma must be > 0 (got 0)"),
        ({"name": "cosine", "T_max": 0}, "T_max must be >= 1 (got 0)"),
        ({"name": "cosine", "T_max": 5, "eta_min": -1}, "eta_min must be >= 0 (got -1)"),
        ({"name": "cosine"}, "schedule 'cosine': "),  # missing T_max, reported by the registry
        ({"name": "cosin", "T_max": 5}, "unknown schedule 'cosin'; did you mean 'cosine'?"),
        ({"name": "step", "steps": 5}, "schedule 'step' has no argument 'steps'; did you mean 'step_size'?"),
    ],
)
def test_schedule_errors(spec, message):
    with pytest.raises(ValueError) as info:
        make_schedule(spec)
    assert message in str(info.value)


def test_negative_epoch_is_refused():
    with pytest.raises(ValueError, match=r"epoch must be an integer >= 0 \(got -1\)"):
        make_schedule({"name": "step", "step_size": 2}).lr_at(0.1, -1)


def test_schedule_names():
    assert SCHEDULES.names() == ["constant", "cosine", "exponential", "multistep", "step"]


# ------------------------------------------------------------------ clipping


def test_global_norm():
    assert global_norm(np.array([3.0, 4.0])) == 5.0
    assert global_norm(np.array([3.0, 4.0], dtype=np.float32)) == 5.0
    assert global_norm(np.zeros(0)) == 0.0


def test_clip_by_global_norm_scales_only_when_above():
    g = np.array([3.0, 4.0])
    clip_by_global_norm(g, 1.0, global_norm(g))
    np.testing.assert_allclose(g, np.array([3.0, 4.0]) / (5.0 + 1e-6), rtol=1e-15)
    h = np.array([0.3, 0.4])
    clip_by_global_norm(h, 1.0, global_norm(h))
    np.testing.assert_array_equal(h, [0.3, 0.4])  # untouched, not multiplied by ~1


def test_clip_by_global_norm_infinite_norm_zeroes_finite_grads():
    g = np.array([1.0, 2.0])
    clip_by_global_norm(g, 1.0, math.inf)
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_clip_by_value():
    g = np.array([-3.0, -0.5, 0.0, 0.7, 9.0])
    clip_by_value(g, 1.0)
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.7, 1.0])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_clip_arguments_are_checked(bad):
    with pytest.raises(ValueError, match="max_norm must be"):
        clip_by_global_norm(np.ones(2), bad, 1.0)
    with pytest.raises(ValueError, match="clip_value must be"):
        clip_by_value(np.ones(2), bad)
