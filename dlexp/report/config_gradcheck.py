"""`dlexp gradcheck`: a config's backprop gradients against float64 central differences.

The model the config describes is built in float64 (``dtype`` is forced), and the first ``rows``
training rows are one batch. :func:`dlexp.nn.gradcheck.check_model` probes every parameter (at
most ``max_per_param`` randomly chosen entries of each) with the config's L1/L2 penalty included,
and reports ``rel_error = max|g − n| / max(max|g|, max|n|)`` per parameter.
:func:`dlexp.nn.gradcheck.classify` names each outcome — pass, pass (noise-limited), unresolved or
fail — by the rule that module's docstring states; the gallery's claim 6 uses the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlexp.errors import ArgumentError, DlexpError
from dlexp.nn.gradcheck import (
    FAIL,
    NOISE_FACTOR,
    NOISE_LIMITED,
    STEP,
    TOLERANCE,
    UNRESOLVED,
    check_model,
    rounding_floor,
)


@dataclass
class ParamResult:
    name: str  # layers.i.W
    layer: int
    param: str
    size: int
    probed: int
    max_abs_grad: float
    max_abs_error: float
    rel_error: float
    status: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclass
class GradcheckResult:
    config: str
    model: str
    rows: int
    loss: float
    noise_floor: float
    max_per_param: int | None
    params: list[ParamResult] = field(default_factory=list)
    tolerance: float = TOLERANCE
    step: float = STEP

    @property
    def passed(self) -> bool:
        return not any(p.failed for p in self.params)

    @property
    def capped(self) -> list[ParamResult]:
        return [p for p in self.params if p.probed < p.size]

    def to_dict(self) -> dict:
        return {"config": self.config, "model": self.model, "rows": self.rows, "loss": self.loss,
                "tolerance": self.tolerance, "step": self.step, "noise_floor": self.noise_floor,
                "max_per_param": self.max_per_param, "passed": self.passed,
                "params": [vars(p) for p in self.params]}


def run_gradcheck(config: Path, sets: list[str], *, rows: int = 8, max_per_param: int | None = 100,
                  seed: int = 0) -> GradcheckResult:
    """Build the config's model in float64 and check every parameter's gradient (raises DlexpError)."""
    from dlexp import experiment
    from dlexp.config import config_base_dir, load_config

    if rows < 1:
        raise ArgumentError("rows", rows, "must be at least 1")
    if max_per_param is not None and max_per_param < 1:
        raise ArgumentError("max_per_param", max_per_param, "must be at least 1 (or None for every entry)")
    cfg = load_config(config, [*sets, "dtype=float64"])
    p = experiment.prepare(cfg, config_base_dir(config), str(config))
    n = min(rows, len(p.train))
    if p.model.batchnorm and n < 2:
        raise ArgumentError("rows", rows, "BatchNorm needs a batch of at least 2 rows")
    X, targets = p.train.X[:n], p.train.targets[:n]
    l1, l2 = cfg.training.l1, cfg.training.l2
    loss_value = p.model.loss_and_grads(X, targets, p.loss, training=True, rng=np.random.default_rng(seed))
    loss_value += p.model.penalty(l1, l2)
    if not np.isfinite(loss_value):
        raise DlexpError(f"{config}: the loss at initialisation is not finite ({loss_value}); "
                         "nothing to check")
    floor = rounding_floor(loss_value)
    checks = check_model(p.model, X, targets, p.loss, l1=l1, l2=l2, seed=seed, max_per_param=max_per_param)
    result = GradcheckResult(config=str(config), model=repr(p.model), rows=n, loss=float(loss_value),
                             noise_floor=floor, max_per_param=max_per_param)
    for c in checks:
        _, layer, param = c.name.split(".")
        result.params.append(ParamResult(
            name=c.name, layer=int(layer), param=param, size=c.size,
            probed=c.size if max_per_param is None else min(c.size, max_per_param),
            max_abs_grad=c.max_abs_grad, max_abs_error=c.max_abs_error, rel_error=c.rel_error,
            status=c.status(floor)))
    return result


def notes(result: GradcheckResult) -> list[str]:
    """What was compared, what was capped, and the outcome, in words."""
    lines = [(f"central differences with h = {result.step:g}; pass: max rel error ≤ {result.tolerance:g}, "
              f"or max abs error ≤ the rounding floor {NOISE_FACTOR:g}·ε·max(|L|, 1)/h = "
              f"{result.noise_floor:.1e} (L = {result.loss:.6g})")]
    capped = result.capped
    if capped:
        shown = ", ".join(f"{p.name} {p.probed:,} of {p.size:,}" for p in capped[:4])
        more = f" and {len(capped) - 4} more" if len(capped) > 4 else ""
        lines.append(f"probed at most {result.max_per_param:,} random entries per parameter ({shown}{more}); "
                     "--max-per-param 0 probes every entry")
    limited = [p.name for p in result.params if p.status == NOISE_LIMITED]
    if limited:
        lines.append(f"noise-limited: {', '.join(limited)} — gradients this small (vanishing) are below what "
                     "a 1e-6 relative check can resolve in float64; they agree within the rounding floor")
    unresolved = [p.name for p in result.params if p.status == UNRESOLVED]
    if unresolved:
        lines.append(f"unresolved: {', '.join(unresolved)} — the gradient itself is within 10× the rounding "
                     "floor, so finite differences cannot check it")
    failed = [p.name for p in result.params if p.failed]
    if failed:
        lines.append(f"FAILED: {', '.join(failed)} — backprop disagrees with the finite difference")
    else:
        lines.append(f"chain rule verified: all {len(result.params)} parameters pass")
    return lines
