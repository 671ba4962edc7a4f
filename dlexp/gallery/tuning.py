"""Claim 13: optimizer rankings at default learning rates against rankings at tuned ones.

Runs exactly what ``dlexp compare-optimizers`` and ``dlexp compare-optimizers --tune-lr`` run (the sweep
plans of dlexp.sweep.optimizers and dlexp.sweep.tuning on the sweep runner): the lr tuning over the
tuning seeds, then both comparisons over the same evaluation seeds, which follow the tuning seeds. The
ranking is by the test loss, which neither the tuning nor the defaults ever saw.
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.gallery.core import (
    CONFIRMED,
    GALLERY_CONFIGS,
    REFUTED,
    TRUE_BUT,
    ClaimResult,
    Context,
    GalleryError,
    Table,
    clearly_positive,
    num,
    pm,
)
from dlexp.optim import default_lr

CONFIG = "tuned_optimizers.yaml"
OPTIMIZERS = ["sgd", "momentum", "adam", "rmsprop", "adadelta"]
QUICK_POINTS = 5  # quick mode: one point per decade over the same four decades


def _grids(ctx: Context) -> dict[str, list[float]]:
    from dlexp.sweep.tuning import DEFAULT_DECADES, default_grid, log_grid

    if not ctx.quick:
        return {n: default_grid(n, "torch") for n in OPTIMIZERS}
    scale = 10.0**DEFAULT_DECADES
    return {n: log_grid(default_lr(n) / scale, default_lr(n) * scale, QUICK_POINTS) for n in OPTIMIZERS}


def _run(ctx: Context, plan):
    from dlexp.sweep.folder import run_sweep
    from dlexp.sweep.runner import LocalExecutor

    if ctx.executor is not None:
        outcome = run_sweep(plan, ctx.executor, ctx.runs_dir)
    else:
        with LocalExecutor(min(ctx.jobs, len(plan.runs))) as executor:
            outcome = run_sweep(plan, executor, ctx.runs_dir)
    ctx.n_runs += len(plan.runs)
    bad = [row for row in outcome.rows if row["status"] not in ("completed", "diverged")]
    if bad:
        raise GalleryError(f"claim 13: run {bad[0]['run']} of {plan.name} {bad[0]['status']}: {bad[0]['error']}")
    return outcome


def _test_metrics(outcome) -> dict[str, dict[str, np.ndarray]]:
    """Per optimizer, over the evaluation seeds: test loss and accuracy (inf / NaN for a diverged run)."""
    out: dict[str, dict[str, list[float]]] = {}
    for row, result in zip(outcome.rows, outcome.results):
        name = row["training.optimizer"]
        test = (result.get("summary") or {}).get("test") or {}
        ok = row["status"] == "completed"
        out.setdefault(name, {"loss": [], "acc": []})
        out[name]["loss"].append(float(test["test_loss"]) if ok else math.inf)
        out[name]["acc"].append(float(test["test_acc"]) if ok else math.nan)
    return {n: {k: np.array(v) for k, v in m.items()} for n, m in out.items()}


def _ranks(metrics: dict[str, dict[str, np.ndarray]]) -> dict[str, int]:
    order = sorted(metrics, key=lambda n: (metrics[n]["loss"].mean(), OPTIMIZERS.index(n)))
    return {n: k for k, n in enumerate(order, 1)}


def _spread(metrics) -> float:
    means = [m["loss"].mean() for m in metrics.values()]
    return max(means) - min(means)


def decide(at_default: dict[str, dict[str, np.ndarray]],
           at_tuned: dict[str, dict[str, np.ndarray]]) -> tuple[str, list[str]]:
    """The verdict from both comparisons' test metrics, and the optimizers whose test loss tuning lowers by
    more than 2 standard errors (paired by seed; a diverged run, loss inf, is never a clear gain)."""
    gain = {n: at_default[n]["loss"] - at_tuned[n]["loss"] for n in OPTIMIZERS}
    clear = [n for n in OPTIMIZERS if np.all(np.isfinite(gain[n])) and clearly_positive(gain[n])]
    if _ranks(at_default) == _ranks(at_tuned):
        return REFUTED, clear
    return (CONFIRMED if clear else TRUE_BUT), clear


def measure_tuned_ranking(ctx: Context) -> ClaimResult:
    from dlexp.sweep.grid import build_plan
    from dlexp.sweep.lrplots import plot_lr_sensitivity
    from dlexp.sweep.optimizers import optimizer_axis
    from dlexp.sweep.tuning import build_tuning_plan, choose_lrs, evaluation_axis, tuning_records

    config = GALLERY_CONFIGS / CONFIG
    tune_seeds = ctx.pick(3, 2)
    eval_seeds = len(ctx.seeds(full=5))
    sets = ctx.pick([], ["training.epochs=20"])
    grids = _grids(ctx)
    tuning_plan = build_tuning_plan(config, grids, "torch", tune_seeds=tune_seeds, budget=None, sets=sets,
                                    name="c13-lr-tuning")
    tuning = _run(ctx, tuning_plan)
    choices = choose_lrs(tuning_records(tuning_plan, tuning.results), OPTIMIZERS)
    missing = [n for n, c in choices.items() if c.lr is None]
    if missing:
        raise GalleryError(f"claim 13: no eligible lr for {', '.join(missing)}")
    default_axis, default_notes = optimizer_axis(",".join(OPTIMIZERS), [], "torch")
    tuned_axis, tuned_notes = evaluation_axis(choices, "torch")
    common = {"sets": sets, "seeds": eval_seeds, "seed_offset": tune_seeds, "kind": "compare-optimizers"}
    at_default = _test_metrics(_run(ctx, build_plan(config, [default_axis], name="c13-default",
                                                     notes=default_notes, **common)))
    at_tuned = _test_metrics(_run(ctx, build_plan(config, [tuned_axis], name="c13-tuned", notes=tuned_notes,
                                                   **common)))
    rank_default, rank_tuned = _ranks(at_default), _ranks(at_tuned)
    verdict, clear = decide(at_default, at_tuned)
    changed = rank_default != rank_tuned
    spread_default, spread_tuned = _spread(at_default), _spread(at_tuned)
    rows = []
    for n in sorted(OPTIMIZERS, key=rank_tuned.get):
        c = choices[n]
        low, high = c.lr_range
        tuned_lr = f"{c.lr:.3g}" + (f" ({low:.3g}–{high:.3g})" if low != high else "")
        if c.edge:
            tuned_lr += f", {c.edge} edge"
        rows.append([n, f"{default_lr(n):g}", pm(at_default[n]["loss"], 3), str(rank_default[n]), tuned_lr,
                     pm(at_tuned[n]["loss"], 3), str(rank_tuned[n]), pm(at_tuned[n]["acc"], decimals=3)])
    grid_words = (f"{len(grids['sgd'])} lrs spaced evenly in log lr over two decades either side of each "
                  "optimizer's default")
    table = Table(["optimizer", "default lr", "test loss at default", "rank", "tuned lr (within 1 SE)",
                   "test loss tuned", "rank", "test acc tuned"], rows,
                  f"Breast cancer data (shipped), 32-32 ReLU network, batch 32, {30 if not ctx.quick else 20} "
                  f"epochs. Tuning: {grid_words}, {tune_seeds} tuning seeds (0–{tune_seeds - 1}), lr chosen on "
                  "the mean final validation loss. Both comparisons: evaluation seeds "
                  f"{tune_seeds}–{tune_seeds + eval_seeds - 1} (mean ± std over {eval_seeds}), ranked by the "
                  "final test loss, which no choice ever saw.")
    moved = [n for n in OPTIMIZERS if rank_default[n] != rank_tuned[n]]
    worst = max(OPTIMIZERS, key=rank_default.get)
    finding = (
        "At torch's default learning rates the ranking by test loss is "
        + " < ".join(f"{n} ({num(at_default[n]['loss'].mean())})" for n in sorted(OPTIMIZERS, key=rank_default.get))
        + "; with each optimizer at its tuned lr it is "
        + " < ".join(f"{n} ({num(at_tuned[n]['loss'].mean())})" for n in sorted(OPTIMIZERS, key=rank_tuned.get))
        + f". The gap between the best and the worst optimizer goes from {num(spread_default)} to "
        f"{num(spread_tuned)}. "
    )
    if changed:
        finding += (f"{len(moved)} of {len(OPTIMIZERS)} optimizers change place ({', '.join(moved)}); last at "
                    f"its default, {worst} (lr {default_lr(worst):g}) is {_ordinal(rank_tuned[worst])} once "
                    f"tuned (lr {choices[worst].lr:.3g}). ")
    else:
        finding += "The order is the same either way. "
    edges = [n for n in OPTIMIZERS if choices[n].edge]
    if edges:
        finding += (f"The best lr of {', '.join(edges)} is at the edge of its grid, so its tuned result is if "
                    "anything pessimistic (`--tune-lr` flags this; a wider `--lr-grid` would settle it). ")
    finding += (f"Tuning lowers the test loss by more than two standard errors (paired by seed) for "
                f"{', '.join(clear) if clear else 'none of them'}. "
                "A ranking at default learning rates mostly ranks the defaults; the within-1-SE ranges show how "
                "flat each optimum is, i.e. how forgiving each optimizer is of a badly chosen lr.")
    fig_path = ctx.figure_path("claim-13-lr-sensitivity.png")
    plot_lr_sensitivity(fig_path, choices, f"Final validation loss against lr ({tune_seeds} tuning seeds)")
    return ClaimResult(
        verdict=verdict,
        key_number=(f"test-loss gap best–worst: default {num(spread_default)}, tuned {num(spread_tuned)}; "
                    f"{len(moved)}/{len(OPTIMIZERS)} change rank"),
        finding=finding,
        rule=("Each optimizer's lr is the grid point with the lowest mean final validation loss over the tuning "
              "seeds (`compare-optimizers --tune-lr`). Both rankings are by mean test loss over the evaluation "
              "seeds. Confirmed if the ranking changes and tuning lowers at least one optimizer's test loss by "
              "more than 2 standard errors (paired by seed); true, but… if the ranking changes without such a "
              "clear gain; refuted if the ranking is the same."),
        direction="the gap in test loss between the best and worst optimizer is smaller once each is tuned",
        direction_ok=bool(spread_tuned < spread_default),
        tables=[table], figure=fig_path.name,
        figure_caption=("Final validation loss against learning rate over the tuning seeds (line: mean, band: "
                        "min–max; ★ the chosen lr; x a grid point where a run diverged)."),
        seeds=eval_seeds,
    )


def _ordinal(k: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(k, f"number {k}")
