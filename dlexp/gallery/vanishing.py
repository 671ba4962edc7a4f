"""Claims 1-2: the vanishing gradient with depth, and its symptom (claims 3-5, its cures: cures.py)."""

from __future__ import annotations

import math

import numpy as np

from dlexp.gallery.core import (
    CONFIRMED,
    REFUTED,
    TRUE_BUT,
    ClaimResult,
    Context,
    Table,
    band,
    clearly_positive,
    curve,
    label_axes,
    new_figure,
    num,
    pm,
    power10,
    save_figure,
    standard_error,
)

LOG_QUARTER = math.log10(0.25)
CHANCE = 0.5  # moons is balanced and the split stratified
ACTIVATIONS = {"sigmoid": "xavier_uniform", "tanh": "xavier_uniform", "relu": "he_normal"}


# -- claim 1 -------------------------------------------------------------------------------------


def measure_depth(ctx: Context) -> ClaimResult:
    depths = ctx.pick([2, 4, 6, 8, 10, 12, 14, 16], [2, 6, 10, 16])
    seeds = ctx.seeds()
    variants = {f"{act}-d{d}": [f"model.activation={act}", f"model.init={init}", f"model.depth={d}"]
                for act, init in ACTIVATIONS.items() for d in depths}
    runs = ctx.train("vanishing_depth.yaml", variants, seeds, common=ctx.pick([], ["data.n_samples=256"]))
    # log10 first/last gradient ratio, [activation][depth index][seed]
    logs = {act: np.array([[math.log10(r["summary"]["grad_ratio"]) for r in runs[f"{act}-d{d}"]]
                           for d in depths]) for act in ACTIVATIONS}
    slopes = {act: np.array([np.polyfit(depths, logs[act][:, s], 1)[0] for s in range(len(seeds))])
              for act in ACTIVATIONS}

    rows = []
    for k, d in enumerate(depths):
        rows.append([str(d), num(d * LOG_QUARTER), *(pm(logs[act][k], decimals=2) for act in ACTIVATIONS)])
    table = Table(["depth", "log10 0.25^depth", "sigmoid", "tanh", "relu (He init)"], rows,
                  "log10 of the first/last layer gradient-norm ratio over the first epoch (mean ± std over "
                  f"{len(seeds)} seeds). 0 means the first layer gets as much gradient as the last.")
    factor_rows = [[act, pm(slopes[act], decimals=3), f"{10 ** slopes[act].mean():.3f}"]
                   for act in ACTIVATIONS]
    factor_rows.append(["0.25^depth", num(LOG_QUARTER, 3), "0.250"])
    slope_table = Table(["activation", "slope (log10 per layer)", "factor per layer"], factor_rows,
                        "Least-squares slope of log10 ratio against depth, fitted per seed.")

    sig, tanh = slopes["sigmoid"], slopes["tanh"]
    sig_shrinks = clearly_positive(-sig)
    sig_faster = (tanh.mean() - sig.mean()) > 2 * math.hypot(standard_error(sig), standard_error(tanh))
    tanh_shrinks = tanh.mean() < -0.05  # a factor below 0.89 per layer
    deepest = depths[-1]
    sig_deep = logs["sigmoid"][-1].mean()
    below_bound = sig_deep < deepest * LOG_QUARTER
    if sig_shrinks and sig_faster and tanh_shrinks:
        verdict = CONFIRMED
    elif sig_shrinks and sig_faster:
        verdict = TRUE_BUT
    else:
        verdict = REFUTED
    sig_factor, tanh_factor, relu_factor = (10 ** slopes[a].mean() for a in ACTIVATIONS)
    finding = (
        "Each extra sigmoid layer multiplies the gradient that reaches the first layer by "
        f"**{sig_factor:.2f}** on average (0.25 is the largest value of σ′). At depth {deepest} the first "
        f"layer gets {power10(sig_deep)} of the last layer's gradient, "
        + ("even less than 0.25^depth = " if below_bound else "close to 0.25^depth = ")
        + f"{power10(deepest * LOG_QUARTER)}. "
        f"With tanh the factor per layer is **{tanh_factor:.2f}** and with ReLU (He init) "
        f"{relu_factor:.2f}.\n\n"
    )
    if verdict == TRUE_BUT:
        finding += (
            "So the gradient does vanish with depth, and faster for sigmoid than for tanh — but with Xavier "
            "initialisation tanh does not vanish at all at the start of training: Xavier keeps "
            "pre-activations near 0, where tanh′ ≈ 1, so the bound \"at most 1\" is nearly reached at every "
            "layer. "
        )
    elif verdict == CONFIRMED:
        finding += "Sigmoid vanishes fastest; tanh vanishes too, more slowly. "
    else:
        finding += "The measured slopes do not show sigmoid vanishing faster than tanh. "
    finding += (
        "The bound on σ′ is not a bound on the ratio: the backward signal is also multiplied by every weight "
        "matrix, so 0.25^depth is a yardstick, not a floor or a ceiling. ReLU's ratio stays near "
        f"{power10(logs['relu'].mean())} at every depth: that offset comes from the first layer's shape "
        "(2 inputs × 32 units against 32 × 1 for the output layer), not from depth."
    )
    fig, ax = new_figure()
    colors = {"sigmoid": "tab:red", "tanh": "tab:blue", "relu": "tab:green"}
    for act in ACTIVATIONS:
        mean, std = logs[act].mean(axis=1), logs[act].std(axis=1, ddof=1)
        label = f"{act} ({'He' if act == 'relu' else 'Xavier'} init)"
        ax.errorbar(depths, mean, yerr=std, marker="o", ms=4, capsize=3, label=label, color=colors[act])
    ax.plot(depths, [d * LOG_QUARTER for d in depths], "k--", lw=1.2, label="0.25^depth (σ′ ≤ 0.25)")
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    label_axes(ax, "hidden layers (depth)", "log10( |∂L/∂W first| / |∂L/∂W last| )",
               f"Gradient reaching the first layer, first epoch (mean ± std, {len(seeds)} seeds)",
               loc="lower left")
    figure = save_figure(fig, ctx.figure_path("headline.png"))
    return ClaimResult(
        verdict=verdict,
        key_number=f"per layer: sigmoid ×{sig_factor:.2f}, tanh ×{tanh_factor:.2f}, relu ×{relu_factor:.2f}",
        finding=finding,
        rule=("Fit log10(ratio) against depth per seed. Confirmed if sigmoid's slope is below 0 and below "
              "tanh's by more than 2 standard errors, and tanh's slope is below −0.05 (it shrinks too); "
              "true, but… if only tanh does not shrink; refuted otherwise."),
        direction="sigmoid's slope is negative and below tanh's",
        direction_ok=bool(sig.mean() < 0 and sig.mean() < tanh.mean()),
        tables=[table, slope_table], figure=figure,
        figure_caption="The headline: how much gradient the first layer gets, against depth. The dashed "
                       "line is 0.25^depth.",
        seeds=len(seeds),
    )


# -- claim 2: one 10-layer sigmoid network, and (in cures.py) its variants ------------------------------------


def acc_curves(results) -> np.ndarray:
    return np.array([curve(r, "val_acc") for r in results])


def ratio_first(results) -> np.ndarray:
    return np.array([math.log10(r["summary"]["grad_ratio_first_epoch"]) for r in results])


def measure_symptom(ctx: Context) -> ClaimResult:
    depths = [2, 3, 5, 10]
    epochs = ctx.pick(100, 30)
    seeds = ctx.seeds()
    runs = ctx.train("deep_sigmoid.yaml", {f"depth {d}": [f"model.depth={d}"] for d in depths}, seeds,
                     common=[f"training.epochs={epochs}", *ctx.pick([], ["data.n_samples=500"])])
    acc = {d: acc_curves(runs[f"depth {d}"]) for d in depths}
    rows = []
    for d in depths:
        a = acc[d]
        at_chance = (a[:, 1:] <= CHANCE + 0.05).sum(axis=1)
        rows.append([str(d), pm(a[:, 5], decimals=3), pm(a[:, -1], decimals=3), pm(a.max(axis=1), decimals=3),
                     pm(at_chance, decimals=1)])
    headers = ["depth", "val acc, epoch 5", f"val acc, epoch {epochs}", "best val acc",
               "epochs at chance (≤ 0.55)"]
    table = Table(headers, rows,
                  f"Sigmoid networks of width 32 on moons, SGD lr 0.1 (mean ± std over {len(seeds)} seeds).")
    deep, shallow = acc[10], acc[2]
    stuck = (deep[:, -1] - deep[:, 5]).mean() < 0.02 and deep[:, -1].mean() < shallow[:, -1].mean() - 0.1
    never_started = deep.max(axis=1).mean() <= CHANCE + 0.05
    verdict = (TRUE_BUT if never_started else CONFIRMED) if stuck else REFUTED
    d3 = acc[3]
    plateau3 = (d3[:, 1:] <= CHANCE + 0.05).sum(axis=1)
    finding = (
        f"The 10-layer sigmoid network ends at validation accuracy **{deep[:, -1].mean():.3f}** after "
        f"{epochs} epochs, against {shallow[:, -1].mean():.3f} for 2 layers. "
    )
    if verdict == TRUE_BUT:
        finding += (
            "But it does not stop improving \"after a few epochs\": it never starts. Its best accuracy over "
            f"all {epochs} epochs is {deep.max(axis=1).mean():.3f}, chance level for this balanced dataset; "
            "the network learns the class balance and nothing else. In between, depth 3 shows the other "
            f"face of the problem: a plateau at chance for {pm(plateau3, decimals=1)} epochs, then an "
            "escape. A stuck curve can be a plateau, and a longer run can leave it."
        )
    elif verdict == CONFIRMED:
        finding += "It improves for a few epochs, then its accuracy stops moving."
    else:
        finding += "The deep network keeps improving: no plateau was measured."
    fig, ax = new_figure()
    x = np.arange(epochs + 1)
    for d, color in zip(depths, ("tab:green", "tab:olive", "tab:orange", "tab:red")):
        band(ax, x, acc[d], f"depth {d}", color)
    ax.axhline(CHANCE, color="grey", lw=0.8, ls=":", label="chance")
    label_axes(ax, "epoch", "validation accuracy (fraction)",
               f"Sigmoid networks on moons, SGD (mean ± std, {len(seeds)} seeds)", loc="lower right")
    return ClaimResult(
        verdict=verdict,
        key_number=f"depth 10: val acc {deep[:, -1].mean():.2f} (best {deep.max(axis=1).mean():.2f}); "
                   f"depth 2: {shallow[:, -1].mean():.2f}",
        finding=finding,
        rule=("Stuck: the depth-10 accuracy gains less than 0.02 from epoch 5 to the end and ends more "
              "than 0.1 below depth 2. Confirmed if stuck after some early progress; true, but… if stuck "
              "and its best accuracy never leaves chance (≤ 0.55); refuted if not stuck."),
        direction="depth 10 ends more than 0.1 below depth 2",
        direction_ok=bool(deep[:, -1].mean() < shallow[:, -1].mean() - 0.1),
        tables=[table], figure=save_figure(fig, ctx.figure_path("claim-02-symptom.png")),
        figure_caption="Validation accuracy per epoch. Depth 10 never leaves chance; depth 3 sits on a "
                       "plateau first.",
        seeds=len(seeds),
    )
