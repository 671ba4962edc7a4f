"""How many cores this process may use: the one count behind ``--jobs``' default, the gallery's
machine line and the choice to make step-log text in a second process (:func:`core_to_spare`)."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def core_to_spare(concurrent_runs: int = 1) -> bool:
    """Whether each of ``concurrent_runs`` runs can have a second core, for the process that makes its
    step log's text (:mod:`dlexp.rundir.formatproc`)."""
    return 2 * concurrent_runs <= available_cores()
