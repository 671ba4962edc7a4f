"""The per-parameter norms an optimizer step measures in cache (dlexp.optim.norms.UpdateNorms).

Reference: copy the parameters, step without ``norms``, and take ``np.linalg.norm`` of each
segment of ``theta_after`` and of ``theta_after - theta_before``.

Tolerances: ``||theta||`` is the same sum in another order, rtol 1e-12 in float64 (1e-5 in
float32). ``||delta theta||`` is, for optimizers that add one step array, the norm of that array
rather than of the rounded change ``fl(theta + d) - theta``. Rounding moves each element by at
most u * |theta_after| (u = eps / 2, the unit roundoff), so the two norms differ by at most
u * ||theta_after|| per segment: that bound is the test's absolute tolerance, on top of rtol 1e-12
(1e-5 in float32) for the order of summation. It matters in float32 for small steps (Keras
Adadelta's first steps are about 1e-6 * |theta|, where the rounded change is off by several %).
"""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.optim import CONVENTIONS, make_optimizer, optimizer_names
from dlexp.optim import base as optim_base
from dlexp.optim import norms as norms_module
from dlexp.optim.norms import UpdateNorms

# Segments of very different lengths: large (dot), small runs (reduceat), single elements.
LENGTHS = [900, 3, 1, 250, 40, 7, 1]
STARTS = np.cumsum([0, *LENGTHS[:-1]])
SIZE = sum(LENGTHS)
RTOL = {np.float64: 1e-12, np.float32: 1e-5}

# Besides each optimizer's defaults: every branch of its update (momentum, Nesterov, centred,
# AMSGrad, coupled and decoupled weight decay), since each branch returns its own step array.
VARIANTS = {
    "torch": [
        {"name": "sgd", "momentum": 0.9}, {"name": "sgd", "momentum": 0.9, "nesterov": True},
        {"name": "sgd", "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        {"name": "adam", "amsgrad": True, "weight_decay": 0.01},
        {"name": "adam", "weight_decay": 0.01, "decoupled_weight_decay": True},
        {"name": "rmsprop", "centered": True, "momentum": 0.5, "weight_decay": 0.01},
        {"name": "adagrad", "lr_decay": 0.01, "initial_accumulator_value": 0.1},
        {"name": "nadam", "weight_decay": 0.01, "decoupled_weight_decay": True},
    ],
    "keras": [
        {"name": "sgd", "momentum": 0.9}, {"name": "sgd", "momentum": 0.9, "nesterov": True},
        {"name": "sgd", "weight_decay": 0.01, "momentum": 0.9},
        {"name": "adam", "amsgrad": True},
        {"name": "rmsprop", "centered": True, "momentum": 0.5},
        {"name": "rmsprop", "momentum": 0.5},
        {"name": "nadam", "weight_decay": 0.01},
    ],
}


def cases():
    for convention in CONVENTIONS:
        for name in optimizer_names(convention):
            yield convention, {"name": name}
        for spec in VARIANTS[convention]:
            yield convention, spec


CASES = list(cases())
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in s.items())}" for c, s in CASES]


def reference(p_before, p_after):
    ends = [*STARTS[1:], SIZE]
    params = [np.linalg.norm(p_after[a:b].astype(np.float64)) for a, b in zip(STARTS, ends)]
    delta = (p_after - p_before).astype(np.float64)  # the rounded change, in the params' dtype
    updates = [np.linalg.norm(delta[a:b]) for a, b in zip(STARTS, ends)]
    return np.array(params), np.array(updates)


@pytest.mark.parametrize(("convention", "spec"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunk_elements", [0, 64, 301])
def test_step_norms_match_a_copy_and_subtract(convention, spec, dtype, chunk_elements, monkeypatch):
    monkeypatch.setattr(optim_base.Optimizer, "chunk_bytes", chunk_elements * np.dtype(dtype).itemsize)
    monkeypatch.setattr(norms_module, "DOT_MIN", 32)  # both the dot and the reduceat paths
    rng = np.random.default_rng(3)
    p = rng.standard_normal(SIZE).astype(dtype)
    opt = make_optimizer(spec, convention)
    state = opt.init(p)
    norms = UpdateNorms(STARTS, SIZE)
    rtol = RTOL[dtype]
    unit_roundoff = np.finfo(dtype).eps / 2
    for _ in range(4):
        g = rng.standard_normal(SIZE).astype(dtype)
        before = p.copy()
        opt.step(p, g, state, opt.lr, norms=norms)
        param_norms, update_norms = norms.result()
        want_p, want_d = reference(before, p)
        np.testing.assert_allclose(param_norms, want_p, rtol=rtol)
        assert np.all(np.abs(update_norms - want_d) <= unit_roundoff * want_p + rtol * want_d)
        assert np.all(update_norms > 0)


@pytest.mark.parametrize(("convention", "spec"), CASES, ids=IDS)
def test_measuring_norms_changes_no_bit_of_the_step(convention, spec):
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(SIZE)
    grads = rng.standard_normal((3, SIZE))
    results = []
    for norms in (None, UpdateNorms(STARTS, SIZE)):
        opt = make_optimizer(spec, convention)
        p = p0.copy()
        state = opt.init(p)
        for g in grads:
            opt.step(p, g.copy(), state, opt.lr, norms=norms)
        results.append((p, state))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for key in results[0][1]:
        np.testing.assert_array_equal(results[0][1][key], results[1][1][key])


def test_returns_delta_is_false_exactly_for_two_part_updates():
    assert make_optimizer({"name": "adam"}, "torch").returns_delta()
    assert not make_optimizer({"name": "adamw"}, "torch").returns_delta()
    assert make_optimizer({"name": "adamw", "weight_decay": 0.0}, "torch").returns_delta()
    assert not make_optimizer({"name": "nadam"}, "torch").returns_delta()
    assert make_optimizer({"name": "nadam"}, "keras").returns_delta()
    assert not make_optimizer({"name": "adamw"}, "keras").returns_delta()


def test_an_update_that_does_not_return_its_step_is_refused():
    opt = make_optimizer({"name": "sgd"}, "torch")
    opt._update = lambda p, g, state, scratch, coef: None  # claims one addition, returns nothing
    p = np.ones(4)
    with pytest.raises(RuntimeError, match="returned no step array"):
        opt.step(p, np.ones(4), opt.init(p), 0.1, norms=UpdateNorms([0, 2], 4))


@pytest.mark.parametrize("starts", [[1, 2], [0, 0, 3], [0, 5], []])
def test_bad_segment_starts_are_refused(starts):
    with pytest.raises(ValueError, match="segment_starts"):
        UpdateNorms(starts, 5)
