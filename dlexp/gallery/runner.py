"""Run a selection of claims one after another and write the gallery page.

Two collections share this machinery: the course notes' claims (``experiments.md``) and, with
``papers=True``, the classic papers (``papers.md``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlexp.gallery.claims import BY_ID, CLAIMS
from dlexp.gallery.core import ERROR, Claim, ClaimResult
from dlexp.gallery.paper_claims import PAPER_BY_ID, PAPERS


def collection(papers: bool) -> tuple[tuple[Claim, ...], dict[int, Claim]]:
    """The claims and the id → claim map of one gallery."""
    return (PAPERS, PAPER_BY_ID) if papers else (CLAIMS, BY_ID)


@dataclass
class GalleryRun:
    quick: bool
    jobs: int
    out: Path
    runs_dir: Path
    papers: bool = False
    results: list[tuple[Claim, ClaimResult]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[tuple[Claim, ClaimResult]]:
        """Claims that errored, and in quick mode claims whose direction check failed (the CI assertion)."""
        return [(c, r) for c, r in self.results if r.verdict == ERROR or (self.quick and not r.direction_ok)]

    @property
    def markdown(self) -> Path:
        return self.out / ("papers.md" if self.papers else "experiments.md")


def run_gallery(ids: list[int], *, quick: bool, jobs: int, out: Path, runs_dir: Path, papers: bool = False,
                on_claim: Callable[[Claim, ClaimResult], None] | None = None,
                on_start: Callable[[Claim], None] | None = None) -> GalleryRun:
    """Measure each claim in ``ids`` (in order), then write ``out/experiments.md`` (``out/papers.md`` for
    the papers) and ``out/figures/``."""
    from dlexp.gallery.render import write_page
    from dlexp.sweep.runner import LocalExecutor

    run = GalleryRun(quick=quick, jobs=jobs, out=Path(out), runs_dir=Path(runs_dir), papers=papers)
    by_id = collection(papers)[1]
    started = time.perf_counter()
    with LocalExecutor(jobs) as executor:  # one pool of workers for every claim's runs
        for claim_id in ids:
            claim = by_id[claim_id]
            if on_start:
                on_start(claim)
            result = claim.run(quick, jobs, run.runs_dir, run.out / "figures", executor)
            run.results.append((claim, result))
            if on_claim:
                on_claim(claim, result)
    run.seconds = time.perf_counter() - started
    write_page(run)
    return run
