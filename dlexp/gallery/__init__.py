"""The experiments gallery: every claim of the course notes, measured and reproducible in one command.

``dlexp gallery`` runs the claims in :data:`CLAIMS` (see ``claims.py``) and writes ``experiments.md``
with its figures. Each claim trains real models through ``dlexp.sweep.runner.run_local`` on configs
from ``configs/gallery/`` and decides its verdict by a rule written next to the measurement.
"""

from dlexp.gallery.claims import BY_ID, CLAIMS
from dlexp.gallery.core import Claim, ClaimResult
from dlexp.gallery.runner import GalleryRun, parse_only, run_gallery

__all__ = ["BY_ID", "CLAIMS", "Claim", "ClaimResult", "GalleryRun", "parse_only", "run_gallery"]
