"""The run's CSV files: numbers and text as dlexp writes them, an append-only log of whole rows,
and the reader that cuts a file back to a checkpoint for resume.

CSV rows are written whole and flushed, numbers in Python's shortest round-trip form, NaN as an
empty field.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any

from dlexp.errors import DlexpError
from dlexp.rundir.schema import TEXT_COLUMNS, check_row


def format_value(value: Any) -> str:
    """A number or text as dlexp writes it in CSV: floats in shortest round-trip form (``repr``),
    NaN and None as an empty field."""
    if value is None:
        return ""
    if isinstance(value, float):  # numpy floats too: repr(float(x)), never "np.float64(...)"
        return repr(float(value)) if value == value else ""
    return str(value)


class CsvLog:
    """Append-only CSV: a header once, then whole rows.

    Rows are formatted into lines and kept in memory until :meth:`flush` (called at the end of each
    epoch, on close, and whenever 64 KiB are pending), which hands them to the OS in one
    ``os.write`` of whole lines: a reader, or a run killed at any moment, sees only whole rows, and
    the training step pays no system call per row. A write the OS refuses or cuts short (a full
    disk) is rolled back to the last whole row before the error is raised.
    """

    FLUSH_BYTES = 1 << 16

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = columns
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size  # bytes of whole rows on disk
        self._pending: list[str] = []
        self._pending_chars = 0
        self._keys = set(columns)
        if self._size == 0:
            self._pending.append(",".join(columns) + "\n")
            self.flush()

    def write(self, rows: list[dict[str, Any]], flush: bool = False) -> None:
        columns = self.columns
        for row in rows:
            if row.keys() != self._keys:
                check_row(self.path, columns, row)
            # floats and ints inline (the bulk of every row); anything else through csv_field
            line = ",".join([(repr(v) if v == v else "") if type(v) is float else str(v) if type(v) is int
                             else csv_field(v) for v in map(row.__getitem__, columns)]) + "\n"
            self._pending.append(line)
            self._pending_chars += len(line)
        if flush or self._pending_chars >= self.FLUSH_BYTES:
            self.flush()

    def write_text(self, text: str, flush: bool = False) -> None:
        """Whole lines already formatted for this file's columns (:class:`~dlexp.rundir.steplog.StepLog`)."""
        if text:
            self._pending.append(text)
            self._pending_chars += len(text)
        if flush or self._pending_chars >= self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._pending_chars = 0
        view = memoryview(data)
        try:
            while view:  # a regular file takes it in one call; loop in case the OS writes less
                written = os.write(self._fd, view)
                view = view[written:]
        except BaseException as exc:  # a full disk, or an exception raised by a signal handler
            os.ftruncate(self._fd, self._size)  # drop whatever part of these rows did get written
            if isinstance(exc, OSError):
                raise DlexpError(f"{self.path}: cannot write ({exc.strerror}); the file was cut back to its last "
                                 "whole row and the run stopped") from None
            raise
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None


def csv_field(value: Any) -> str:
    """:func:`format_value`, quoted as CSV requires when the text holds a comma, quote or newline."""
    text = format_value(value)
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def rows_up_to(path: Path, columns: list[str], key: str, last: int) -> tuple[str, int | None] | None:
    """The text of ``path`` cut back to its header and the rows whose ``key`` column is at most
    ``last``, and the last kept key (None: no row kept; the whole result None: no file or no header).

    The piece after the final newline (a row cut short by a crash) is dropped. Anything else that
    is not a row dlexp wrote — other columns, a field that is not a number, bytes that are not
    UTF-8 — raises :class:`DlexpError` naming the file and the line: a damaged file is never resumed.
    Nothing is written: the caller replaces the file (with :func:`write_text_atomic`) once every
    file of the run has been checked.
    """
    if not path.exists():
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DlexpError(f"{path}: not UTF-8 text (line {line}); this run file is damaged") from None
    complete = text.split("\n")[:-1]  # the piece after the last newline is empty or torn
    if not complete:
        return None
    if complete[0] != ",".join(columns):  # edited, or an older dlexp's run (before rmse, mae, r2, ...)
        raise DlexpError(f"{path}: columns {_clip(complete[0])!r} differ from the {len(columns)} this version "
                         f"writes ({_clip(','.join(columns))!r}); the file was edited or the run was started by "
                         "another dlexp version, and it cannot be resumed")
    kept = [complete[0]]
    last_kept = None
    position = columns.index(key)
    numeric = [i for i, name in enumerate(columns) if name not in TEXT_COLUMNS]
    for number, line in enumerate(complete[1:], start=2):
        fields = next(csv.reader([line]), [])
        problem = f"{len(fields)} fields, expected {len(columns)}" if len(fields) != len(columns) else None
        for i in numeric if problem is None else []:
            if fields[i] and not _is_number(fields[i], integer=i == position):
                problem = f"column '{columns[i]}' holds {_clip(fields[i], 40)!r}, not a number"
                break
        if problem is None and not fields[position]:
            problem = f"column '{key}' is empty"
        if problem is not None:
            raise DlexpError(f"{path}: line {number} is not a row dlexp wrote ({problem}); this run file is damaged")
        value = int(fields[position])
        if value <= last:
            kept.append(line)
            last_kept = value
    return "\n".join(kept) + "\n", last_kept


def _is_number(text: str, integer: bool = False) -> bool:
    try:
        int(text) if integer else float(text)
    except ValueError:
        return False
    return True


def _clip(text: str, limit: int = 80) -> str:
    """At most ``limit`` characters of file content for an error line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
