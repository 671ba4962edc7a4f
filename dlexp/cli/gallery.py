"""`dlexp gallery`: run the experiments gallery and write experiments.md over dlexp.gallery."""

from __future__ import annotations

import contextlib
import re
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from dlexp.cli.app import app, stdout_console
from dlexp.cli.options import OUTPUT, RUN, JobsOption
from dlexp.errors import DlexpError


def parse_only(text: str | None, papers: bool = False) -> list[int]:
    """``--only``'s ``"1,7"`` or ``"2-5,9"`` -> sorted claim ids; a DlexpError names anything else."""
    from dlexp.gallery import collection

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


def resolve_folders(quick: bool, every_claim: bool, out: Path | None, runs_dir: Path | None,
                    papers: bool = False) -> tuple[Path, Path | None]:
    """Where the page and the runs go. Only the full gallery of every claim writes to docs/ by default.

    In quick mode the runs are scratch unless ``--runs-dir`` keeps them: ``None`` for the runs folder
    means a temporary folder, removed when the gallery ends (a quick gallery makes tens of MB of runs);
    the page goes to ``runs/gallery-quick`` (``runs/gallery-papers-quick``) where the user can find it.
    """
    name = "gallery-papers" if papers else "gallery"
    if quick:
        return out or Path("runs") / f"{name}-quick", runs_dir
    runs_dir = runs_dir or Path("runs") / name
    out = out or (Path("docs") if every_claim else runs_dir / "docs")
    return out, runs_dir


QuickOption = Annotated[bool, typer.Option(
    "--quick", rich_help_panel=RUN,
    help="Small data and few epochs, still 3 seeds (the CI check); exit 1 if a verdict's direction "
         "does not hold.")]
OnlyOption = Annotated[str | None, typer.Option(
    "--only", metavar="IDS", rich_help_panel=RUN, show_default="every claim; with --papers, papers 1-5",
    help="Claims to run, e.g. 1,7 or 2-5.")]
PapersOption = Annotated[bool, typer.Option(
    "--papers", rich_help_panel=RUN,
    help="The classic papers (Glorot & Bengio, He et al. x2, Ioffe & Szegedy, Klambauer et al.) instead of "
         "the course notes; writes papers.md.")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", "-o", metavar="DIR", rich_help_panel=OUTPUT,
    show_default="docs for the full gallery; RUNS_DIR/docs with --only; runs/gallery-quick with --quick",
    help="Folder for experiments.md (papers.md) and figures/.")]
RunsOption = Annotated[Path | None, typer.Option(
    "--runs-dir", metavar="DIR", rich_help_panel=OUTPUT,
    show_default="runs/gallery; with --quick a temporary folder, removed at the end",
    help="Folder for the run directories.")]


@app.command(examples=[
    ("The CI check: every claim on small data, exit 1 if a verdict's direction fails:",
     "dlexp gallery --quick"),
    ("Two claims in full, the page and figures into one folder:", "dlexp gallery --only 2,7 -o out/"),
    ("The classic papers instead, on small data:", "dlexp gallery --papers --quick"),
])
def gallery(quick: QuickOption = False, only: OnlyOption = None, jobs: JobsOption = None,
            out: OutOption = None, runs_dir: RunsOption = None, papers: PapersOption = False) -> None:
    """Put every claim of the course notes (or, with --papers, five classic papers) to the test and write
    the page.

    Each claim trains small networks over several seeds and states a verdict with its key number; the
    page gathers them with their figures.
    """
    from dlexp.cli.tables import print_table, prose
    from dlexp.gallery import collection, run_gallery
    from dlexp.sweep.runner import default_jobs

    jobs = jobs or default_jobs()

    ids = parse_only(only, papers)
    out, runs_dir = resolve_folders(quick, len(ids) == len(collection(papers)[0]), out, runs_dir, papers)
    console = stdout_console()
    mode = "quick" if quick else "full"

    def say(text: str) -> None:
        prose(console, text)

    def started(claim):
        say(f"[{claim.id:>2}] {claim.title} ...")

    def finished(claim, result):
        check = "" if not quick else ("  direction ok" if result.direction_ok else "  DIRECTION FAILED")
        say(f"     {result.verdict} ({result.seconds:.1f} s, {result.n_runs} runs){check}")
        if result.error:
            say(f"     error: {result.error}")

    what = "paper" if papers else "claim"
    with contextlib.ExitStack() as scratch:
        if runs_dir is None:
            runs_dir = Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="dlexp-gallery-")))
            where = "a temporary folder, removed at the end (--runs-dir keeps them)"
        else:
            where = str(runs_dir)
        say(f"gallery{' of papers' if papers else ''} ({mode} mode): {len(ids)} {what}(s), {jobs} job(s); "
            f"runs in {where}")
        run = run_gallery(ids, quick=quick, jobs=jobs, out=out, runs_dir=runs_dir, papers=papers,
                          on_claim=finished, on_start=started)
    print_table(console, gallery_table(run.results, quick, what, papers), optional=("s",),
                rest="the page written")
    say(f"total wall time: {run.seconds:.1f} s")
    figures = sorted((run.out / "figures").glob("*.png")) if (run.out / "figures").exists() else []
    say(f"wrote {run.markdown} and {len(figures)} figure(s) in {run.out / 'figures'}")
    for claim, result in run.failures:
        say(f"{what} {claim.id}: {result.error or f'direction check failed: {result.direction}'}")
    raise typer.Exit(1 if run.failures else 0)


def gallery_table(results, quick: bool, what: str = "claim", papers: bool = False):
    """A row per claim: its verdict and key number (and, with --quick, whether the direction held)."""
    from rich.table import Table

    from dlexp.cli.tables import num

    table = Table(title=f"dlexp gallery{' --papers' if papers else ''}, {'quick' if quick else 'full'} mode")
    for name, justify in (("#", "right"), (what, "left"), ("verdict", "left"), ("key number", "left"),
                          ("s", "right")):
        table.add_column(name, justify=justify)
    if quick:
        table.add_column("direction")
    for claim, result in results:
        row = [str(claim.id), claim.title, result.verdict, result.key_number, num(result.seconds)]
        table.add_row(*row, *([("ok" if result.direction_ok else "FAILED")] if quick else []))
    return table
