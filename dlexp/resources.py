"""Where the example configs and datasets are: the copy bundled in the installed package, or the checkout.

A wheel carries ``configs/`` and ``data/`` as ``dlexp/examples/`` (setup.py copies them at build time),
so the gallery, whose claims train on those files, runs after a plain ``pip install``. Run from a
checkout (or an editable install), the package has no bundled copy and the checkout's own files are used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def examples_root() -> Path:
    """The folder that holds ``configs/`` and ``data/``."""
    bundled = resources.files("dlexp") / "examples"
    if bundled.is_dir():
        return Path(str(bundled))
    return Path(__file__).resolve().parents[1]
