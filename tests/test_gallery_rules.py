"""The gallery's decision rules, on small recorded results instead of trainings.

Each claim's ``measure`` gets its runs from ``Context.train``; here that seam returns results written
down by hand (a summary and an epoch history per variant and seed, what a training would have returned),
so every branch of a rule (confirmed, true but…, refuted) is checked in milliseconds. The gallery's end
to end run over every claim is the slow test in test_gallery.py; one claim runs end to end by default.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlexp.gallery import BY_ID
from dlexp.gallery.core import CONFIRMED, REFUTED, TRUE_BUT, Context


def replay(monkeypatch, make_result):
    """Context.train returns ``make_result(variant, overrides, seed)`` for each run it is asked for."""
    asked = []

    def train(self, config, variants, seeds, common=()):
        asked.append(config)
        self.n_runs += len(variants) * len(seeds)
        return {label: [make_result(label, [*common, *overrides], seed) for seed in seeds]
                for label, overrides in variants.items()}

    monkeypatch.setattr(Context, "train", train)
    return asked


def history(val_acc: list[float]) -> list[dict]:
    return [{"epoch": e, "val_acc": a, "val_loss": 1 - a, "train_acc": a, "train_loss": 1 - a}
            for e, a in enumerate(val_acc)]


def run_claim(claim_id: int, tmp_path):
    return BY_ID[claim_id].run(quick=True, jobs=1, runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig")


def _setting(overrides: list[str], key: str) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.startswith(f"{key}="))


# -- claim 1: the gradient vanishes with depth, fastest for sigmoid ------------------------------------


@pytest.mark.parametrize("per_layer,verdict", [
    ({"sigmoid": 0.25, "tanh": 0.8, "relu": 1.0}, CONFIRMED),  # both shrink, sigmoid faster
    ({"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}, TRUE_BUT),  # tanh does not shrink
    ({"sigmoid": 0.8, "tanh": 0.8, "relu": 1.0}, REFUTED),  # sigmoid no faster than tanh
])
def test_claim_1_rule(monkeypatch, tmp_path, per_layer, verdict):
    def result(label, overrides, seed):
        activation, depth = _setting(overrides, "model.activation"), int(_setting(overrides, "model.depth"))
        wobble = 1 + 0.01 * ((seed * 7 + depth) % 3)  # a little seed-to-seed spread
        return {"summary": {"grad_ratio": 0.3 * per_layer[activation] ** depth * wobble}, "history": []}

    asked = replay(monkeypatch, result)
    outcome = run_claim(1, tmp_path)
    assert asked == ["vanishing_depth.yaml"] and outcome.error is None
    assert outcome.verdict == verdict
    assert outcome.direction_ok == (per_layer["sigmoid"] < per_layer["tanh"])
    assert "sigmoid ×" in outcome.key_number and (tmp_path / "fig" / "headline.png").is_file()


# -- claim 2: a deep sigmoid network gets stuck ---------------------------------------------------------


@pytest.mark.parametrize("deep_curve,verdict", [
    (lambda e: 0.5, TRUE_BUT),  # never leaves chance
    (lambda e: min(0.65, 0.5 + 0.05 * e), CONFIRMED),  # a little progress, then stuck
    (lambda e: min(0.95, 0.5 + 0.02 * e), REFUTED),  # keeps improving
])
def test_claim_2_rule(monkeypatch, tmp_path, deep_curve, verdict):
    def result(label, overrides, seed):
        depth, epochs = int(label.split()[1]), int(_setting(overrides, "training.epochs"))
        curve = [deep_curve(e) if depth == 10 else min(0.9, 0.5 + 0.1 * e) for e in range(epochs + 1)]
        return {"summary": {}, "history": history(curve)}

    replay(monkeypatch, result)
    outcome = run_claim(2, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict


# -- claim 3: ReLU / Leaky ReLU fix the deep network ---------------------------------------------------


@pytest.mark.parametrize("finals,verdict", [
    ({"sigmoid": 0.5, "relu": 0.97, "leaky_relu": 0.97, "tanh": 0.6}, CONFIRMED),
    ({"sigmoid": 0.5, "relu": 0.97, "leaky_relu": 0.97, "tanh": 0.97}, TRUE_BUT),
    ({"sigmoid": 0.5, "relu": 0.97, "leaky_relu": 0.6, "tanh": 0.6}, REFUTED),
])
def test_claim_3_rule(monkeypatch, tmp_path, finals, verdict):
    def result(label, overrides, seed):
        final = finals[label.split()[0]] + 0.001 * seed
        return {"summary": {"grad_ratio": 0.1, "grad_ratio_first_epoch": 0.1},
                "history": history([0.5] * 5 + [final] * 16)}

    replay(monkeypatch, result)
    outcome = run_claim(3, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    accs = [float(x) for x in outcome.key_number.replace("→", " ").replace(",", " ").replace(")", " ").split()
            if x[:1].isdigit()]
    assert math.isclose(accs[0], finals["sigmoid"], abs_tol=0.01)
    assert np.isfinite(accs).all()
