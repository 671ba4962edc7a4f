"""Folder and run names made from free text: the one rule every writer of a named folder uses."""

from __future__ import annotations

import re

_OUTSIDE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: object, *, limit: int = 100, default: str = "run") -> str:
    """``text`` as a file-system-safe name: each run of characters outside ``A-Za-z0-9._-`` becomes one
    ``-``; leading and trailing ``.``, ``_`` and ``-`` go (no hidden file, nothing that reads as an
    option, and the first character is one a config ``name`` accepts); at most ``limit`` characters;
    ``default`` when nothing is left."""
    return _OUTSIDE.sub("-", str(text)).strip("._-")[:limit] or default
