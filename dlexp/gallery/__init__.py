"""The experiments gallery: every claim of the course notes, measured and reproducible in one command.

``dlexp gallery`` runs the claims in :data:`CLAIMS` (see ``claims.py``) and writes ``experiments.md``
with its figures; ``dlexp gallery --papers`` runs :data:`PAPERS` (``paper_claims.py``), five classic
papers' findings, and writes ``papers.md``. Each claim trains real models as plans of the one runner
(``dlexp.sweep.runner.run_plan``) on configs from ``configs/gallery/`` and decides its verdict by a rule written next to the measurement.
"""

from dlexp.gallery.claims import BY_ID, CLAIMS
from dlexp.gallery.core import Claim, ClaimResult
from dlexp.gallery.paper_claims import PAPER_BY_ID, PAPERS
from dlexp.gallery.runner import GalleryRun, collection, run_gallery

__all__ = ["BY_ID", "CLAIMS", "PAPERS", "PAPER_BY_ID", "Claim", "ClaimResult", "GalleryRun", "collection",
           "run_gallery"]
