"""Claim 6: backpropagation is the chain rule — every example model's gradients against finite differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlexp.config import load_mapping, validate_mapping
from dlexp.errors import DlexpError
from dlexp.gallery.core import (
    CONFIGS,
    CONFIRMED,
    GALLERY_CONFIGS,
    REFUTED,
    TRUE_BUT,
    ClaimResult,
    Context,
    Table,
    num,
)
from dlexp.gallery.datasets import point_to_generated
from dlexp.nn.gradcheck import (
    FAIL,
    NOISE_FACTOR,
    NOISE_LIMITED,
    STATUSES,
    TOLERANCE,
    UNRESOLVED,
    check_model,
    rounding_floor,
)

BATCH = 8  # samples in the checked batch
MAX_ENTRIES = 12  # probed entries per parameter (chosen at random) for big parameters
BELOW_RESOLUTION = (NOISE_LIMITED, UNRESOLVED)  # not resolved by the 1e-6 relative check, not failed


def example_configs() -> list[Path]:
    return sorted(CONFIGS.glob("*.yaml")) + sorted(GALLERY_CONFIGS.glob("*.yaml"))


def describe(model) -> str:
    """``2 → 32×10 → 1, sigmoid, BatchNorm, dropout 0.5``: layer widths with repeats folded."""
    widths, parts = model.sizes, []
    for width in widths:
        if parts and parts[-1][0] == width:
            parts[-1][1] += 1
        else:
            parts.append([width, 1])
    text = " → ".join(f"{w}×{n}" if n > 1 else str(w) for w, n in parts) + f", {model.activation.name}"
    if model.batchnorm:
        text += ", BatchNorm"
    if model.dropout:
        text += f", dropout {model.dropout:g}"
    return text


def check_config(path: Path, seed: int, data_dir: Path):
    """(model description, per-parameter checks, loss value) of the config's model at ``seed``, float64."""
    from dlexp import experiment

    shown = str(path.relative_to(CONFIGS.parent))
    mapping = load_mapping(path, shown=shown)
    mapping["seed"] = seed
    mapping["dtype"] = "float64"
    point_to_generated(mapping, data_dir)
    cfg = validate_mapping(mapping, shown)
    p = experiment.prepare(cfg, path.parent, shown)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(p.train), size=min(BATCH, len(p.train)), replace=False)
    X, targets = p.train.X[rows], p.train.targets[rows]
    loss_value = p.model.loss_and_grads(X, targets, p.loss, training=True, rng=np.random.default_rng(seed))
    checks = check_model(p.model, X, targets, p.loss, l1=cfg.training.l1, l2=cfg.training.l2, seed=seed,
                         max_per_param=MAX_ENTRIES, rng=rng)
    return describe(p.model), checks, loss_value


def measure_chain_rule(ctx: Context) -> ClaimResult:
    seeds = ctx.seeds()
    rows, skipped, checked = [], [], 0
    worst_passing, failed, unresolved = 0.0, [], {}
    profile = None  # per-layer numbers of the first model with unresolved parameters
    for path in example_configs():
        shown = str(path.relative_to(CONFIGS.parent))
        try:
            outcomes = [check_config(path, seed, ctx.data_dir) for seed in seeds]
        except DlexpError as exc:  # a config that cannot be built is listed, not counted as a failed check
            skipped.append(shown)
            rows.append([f"`{shown}`", "could not build", "—", "—", "—", str(exc)[:80]])
            continue
        checked += 1
        kinds = {status: [] for status in STATUSES}
        for _, checks, loss_value in outcomes:
            floor = rounding_floor(loss_value)
            for c in checks:
                kinds[c.status(floor)].append(c)
        below = [c for status in BELOW_RESOLUTION for c in kinds[status]]
        worst_rel = max(c.rel_error for _, checks, _ in outcomes for c in checks)
        worst_abs = max(c.max_abs_error for _, checks, _ in outcomes for c in checks)
        if not below:
            worst_passing = max(worst_passing, worst_rel)
        if kinds[FAIL]:
            failed.append(shown)
            result = "FAIL: " + ", ".join(sorted({c.name for c in kinds[FAIL]}))
        elif below:
            names = sorted({c.name for c in below}, key=lambda n: (int(n.split(".")[1]), n))
            unresolved[shown] = max(c.max_abs_grad for c in below)
            result = f"pass; {len(names)} parameters below resolution ({names[0]} … {names[-1]})"
            if profile is None:
                profile = (shown, outcomes[0][1], rounding_floor(outcomes[0][2]))
        else:
            result = "pass"
        description = outcomes[0][0]
        probed = sum(min(c.size, MAX_ENTRIES) for c in outcomes[0][1])
        rows.append([f"`{shown}`", description, str(probed), num(worst_rel, 2), num(worst_abs, 2), result])
    if checked == 0:
        raise DlexpError("claim 6: no example config could be built")
    if failed:
        verdict = REFUTED
    else:
        verdict = TRUE_BUT if unresolved else CONFIRMED
    headers = ["config", "model", "entries probed", "worst rel. error", "worst abs. error", "result"]
    tables = [Table(headers, rows,
                    f"Gradient check of each config's model on a batch of {BATCH} training samples, up to "
                    f"{MAX_ENTRIES} random entries per parameter, worst over seeds {seeds[0]}..{seeds[-1]}.")]
    finding = (
        f"Across {checked} example models — Dense layers, every activation the examples use, BatchNorm, "
        "dropout (masks held fixed), L1/L2 penalties and every loss — the gradient backpropagation computes "
        "matches central finite differences (L(θ + h) − L(θ − h)) / 2h, h = 10⁻⁶, in float64: the worst "
        "relative error of any model whose gradients are all large enough to measure is "
        f"**{num(worst_passing, 2)}** (tolerance {num(TOLERANCE, 1)}). Backpropagation is the chain rule "
        "applied layer by layer, and the hand-written backward passes get it right. "
    )
    if failed:
        finding = ("The gradient check finds real disagreements (absolute error above the rounding floor) "
                   f"in {', '.join(failed)}. ")
    if unresolved and profile is not None:
        name, checks, floor = profile
        first = next(c for c in checks if c.name == "layers.0.W")
        finding += (
            f"But in the deep sigmoid networks ({', '.join(f'`{k}`' for k in unresolved)}) the check cannot "
            f"see the first layers: there the gradient is as small as {num(first.max_abs_grad, 2)}, and "
            "rounding L(θ ± h) to float64 already leaves an error of order ε·|L|/h ≈ 10⁻¹⁰ in every finite "
            f"difference. The table below shows it for `{name}`: the absolute error is the same rounding "
            "noise in every layer, and the relative error climbs only because the gradient itself vanishes "
            "towards the input — the vanishing gradient of claim 1, blinding the tool that checks the chain "
            "rule. A parameter counts as *below resolution* when its absolute error is under "
            f"{NOISE_FACTOR:g}·ε·max(|L|, 1)/h = {num(floor, 1)}: *{NOISE_LIMITED}* while its gradient is "
            f"more than ten times that floor (the two still agree to within it), *{UNRESOLVED}* when the "
            "gradient itself is within ten times the floor — the labels `dlexp gradcheck` prints."
        )
        layer_rows = [[c.name, num(c.max_abs_grad, 2), num(c.max_abs_error, 2), num(c.rel_error, 2),
                       c.status(floor)] for c in checks if c.name.endswith(".W")]
        headers = ["parameter", "max |gradient|", "abs. error", "rel. error", "verdict"]
        tables.append(Table(headers, layer_rows,
                            f"`{name}`, seed {seeds[0]}: per-layer weights, input side first."))
    if skipped:
        finding += f" Not checked (the config could not be built here): {', '.join(skipped)}."
    n_unresolved = len(unresolved)
    return ClaimResult(
        verdict=verdict,
        key_number=f"{checked} models, worst rel. error {num(worst_passing, 2)}; first layers of "
                   f"{n_unresolved} deep sigmoid nets below finite-difference resolution",
        finding=finding,
        rule=("Each parameter passes if its relative error max |g − n| / max(|g|, |n|) is ≤ "
              f"{num(TOLERANCE, 1)}; it is below resolution if not, but its absolute error is under the "
              f"float64 rounding floor {NOISE_FACTOR:g}·ε·max(|L|, 1)/h (noise-limited, or unresolved when "
              "the gradient itself is within ten times the floor); otherwise it fails. Confirmed if "
              "every parameter passes; true, but… if the rest are below resolution; refuted if any fails."),
        direction="no parameter of any example model fails the gradient check",
        direction_ok=not failed,
        tables=tables,
        seeds=len(seeds),
    )
