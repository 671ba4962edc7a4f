"""The gallery's decision rules, on small recorded results instead of trainings.

Each claim's ``measure`` gets its runs from ``Context.train``; here that seam returns results written
down by hand (a summary and an epoch history per variant and seed, what a training would have returned),
so every branch of a rule (confirmed, true but…, refuted) is checked in milliseconds. Where a claim reads
more than the summary and history (a trained checkpoint, a gradient check, timing.csv), the function that
reads it is replaced by one returning the numbers it would have read, or given a small recorded file
(tests/data/gallery/). Figures are drawn but not rendered to PNG. The gallery's end
to end run over every claim is the slow test in test_gallery.py; one claim runs end to end by default.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dlexp.gallery import BY_ID
from dlexp.gallery.core import CONFIRMED, ERROR, REFUTED, TRUE_BUT, Context

FIXTURES = Path(__file__).parent / "data" / "gallery"


@pytest.fixture(autouse=True)
def no_png(monkeypatch):
    """Figures are built (every plotting call runs) but not rendered: a stub file stands for the PNG (the
    end-to-end claim in test_gallery.py renders a real one)."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", lambda self, path, **kwargs: Path(path).write_bytes(b"stub"))


def replay(monkeypatch, make_result):
    """Context.train returns ``make_result(variant, overrides, seed, config)`` for each run it is asked for."""
    asked = []

    def train(self, config, variants, seeds, common=()):
        asked.append(config)
        self.n_runs += len(variants) * len(seeds)
        return {label: [make_result(label, [*common, *overrides], seed, config) for seed in seeds]
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
    def result(label, overrides, seed, config):
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
    def result(label, overrides, seed, config):
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
    def result(label, overrides, seed, config):
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


# -- claim 4: BatchNorm fixes it, even for sigmoid ---------------------------------------------------


def steady(final_acc: float, epochs: int = 20) -> list[float]:
    """A validation-accuracy curve that climbs from chance and settles at ``final_acc``."""
    return [min(final_acc, 0.5 + 0.1 * e) for e in range(epochs + 1)]


GRAD_NORMS = FIXTURES / "deep_sigmoid"  # grad_norms.csv at step 1 of a recorded 10-layer sigmoid run


@pytest.mark.parametrize("bn_end,batch_curve,verdict,said", [
    ([0.97] * 5, None, CONFIRMED, ""),
    ([0.95, 0.75, 0.96, 0.95, 0.95], [0.95, 0.95, 0.96, 0.95, 0.95], TRUE_BUT,
     "The swings come from BatchNorm's running statistics, not from the weights"),
    ([0.95, 0.75, 0.96, 0.95, 0.95], [0.95, 0.87, 0.96, 0.95, 0.95], TRUE_BUT,
     "Most of the swing comes from BatchNorm's running statistics, the rest from the weights"),
    ([0.95, 0.75, 0.96, 0.95, 0.95], [0.95, 0.76, 0.96, 0.95, 0.95], TRUE_BUT,
     "The swings come from the weights, not from BatchNorm's running statistics"),
    ([0.6] * 5, None, REFUTED, ""),  # not fixed: below 0.9
])
def test_claim_4_rule(monkeypatch, tmp_path, bn_end, batch_curve, verdict, said):
    from dlexp.gallery import cures

    def result(label, overrides, seed, config):
        assert "training.epochs=20" in overrides
        if label == "sigmoid":
            curve = [0.5] * 21
        elif label == "sigmoid + BatchNorm":
            curve = steady(0.95)[:16] + bn_end
        else:
            curve = steady(0.97)
        return {"summary": {"grad_ratio": 0.1, "grad_ratio_first_epoch": 1e-6}, "history": history(curve),
                "run_dir": str(GRAD_NORMS)}

    retrained = []

    def batch_statistics_curves(run):
        retrained.append(run)
        return bn_end, batch_curve

    replay(monkeypatch, result)
    monkeypatch.setattr(cures, "batch_statistics_curves", batch_statistics_curves)
    outcome = run_claim(4, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert said in outcome.finding and len(retrained) == (verdict == TRUE_BUT)
    assert outcome.direction_ok == (bn_end[-1] > 0.6)
    assert "val acc 0.50 → " in outcome.key_number


def test_claim_4_reads_the_step_1_gradient_profile():
    from dlexp.gallery.cures import _layer_profile

    profile = _layer_profile(str(GRAD_NORMS))
    assert len(profile) == 11 and profile[0] == pytest.approx(3.4627853300290186e-07, rel=1e-12)
    assert np.all(np.diff(np.log10(profile)) > 0)  # each layer gets more gradient than the one below


# -- claim 5: Adam and RMSProp help ------------------------------------------------------------------


@pytest.mark.parametrize("adam,rmsprop,verdict", [
    (0.95, 0.95, CONFIRMED),  # help, and within 0.05 of the ReLU reference (0.97)
    (0.8, 0.8, TRUE_BUT),  # help, but stop well short of it
    (0.8, 0.55, REFUTED),  # RMSProp does not leave chance + 0.1
])
def test_claim_5_rule(monkeypatch, tmp_path, adam, rmsprop, verdict):
    finals = {"SGD lr 0.1": 0.5, "Adam lr 0.001": adam, "RMSProp lr 0.001": rmsprop,
              "RMSProp lr 0.01 (torch default)": 0.5, "reference: ReLU + He, SGD lr 0.1": 0.97}

    def result(label, overrides, seed, config):
        return {"summary": {"grad_ratio": 0.01, "grad_ratio_first_epoch": 1e-6},
                "history": history(steady(finals[label] + 0.002 * seed))}

    replay(monkeypatch, result)
    outcome = run_claim(5, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.direction_ok and f"Adam {adam:.2f}" in outcome.key_number
    assert ("they help, they do not fix" in outcome.finding) == (verdict == TRUE_BUT)


# -- claim 6: backpropagation is the chain rule --------------------------------------------------------


def param_check(name, rel_error, abs_error=1e-12, grad=1.0):
    from dlexp.nn.gradcheck import ParamCheck

    return ParamCheck(name=name, size=16, max_abs_grad=grad, max_abs_error=abs_error, rel_error=rel_error)


@pytest.mark.parametrize("deep_first_layer,verdict", [
    (param_check("layers.0.W", 1e-9), CONFIRMED),
    (param_check("layers.0.W", 0.3, abs_error=1e-12, grad=1e-11), TRUE_BUT),  # below float64 resolution
    (param_check("layers.0.W", 0.3, abs_error=1e-4, grad=1e-3), REFUTED),  # a real disagreement
])
def test_claim_6_rule(monkeypatch, tmp_path, deep_first_layer, verdict):
    from dlexp.errors import DlexpError
    from dlexp.gallery import chain_rule

    configs = [chain_rule.CONFIGS / "small.yaml", chain_rule.GALLERY_CONFIGS / "deep.yaml",
               chain_rule.CONFIGS / "broken.yaml"]

    def check_config(path, seed, data_dir):
        if path.name == "broken.yaml":
            raise DlexpError("broken.yaml: no such dataset")
        checks = [param_check("layers.0.W", 1e-9), param_check("layers.1.W", 2e-9)]
        if path.name == "deep.yaml":
            checks[0] = deep_first_layer
        return "2 → 8 → 1, tanh", checks, 0.69

    monkeypatch.setattr(chain_rule, "example_configs", lambda: configs)
    monkeypatch.setattr(chain_rule, "check_config", check_config)
    outcome = run_claim(6, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.key_number.startswith("2 models, worst rel. error")  # the broken config is not counted
    assert "Not checked (the config could not be built here): configs/broken.yaml" in outcome.finding
    assert outcome.direction_ok == (verdict != REFUTED)
    assert len(outcome.tables) == (2 if verdict == TRUE_BUT else 1)  # the per-layer table of the deep model


def test_claim_6_with_no_buildable_config_is_an_error(monkeypatch, tmp_path):
    from dlexp.errors import DlexpError
    from dlexp.gallery import chain_rule

    def check_config(path, seed, data_dir):
        raise DlexpError("no data")

    monkeypatch.setattr(chain_rule, "example_configs", lambda: [chain_rule.CONFIGS / "a.yaml"])
    monkeypatch.setattr(chain_rule, "check_config", check_config)
    outcome = run_claim(6, tmp_path)
    assert outcome.verdict == ERROR and "no example config could be built" in outcome.error


# -- claim 7: dropout reduces overfitting -------------------------------------------------------------


def last_epoch(train_acc, val_acc, train_loss, val_loss) -> list[dict]:
    return [{"epoch": 0, "train_acc": 0.5, "val_acc": 0.5, "train_loss": 0.7, "val_loss": 0.7},
            {"epoch": 1, "train_acc": train_acc, "val_acc": val_acc, "train_loss": train_loss,
             "val_loss": val_loss}]


@pytest.mark.parametrize("with_dropout,verdict", [
    (lambda s: (0.95, 0.90, 0.20, 0.35), CONFIRMED),  # both gaps close, val accuracy up
    (lambda s: (0.95, 0.85 + (0.01, -0.01, 0.0)[s], 0.20, 0.35), TRUE_BUT),  # val accuracy level
    (lambda s: (1.0, 0.85, 0.01, 0.9), REFUTED),  # the loss gap does not shrink
])
def test_claim_7_rule(monkeypatch, tmp_path, with_dropout, verdict):
    def result(label, overrides, seed, config):
        numbers = (1.0, 0.85, 0.01, 0.8) if label == "no dropout" else with_dropout(seed)
        return {"summary": {}, "history": last_epoch(*numbers)}

    replay(monkeypatch, result)
    outcome = run_claim(7, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.key_number.startswith("loss gap 0.79 → ")
    assert outcome.direction_ok == (verdict != REFUTED)
    assert ("But look at where the gap closes" in outcome.finding) == (verdict == TRUE_BUT)


# -- claim 8: at inference dropout is off and activations are scaled ----------------------------------


@pytest.mark.parametrize("agree,deep_gap,single,acc_sai,verdict", [
    (0.99, 0.05, [0.1, 0.0316, 0.0158], 0.9, CONFIRMED),  # gap falls like 1/√draws; deep gap at noise level
    (0.99, 0.3, [0.1, 0.0316, 0.0158], 0.9, TRUE_BUT),  # the two-layer network's gap is real
    (0.99, 0.05, [0.1, 0.09, 0.08], 0.9, REFUTED),  # more masks do not close the one-layer gap
    (0.99, 0.05, [0.1, 0.0316, 0.0158], 0.85, REFUTED),  # the modes reach different accuracies
    (0.8, 0.05, [0.1, 0.0316, 0.0158], 0.9, REFUTED),  # the modes disagree on predictions
])
def test_claim_8_rule(monkeypatch, tmp_path, agree, deep_gap, single, acc_sai, verdict):
    from dlexp.gallery import dropout

    def result(label, overrides, seed, config):
        acc = 0.9 if label == "inverted" else acc_sai
        return {"summary": {}, "history": history([0.5, acc])}

    asked = {}

    def single_layer_gaps(mode, seed, draw_counts):
        asked["draws"] = draw_counts
        return single

    replay(monkeypatch, result)
    monkeypatch.setattr(dropout, "trained_pair", lambda inverted, scaled, draws: (agree, deep_gap))
    monkeypatch.setattr(dropout, "single_layer_gaps", single_layer_gaps)
    outcome = run_claim(8, tmp_path)
    assert asked["draws"] == [100, 1000, 4000]
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.key_number.startswith(f"{agree * 100:.1f} % same predictions")
    assert ("far above the sampling error" in outcome.finding) == (verdict == TRUE_BUT)


def test_claim_8_single_layer_gap_falls_with_more_masks():
    from dlexp.gallery.dropout import single_layer_gaps

    gaps = single_layer_gaps("inverted", 0, [10, 1000])
    assert gaps[1] < gaps[0] / 3  # 1/√100 = 0.1 expected; a third leaves room for one seed's luck


# -- claim 9: stochastic, mini-batch and batch gradient descent ---------------------------------------


def timed_run(folder: Path, losses: list[float], seconds_per_epoch: float, steps_per_epoch: int) -> dict:
    """A result with a training-loss history and the timing.csv its run would have written."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{e},{e * steps_per_epoch},{e * seconds_per_epoch:.6f}" for e in range(len(losses))]
    (folder / "timing.csv").write_text("epoch,step,elapsed_s\n" + "\n".join(rows) + "\n")
    return {"summary": {"steps": (len(losses) - 1) * steps_per_epoch}, "run_dir": str(folder),
            "history": [{"epoch": e, "train_loss": v} for e, v in enumerate(losses)]}


NOISY = [0.7, 0.5, 0.55, 0.3, 0.35, 0.15, 0.18]  # up after 3 of 6 epochs; at 0.2 by epoch 5
MINI = [0.7, 0.6, 0.5, 0.52, 0.4, 0.3, 0.25, 0.2, 0.18, 0.15, 0.12]  # up once in 10; at 0.2 by epoch 7
SMOOTH = list(np.linspace(0.7, 0.1, 31))  # never up; at 0.2 by epoch 25


@pytest.mark.parametrize("sgd_seconds,full_losses,verdict", [
    (0.008, SMOOTH, CONFIRMED),  # mini-batches reach the target first
    (0.0004, SMOOTH, TRUE_BUT),  # single examples get there first
    (0.008, [0.7, 0.6, 0.65] * 5 + [0.1], REFUTED),  # full batches noisier than mini-batches
])
def test_claim_9_rule(monkeypatch, tmp_path, sgd_seconds, full_losses, verdict):
    from dlexp.gallery import descent

    def result(label, overrides, seed, config):
        folder = tmp_path / "runs" / f"{label.split()[0]}-{seed}"
        if label.startswith("1 "):  # 800 updates per epoch
            return timed_run(folder, NOISY, sgd_seconds, 800)
        if label.startswith("32 "):  # 25 updates per epoch, 20 µs each
            return timed_run(folder, MINI, 0.0005, 25)
        return timed_run(folder, full_losses, 0.0002, 1)  # one update per epoch, 200 µs

    replay(monkeypatch, result)
    monkeypatch.setattr(descent, "_evaluation_us", lambda run: 50.0)
    outcome = run_claim(9, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.key_number.startswith(f"s to loss 0.2: batch 1 {5 * sgd_seconds:.2f}, 32 0.00")
    assert f"with 32 examples {0.0005 / 25 * 1e6:.0f} µs" in outcome.finding
    assert outcome.direction_ok == (verdict != REFUTED)


# -- claim 10: Adam, Adamax, Adadelta and RMSProp against SGD -----------------------------------------


def decaying(rate: float, epochs: int, start: float = 1.1) -> list[dict]:
    return [{"epoch": e, "train_loss": start * math.exp(-rate * e), "val_acc": 0.9} for e in range(epochs + 1)]


@pytest.mark.parametrize("spirals,sparse,verdict,said", [
    # per optimizer: the loss decay rate per epoch at its best lr (other lrs of its grid are slower)
    ({"adam": 0.3, "adamax": 0.3, "adadelta": 0.3, "rmsprop": 0.3}, {"adam": 0.5, "adamax": 1.0}, CONFIRMED,
     "Adamax is measurably faster here"),
    ({"adam": 0.3, "adamax": 0.3, "adadelta": 0.05, "rmsprop": 0.3}, {"adam": 0.5, "adamax": 0.5}, TRUE_BUT,
     "Not clearly ahead of SGD on both counts: adadelta"),
    ({"adam": 0.05, "adamax": 0.05, "adadelta": 0.05, "rmsprop": 0.05}, {"adam": 1.0, "adamax": 0.5},
     REFUTED, "Adam is measurably faster"),
])
def test_claim_10_rule(monkeypatch, tmp_path, spirals, sparse, verdict, said):
    best = {"optimizers.yaml": {"sgd": 0.3, "adam": 3e-3, "adamax": 2e-2, "adadelta": 3.0, "rmsprop": 1e-2},
            "adamax_sparse.yaml": {"sgd": 1.0, "adam": 0.03, "adamax": 0.1}}  # each optimizer's best lr

    def result(label, overrides, seed, config):
        name, lr = label.split()[0], float(label.split()[1])
        epochs = int(_setting(overrides, "training.epochs"))
        rate = {"sgd": 0.05, **(spirals if config == "optimizers.yaml" else sparse)}[name]
        rate *= (1 + 0.01 * seed) * (1.0 if math.isclose(lr, best[config][name]) else 0.7)
        return {"summary": {}, "status": "completed", "history": decaying(rate, epochs)}

    asked = replay(monkeypatch, result)
    outcome = run_claim(10, tmp_path)
    assert asked == ["optimizers.yaml", "adamax_sparse.yaml"]
    assert outcome.error is None and outcome.verdict == verdict
    assert said in outcome.finding
    spirals_rows = {row[0]: row for row in outcome.tables[0].rows}
    assert spirals_rows["adam"][1] == "0.003" and spirals_rows["sgd"][1] == "0.3 (grid edge)"
    assert outcome.direction_ok == (verdict != REFUTED)


# -- claim 11: L1/L2 reduce overfitting; L1 makes weights sparse ------------------------------------


def trained_weights(small: float, zero: float, tiny_unreached: float = 0.0, dead: float = 0.1) -> dict:
    """200 weights: a share ``small`` below 1e-3 (of which a share ``zero`` of all exactly 0, and
    ``tiny_unreached`` of all below 1e-8 with no data gradient), the rest about 0.1."""
    n = 200
    w = np.full(n, 0.1)
    n_small, n_zero, n_tiny = round(small * n), round(zero * n), round(tiny_unreached * n)
    w[:n_small] = 5e-4
    w[:n_tiny] = 1e-9
    w[:n_zero] = 0.0
    no_gradient = np.zeros(n, dtype=bool)
    no_gradient[:n_tiny] = True
    return {"w": w, "w0": np.full((30, 4), 0.1), "dead": dead, "no_gradient": no_gradient}


@pytest.mark.parametrize("l1_weights,l1_val_acc,verdict,said", [
    (trained_weights(0.6, 0.05), 0.95, CONFIRMED, "L1 does what it is known for: 60 %"),
    (trained_weights(0.6, 0.0), 0.95, TRUE_BUT, "But none of those weights is exactly zero"),
    (trained_weights(0.6, 0.05), 0.90, TRUE_BUT, "But validation accuracy does not improve"),
    (trained_weights(0.6, 0.05), 0.95, REFUTED, ""),  # the penalties do not shrink the loss gap
])
def test_claim_11_rule(monkeypatch, tmp_path, l1_weights, l1_val_acc, verdict, said):
    from dlexp.gallery import regularization

    weights = {"none": trained_weights(0.01, 0.0), "L2 0.001": trained_weights(0.05, 0.0),
               "L2 0.01": trained_weights(0.1, 0.0, tiny_unreached=0.05, dead=0.3),
               "L1 0.0001": trained_weights(0.3, 0.0), "L1 0.001": l1_weights}
    penalised_gap = 0.6 if verdict == REFUTED else 0.2

    def result(label, overrides, seed, config):
        val_acc = {"none": 0.90, "L1 0.001": l1_val_acc}.get(label, 0.90) + 0.001 * seed
        gap = 0.5 if label == "none" else penalised_gap
        return {"summary": {}, "weights": weights[label],
                "history": last_epoch(1.0, val_acc, 0.05, 0.05 + gap + 0.001 * seed)}

    replay(monkeypatch, result)
    monkeypatch.setattr(regularization, "trained_model", lambda run: run["weights"])
    outcome = run_claim(11, tmp_path)
    assert outcome.error is None and outcome.verdict == verdict
    assert said in outcome.finding
    # L2 leaves 5 % of its weights below 1e-8, none reached by a data gradient: a surprise unless L1 has as many
    assert ("One surprise in the histogram" in outcome.finding) == (not (l1_weights["w"] == 0).any())
    assert outcome.direction_ok == (verdict != REFUTED)


# -- claim 12: regression losses vs classification losses ---------------------------------------------


def regression_errors(mae: float, mean_residual: float = 0.0, above: float = 0.5) -> dict:
    return {"mae": mae, "rmse": 1.3 * mae, "mean_residual": mean_residual, "median_residual": 0.0,
            "above": above}


@pytest.mark.parametrize("mse_outliers,sparse_gap,verdict", [
    (regression_errors(0.9, mean_residual=0.02), 0.0, CONFIRMED),  # outliers hurt MSE; cce ≡ sparse_cce
    (regression_errors(0.9, mean_residual=0.3), 0.0, TRUE_BUT),  # the MSE fit is off its mean
    (regression_errors(0.9, mean_residual=0.02), 1e-3, TRUE_BUT),  # the two cross-entropies differ
    (regression_errors(0.62), 1e-3, REFUTED),  # no robustness gap, and they differ
])
def test_claim_12_rule(monkeypatch, tmp_path, mse_outliers, sparse_gap, verdict):
    from dlexp.gallery import losses

    errors = {"mse, clean": regression_errors(0.6), "mse, outliers": mse_outliers,
              "mae, clean": regression_errors(0.6), "mae, outliers": regression_errors(0.62, above=0.52)}

    def result(label, overrides, seed, config):
        if config == "losses_diabetes.yaml":
            wobble = dict(errors[label], mae=errors[label]["mae"] + 0.001 * seed)
            return {"summary": {}, "errors": wobble, "history": []}
        loss = [0.9, 0.5, 0.3]
        if label == "sparse_cce":
            loss = [v + sparse_gap for v in loss]
        return {"summary": {}, "history": [{"epoch": e, "train_loss": v, "val_acc": 0.95, "val_loss": v}
                                           for e, v in enumerate(loss)]}

    asked = replay(monkeypatch, result)
    monkeypatch.setattr(losses, "ensure", lambda data_dir, name: data_dir / name)
    monkeypatch.setattr(losses, "_regression_errors", lambda run, clean_path: run["errors"])
    outcome = run_claim(12, tmp_path)
    assert asked == ["losses_diabetes.yaml", "losses_iris.yaml", "losses_breast_cancer.yaml"]
    assert outcome.error is None and outcome.verdict == verdict
    assert outcome.key_number.startswith(f"outliers raise val MAE: MSE 0.60 → {mse_outliers['mae']:.2f}")
    assert outcome.direction_ok == (sparse_gap == 0)  # outliers harm MSE more, and cce ≡ sparse_cce


# -- claim 13: optimizer rankings at default learning rates --------------------------------------------


def metrics_of(losses_by_optimizer: dict[str, list[float]]) -> dict:
    return {n: {"loss": np.array(v), "acc": np.full(len(v), 0.9)} for n, v in losses_by_optimizer.items()}


DEFAULTS = {"sgd": [0.6, 0.62, 0.61], "momentum": [0.3, 0.31, 0.29], "adam": [0.1, 0.11, 0.1],
            "rmsprop": [0.2, 0.21, 0.19], "adadelta": [0.65, 0.66, 0.64]}


@pytest.mark.parametrize("tuned,verdict,clear", [
    # sgd tuned from last but one to first, far beyond the seed noise
    ({**DEFAULTS, "sgd": [0.05, 0.06, 0.05]}, CONFIRMED, ["sgd"]),
    # momentum overtakes rmsprop by a hair: the ranking changes, but no optimizer gains clearly
    ({**DEFAULTS, "momentum": [0.19, 0.31, 0.04]}, TRUE_BUT, []),
    # every optimizer improves, the order stays
    ({n: [v - 0.01 for v in vs] for n, vs in DEFAULTS.items()}, REFUTED, list(DEFAULTS)),
    # a diverged tuned run (loss inf) is never a clear gain
    ({**DEFAULTS, "sgd": [0.05, math.inf, 0.05]}, TRUE_BUT, []),
])
def test_claim_13_rule(tuned, verdict, clear):
    from dlexp.gallery.tuning import OPTIMIZERS, decide

    assert sorted(DEFAULTS) == sorted(OPTIMIZERS)
    assert decide(metrics_of(DEFAULTS), metrics_of(tuned)) == (verdict, [n for n in OPTIMIZERS if n in clear])


def test_claim_13_reads_test_metrics_and_ranks_a_diverged_run_last():
    from dlexp.gallery.tuning import _ranks, _test_metrics

    def run(name, status, loss):
        row = {"training.optimizer": name, "status": status}
        test = {"test_loss": loss, "test_acc": 0.9} if status == "completed" else {}
        return row, {"summary": {"test": test}}

    runs = [run("sgd", "completed", 0.5), run("sgd", "diverged", None), run("adam", "completed", 0.2),
            run("adam", "completed", 0.3)]
    outcome = SimpleNamespace(rows=[r for r, _ in runs], results=[x for _, x in runs])
    metrics = _test_metrics(outcome)
    assert metrics["sgd"]["loss"].tolist() == [0.5, math.inf] and np.isnan(metrics["sgd"]["acc"][1])
    assert metrics["adam"]["loss"].tolist() == [0.2, 0.3]
    assert _ranks(metrics) == {"adam": 1, "sgd": 2}
