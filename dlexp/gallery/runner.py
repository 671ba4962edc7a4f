"""Run a selection of claims one after another and write the gallery page.

Two collections share this machinery: the course notes' claims (``experiments.md``) and, with
``papers=True``, the classic papers (``papers.md``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlexp.errors import DlexpError
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


def parse_only(text: str | None, papers: bool = False) -> list[int]:
    """``"1,7"`` or ``"2-5,9"`` -> sorted claim ids; a DlexpError names anything else."""
    claims, by_id = collection(papers)
    what = "paper" if papers else "claim"
    if text is None or not text.strip():
        return [c.id for c in claims]
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise DlexpError(f"--only {text!r}: {part!r} is not a {what} number or range (e.g. --only 1,3 or "
                             "2-4)")
        low, high = int(match[1]), int(match[2] or match[1])
        for claim_id in range(low, high + 1):
            if claim_id not in by_id:
                raise DlexpError(f"--only {text!r}: there is no {what} {claim_id}; {what}s are numbered "
                                 f"{claims[0].id}-{claims[-1].id}")
            ids.add(claim_id)
    return sorted(ids)


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
