"""Run a selection of claims one after another and write the gallery page."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlexp.errors import DlexpError
from dlexp.gallery.claims import BY_ID, CLAIMS
from dlexp.gallery.core import ERROR, Claim, ClaimResult


@dataclass
class GalleryRun:
    quick: bool
    jobs: int
    out: Path
    runs_dir: Path
    results: list[tuple[Claim, ClaimResult]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[tuple[Claim, ClaimResult]]:
        """Claims that errored, and in quick mode claims whose direction check failed (the CI assertion)."""
        return [(c, r) for c, r in self.results if r.verdict == ERROR or (self.quick and not r.direction_ok)]

    @property
    def markdown(self) -> Path:
        return self.out / "experiments.md"


def parse_only(text: str | None) -> list[int]:
    """``"1,7"`` or ``"2-5,9"`` -> sorted claim ids; a DlexpError names anything else."""
    if text is None or not text.strip():
        return [c.id for c in CLAIMS]
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise DlexpError(f"--only {text!r}: {part!r} is not a claim number or range (e.g. --only 1,7 or "
                             "2-5)")
        low, high = int(match[1]), int(match[2] or match[1])
        for claim_id in range(low, high + 1):
            if claim_id not in BY_ID:
                raise DlexpError(f"--only {text!r}: there is no claim {claim_id}; claims are numbered "
                                 f"{CLAIMS[0].id}-{CLAIMS[-1].id}")
            ids.add(claim_id)
    return sorted(ids)


def run_gallery(ids: list[int], *, quick: bool, jobs: int, out: Path, runs_dir: Path,
                on_claim: Callable[[Claim, ClaimResult], None] | None = None,
                on_start: Callable[[Claim], None] | None = None) -> GalleryRun:
    """Measure each claim in ``ids`` (in order), then write ``out/experiments.md`` and ``out/figures/``."""
    from dlexp.gallery.render import write_page

    run = GalleryRun(quick=quick, jobs=jobs, out=Path(out), runs_dir=Path(runs_dir))
    started = time.perf_counter()
    for claim_id in ids:
        claim = BY_ID[claim_id]
        if on_start:
            on_start(claim)
        result = claim.run(quick, jobs, run.runs_dir, run.out / "figures")
        run.results.append((claim, result))
        if on_claim:
            on_claim(claim, result)
    run.seconds = time.perf_counter() - started
    write_page(run)
    return run
