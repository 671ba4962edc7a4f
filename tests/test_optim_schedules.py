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
        ({"name": "range_test", "end_lr": 10, "steps": 1}, "steps must be >= 2 (got 1)"),
        ({"name": "range_test", "end_lr": 0}, "end_lr must be > 0 (got 0)"),
        ({"name": "range_test", "end_lr": 10, "stop_factor": 1}, "stop_factor must be > 1 (got 1)"),
        ({"name": "range_test", "end_lr": 10, "smoothing": 1.0}, "smoothing must be in [0, 1) (got 1.0)"),
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
    assert SCHEDULES.names() == ["constant", "cosine", "exponential", "multistep", "range_test", "step"]


# ------------------------------------------------------------------ the range test


def test_range_test_is_exponential_per_step_from_base_to_end_lr():
    schedule = make_schedule({"name": "range_test", "end_lr": 10.0, "steps": 5})
    assert schedule.per_step and not make_schedule(None).per_step
    got = [schedule.lr_at(1e-3, t) for t in range(7)]
    # lr_t = base (end/base)^(t/(steps-1)): one decade per step here, then held at end_lr
    np.testing.assert_allclose(got, [1e-3, 1e-2, 1e-1, 1.0, 10.0, 10.0, 10.0], rtol=1e-13)
    assert got[0] == 1e-3 and got[4] == 10.0
    ratios = np.diff(np.log(got[:5]))
    np.testing.assert_allclose(ratios, math.log(10.0), rtol=1e-12)


def test_smoothed_loss_is_a_debiased_moving_average():
    from dlexp.optim.schedules import SmoothedLoss

    losses = [2.0, 1.0, 4.0, 3.0]
    beta = 0.9
    avg, expected = 0.0, []
    for i, v in enumerate(losses, 1):
        avg = beta * avg + (1 - beta) * v
        expected.append(avg / (1 - beta**i))
    np.testing.assert_allclose(SmoothedLoss(beta).series(losses), expected, rtol=1e-15)
    assert SmoothedLoss(0.98).series([0.7] * 50) == pytest.approx([0.7] * 50, rel=1e-12)  # no bias to zero


def test_range_test_stop_rule_fires_on_blow_up_and_at_the_end():
    schedule = make_schedule({"name": "range_test", "end_lr": 1.0, "steps": 6, "stop_factor": 4.0,
                              "smoothing": 0.0})  # beta 0: the smoothed loss is the loss itself
    rule = schedule.stop_rule()
    assert [rule.update(v) for v in (1.0, 0.5, 1.9)] == [None, None, None]  # 1.9 < 4 x 0.5
    reason = rule.update(2.1)  # > 4 x 0.5
    assert reason is not None and "4" in reason and "0.5" in reason
    rule = schedule.stop_rule()
    assert [rule.update(1.0) for _ in range(5)] == [None] * 5
    assert "6 steps" in rule.update(1.0)
    state = rule.state_dict()
    copy = schedule.stop_rule()
    copy.load_state_dict(state)
    assert copy.state_dict() == state


def test_a_range_test_run_logs_every_step_and_resumes_exactly(tmp_path):
    """The trainer takes the lr of every step from the schedule, reports it with the mini-batch loss, stops
    by the rule (status completed, stopped_early), and a range test stopped mid-way resumes bit for bit."""
    import json

    from dlexp.config import validate_mapping
    from dlexp.experiment import make_trainer, prepare
    from dlexp.trainer import Callback

    mapping = {"seed": 2, "data": {"kind": "moons", "n_samples": 100},
               "model": {"hidden": [8]},
               "training": {"epochs": 40, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 1e-3},
                            "schedule": {"name": "range_test", "end_lr": 100.0, "steps": 60}}}

    class Steps(Callback):
        def __init__(self):
            self.rows = []

        def on_step(self, row):
            self.rows.append(dict(row))

    def fresh():
        p = prepare(validate_mapping(mapping, "m"), tmp_path)
        steps = Steps()
        return p, make_trainer(p, [steps]), steps

    p1, t1, s1 = fresh()
    result = t1.fit(p1.train, p1.val)
    assert result.status == "completed" and result.stopped_early and result.stop_reason
    assert [r["step"] for r in s1.rows] == list(range(1, t1.step + 1))
    schedule = p1.schedule
    assert [r["lr"] for r in s1.rows] == [schedule.lr_at(1e-3, k) for k in range(t1.step)]
    assert t1.step <= 60 and s1.rows[-1]["lr"] <= 100.0

    p2, t2, s2 = fresh()
    original = t2._train_step

    def step_then_stop(Xb, tb):
        out = original(Xb, tb)
        if t2.step == 17:
            t2.request_stop()
        return out

    t2._train_step = step_then_stop
    assert t2.fit(p2.train, p2.val).status == "interrupted"
    p3, t3, s3 = fresh()
    t3.restore(t2.checkpoint_arrays())
    assert t3.fit(p3.train, p3.val).stop_reason == result.stop_reason
    assert s2.rows + s3.rows == s1.rows
    np.testing.assert_array_equal(t3.model.params, t1.model.params)
    assert json.dumps(t3.history) == json.dumps(t1.history)


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
