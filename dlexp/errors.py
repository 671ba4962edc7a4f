"""The one exception family dlexp raises for bad input.

Everything a user can get wrong (a config field, an override, a CSV column, a path) raises a
:class:`DlexpError` whose message is one line naming *where* (file, field path or column), *what*
was wrong and *what is accepted*. The CLI turns it into ``error: <message>`` on stderr and exit
code 2 in exactly one place; the engine never prints.

Whatever the message holds, the line that reaches the terminal goes through :func:`terminal_line`:
control characters are escaped and the line is at most ``MAX_ERROR_CHARS`` long, so an ESC or NUL in
a file name, a CSV header or a config value cannot drive the terminal, and a huge input is not echoed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any


class DlexpError(Exception):
    """Bad input from the user: one line, exit code 2 at the CLI."""

    exit_code = 2


class ConfigError(DlexpError):
    """A config file, field or override is invalid."""


class DataError(DlexpError):
    """A data file or column cannot be used."""


class ArgumentError(DlexpError):
    """A bad value for an argument of a library call, named as Python spells it:
    ``Thresholds(vanish_below=2)`` says ``vanish_below=2: must be a number in (0, 1)``.

    The CLI says the same with its flag (``--vanish-below 2: ...``): :func:`dlexp.cli.app.flag_for`
    maps the argument to the flag, in that one place. ``shown`` is the value as the message quotes it.
    """

    def __init__(self, argument: str, shown: Any, problem: str):
        self.argument, self.shown, self.problem = argument, str(shown), problem
        super().__init__(f"{argument}={self.shown}: {problem}")

    def with_option(self, option: str) -> str:
        """The message with ``option`` (a command-line flag) in place of ``argument=``."""
        return f"{option} {self.shown}: {self.problem}"


MAX_ERROR_CHARS = 600  # an error line is cut in the middle beyond this
MAX_SHOWN_CHARS = 80  # one user-given value quoted inside a message

# C0/C1 controls and DEL, lone surrogates (undecodable bytes in a file name), and the Unicode
# characters that reorder or hide text (bidi overrides, zero-width, line/paragraph separators).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
                     "\ud800-\udfff]")
_WHITESPACE = re.compile("[ \t\n\r]+")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control or invisible character written as ``\\xNN``/``\\uNNNN``."""
    return _UNSAFE.sub(_escape, text)


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character that :func:`escape_controls` would escape (a newline too)."""
    return _UNSAFE.search(text) is not None


def cut_middle(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and end around a note of what was cut."""
    if len(text) <= limit:
        return text
    room = max(limit - 48, 2)  # 48: the longest note, " ...[1,000,000,000,000 characters cut]... "
    head, tail = room - room // 3, room // 3
    return f"{text[:head]} ...[{len(text) - head - tail:,} characters cut]... {text[len(text) - tail:]}"


def terminal_line(message: Any, limit: int = MAX_ERROR_CHARS) -> str:
    """One safe line for the terminal: whitespace runs become one space, controls are escaped,
    and a line longer than ``limit`` keeps its start (file, field) and end (what is accepted)."""
    text = escape_controls(_WHITESPACE.sub(" ", str(message)).strip())
    return cut_middle(text, limit)


def show_value(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """A user-given value quoted for a message: ``repr`` (so controls are escaped), cut to ``limit``."""
    text = escape_controls(repr(value))
    if len(text) <= limit:
        return text
    closing = text[-1] if text[:1] in "'\"" else ""
    return text[: limit - 3 - len(closing)] + "..." + closing


_KINDS = ((stat.S_ISDIR, "is a directory"), (stat.S_ISFIFO, "is a FIFO (named pipe)"),
          (stat.S_ISCHR, "is a character device"), (stat.S_ISBLK, "is a block device"),
          (stat.S_ISSOCK, "is a socket"))


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def read_user_file(path: Path, shown: str, expected: str, error: type[DlexpError], max_bytes: int,
                   hint: str = "") -> bytes:
    """The bytes of a regular file the user named, at most ``max_bytes`` of them, or ``error`` in one line.

    Refused before anything is read: a missing file, a directory, a FIFO, a device or a socket (``/dev/zero``
    would never end), and a file whose size is above ``max_bytes``. ``shown`` is the path as the user wrote
    it; ``expected`` names the kind of file ("a CSV file").
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting; the type check
        # on the open descriptor (not on the name) then refuses it, so a swap after a check cannot slip by.
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except FileNotFoundError:
        raise error(f"{shown}: file not found{hint}") from None
    except OSError as exc:
        raise error(f"{shown}: cannot open ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((text for test, text in _KINDS if test(info.st_mode)), "is not a regular file")
            raise error(f"{shown}: {kind}; expected {expected} (a regular file)")
        if info.st_size > max_bytes:
            raise error(f"{shown}: {info.st_size:,} bytes; {expected} may be at most {max_bytes:,} bytes")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        data = _read_at_most(fd, max_bytes + 1)
    except OSError as exc:
        raise error(f"{shown}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # a file that grew, or one whose size the system does not report (/proc)
        raise error(f"{shown}: more than {max_bytes:,} bytes; {expected} may be at most {max_bytes:,} bytes")
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(limit - total, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
