"""The one exception family dlexp raises for bad input.

Everything a user can get wrong (a config field, an override, a CSV column, a path) raises a
:class:`DlexpError` whose message is one line naming *where* (file, field path or column), *what*
was wrong and *what is accepted*. The CLI turns it into ``error: <message>`` on stderr and exit
code 2 in exactly one place; the engine never prints.
"""

from __future__ import annotations

from pathlib import Path


class DlexpError(Exception):
    """Bad input from the user: one line, exit code 2 at the CLI."""

    exit_code = 2


class ConfigError(DlexpError):
    """A config file, field or override is invalid."""


class DataError(DlexpError):
    """A data file or column cannot be used."""


class DivergenceError(Exception):
    """Training produced NaN/Inf. Carries where it happened; not a user error."""

    def __init__(self, message: str, *, step: int, epoch: int, layer: str | None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.layer = layer


def read_user_file(path: Path, shown: str, expected: str, error: type[DlexpError], hint: str = "") -> bytes:
    """The bytes of a file the user named, or ``error`` in one line: missing, a directory, unreadable.

    ``shown`` is the path as the user wrote it; ``expected`` names the kind of file ("a CSV file").
    """
    if not path.exists():
        raise error(f"{shown}: file not found{hint}")
    if path.is_dir():
        raise error(f"{shown}: is a directory; expected {expected}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{shown}: cannot read ({exc.strerror})") from None
