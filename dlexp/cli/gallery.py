"""`dlexp gallery`: run the experiments gallery and write experiments.md over dlexp.gallery."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dlexp.cli.app import app, stdout_console


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_folders(quick: bool, every_claim: bool, out: Path | None,
                    runs_dir: Path | None) -> tuple[Path, Path]:
    """Where the page and the runs go. Only the full gallery of every claim writes to docs/ by default."""
    if quick and (out is None or runs_dir is None):
        scratch = Path(tempfile.mkdtemp(prefix="dlexp-gallery-"))
        out = out or scratch / "docs"
        runs_dir = runs_dir or scratch / "runs"
    runs_dir = runs_dir or Path("runs") / "gallery"
    out = out or (Path("docs") if every_claim else runs_dir / "docs")
    return out, runs_dir


QuickOption = Annotated[bool, typer.Option(
    "--quick", help="Small data and few epochs, still 3 seeds (the CI check); exit 1 if a verdict's "
                    "direction does not hold.")]
OnlyOption = Annotated[str | None, typer.Option(
    "--only", help="Claims to run, e.g. 1,7 or 2-5 (default: all; with --papers, papers 1-5).")]
PapersOption = Annotated[bool, typer.Option(
    "--papers", help="The classic papers (Glorot & Bengio, He et al. x2, Ioffe & Szegedy, Klambauer et al.) "
                     "instead of the course notes; writes papers.md.")]
JobsOption = Annotated[int, typer.Option(
    "--jobs", "-j", min=1, help="Trainings run in parallel (default: the cores available).")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", help="Folder for experiments.md (papers.md) and figures/ (default: docs for the full gallery; RUNS_DIR/docs "
                  "with --only; a temporary folder with --quick).")]
RunsOption = Annotated[Path | None, typer.Option(
    "--runs-dir", help="Where run directories go (default: runs/gallery; a temporary folder with --quick).")]


@app.command()
def gallery(quick: QuickOption = False, only: OnlyOption = None, jobs: JobsOption = _default_jobs(),
            out: OutOption = None, runs_dir: RunsOption = None, papers: PapersOption = False) -> None:
    """Put every claim of the course notes (or, with --papers, five classic papers) to the test and write
    the page."""
    from dlexp.gallery import collection, parse_only, run_gallery

    ids = parse_only(only, papers)
    out, runs_dir = resolve_folders(quick, len(ids) == len(collection(papers)[0]), out,
                                    runs_dir if runs_dir is not None or not papers or quick
                                    else Path("runs") / "gallery-papers")
    console = stdout_console()
    mode = "quick" if quick else "full"

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    def started(claim):
        say(f"[{claim.id:>2}] {claim.title} ...")

    def finished(claim, result):
        check = "" if not quick else ("  direction ok" if result.direction_ok else "  DIRECTION FAILED")
        say(f"     {result.verdict} ({result.seconds:.1f} s, {result.n_runs} runs){check}")
        if result.error:
            say(f"     error: {result.error}")

    what = "paper" if papers else "claim"
    say(f"gallery{' of papers' if papers else ''} ({mode} mode): {len(ids)} {what}(s), {jobs} job(s); "
        f"runs in {runs_dir}")
    run = run_gallery(ids, quick=quick, jobs=jobs, out=out, runs_dir=runs_dir, papers=papers, on_claim=finished,
                      on_start=started)
    table = Table(title=f"dlexp gallery{' --papers' if papers else ''}, {mode} mode")
    for name, justify in (("#", "right"), (what, "left"), ("verdict", "left"), ("key number", "left"),
                          ("s", "right")):
        table.add_column(name, justify=justify)
    if quick:
        table.add_column("direction")
    for claim, result in run.results:
        row = [str(claim.id), claim.title, result.verdict, result.key_number, f"{result.seconds:.1f}"]
        table.add_row(*row, *([("ok" if result.direction_ok else "FAILED")] if quick else []))
    console.print(table)
    say(f"total wall time: {run.seconds:.1f} s")
    figures = sorted((run.out / "figures").glob("*.png")) if (run.out / "figures").exists() else []
    say(f"wrote {run.markdown} and {len(figures)} figure(s) in {run.out / 'figures'}")
    for claim, result in run.failures:
        say(f"{what} {claim.id}: {result.error or f'direction check failed: {result.direction}'}")
    raise typer.Exit(1 if run.failures else 0)
