"""Read a CSV file (through pandas) into typed columns, refusing bad data in one line.

Every message names the file as written in the config, then the column, an example row and what
would be accepted. **Row N** is the N-th data row after the header (or after the skipped lines
when there is no header); **line L** is the real line of the file, counting every line.

Reading options (:class:`CsvFormat`, the ``data:`` section): ``header`` (the row, after
``skip_rows``, that holds the column names, or ``None``: columns are named ``0..n-1`` or by
``names``), ``skip_rows``, ``delimiter`` (detected among ``,`` ``;`` tab ``|`` when not given),
``comment``, ``encoding`` (a UTF-8 byte order mark is always allowed). ``.gz``, ``.bz2``, ``.xz``
and ``.zip`` files (one member) are decompressed first, as pandas does.

The parsed file and the rules its columns are checked by: :mod:`dlexp.data.csv_file`.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from dlexp.data.csv_file import NA_TOKENS, CsvFile
from dlexp.errors import DataError, read_user_file

MAX_LISTED_COLUMNS = 30  # column lists in messages are cut after this many
# A CSV file, or the text a compressed one expands to, may have at most this many bytes; a larger one is
# refused before it is read (or decompressed) further.
MAX_CSV_BYTES = 200_000_000
DELIMITERS = (",", ";", "\t", "|")  # detected in this order of preference
SNIFF_LINES = 50  # lines looked at to detect the delimiter

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip")


@dataclass(frozen=True)
class CsvFormat:
    """How to read a CSV file; the fields of the config's ``data:`` section with the same names."""

    header: int | None = 0
    names: tuple[str, ...] | None = None
    skip_rows: int = 0
    delimiter: str | None = None
    comment: str | None = None
    encoding: str = "utf-8"


# ---------------------------------------------------------------------------------------------
# Reading the file


CONFIG_RELATIVE = " (a relative path is read from the config file's folder)"


def read_csv(path: Path, shown: str, fmt: CsvFormat, hint: str = CONFIG_RELATIVE) -> CsvFile:
    """Read and parse ``path``; ``shown`` is the path as the user wrote it (every message starts with it),
    ``hint`` what a "file not found" adds."""
    return parse_csv_text(_read_text(Path(path), shown, fmt.encoding, hint), shown, fmt)


def parse_csv_text(text: str, shown: str, fmt: CsvFormat) -> CsvFile:
    """Parse CSV text already read and decoded (``fmt.encoding`` is not used)."""
    import pandas as pd  # only the CSV path needs pandas; keeps `import dlexp` light

    if not text.strip():
        raise DataError(f"{shown}: empty file; expected a header line of column names, then data rows")
    text, lines = _skip_lines(text, fmt.skip_rows, fmt.comment, shown)
    delimiter = fmt.delimiter or detect_delimiter(text)
    if fmt.header is not None:
        text, lines = _skip_lines(text, fmt.header, None, shown, lines)
        names, text, lines = _take_header(text, lines, shown, delimiter)
    else:
        first = _first_record(text, shown, delimiter, lines)
        if fmt.names is not None and len(fmt.names) != len(first):
            raise DataError(f"{shown}: data.names gives {len(fmt.names)} names but the first row "
                            f"(line {lines[0]} of the file) has {len(first)} fields; give one name per column")
        names = list(fmt.names) if fmt.names is not None else [str(i) for i in range(len(first))]
    _check_names(names, shown)
    text = _drop_trailing_blank_lines(text, delimiter)
    if not text:
        raise DataError(f"{shown}: header only, no data rows; expected data rows after the header line"
                        if fmt.header is not None else f"{shown}: no data rows")
    options = {"sep": delimiter, "header": None, "names": names, "keep_default_na": False,
               "na_values": sorted(NA_TOKENS), "skip_blank_lines": False, "index_col": False, "engine": "c",
               "comment": fmt.comment}
    if int(pd.__version__.split(".")[0]) < 3:
        options["float_precision"] = "round_trip"  # pandas 3's default parser is exact; 2's needs asking
    probe = CsvFile(shown, names, 0, delimiter, fmt.header is not None, fmt.comment, text, lines, None)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown}: empty file; expected a header line of column names, then data rows") from None
    except pd.errors.ParserError as exc:
        raise _parser_error(probe, str(exc)) from None
    except (ValueError, MemoryError) as exc:
        raise DataError(f"{shown}: cannot be read as CSV ({one_line(exc)})") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas drops the extra fields of a first row longer than the header, with only a warning
        raise _ragged_row_error(probe)
    return CsvFile(shown, names, len(frame), delimiter, fmt.header is not None, fmt.comment, text, lines, frame)


def _read_text(resolved: Path, shown: str, encoding: str, hint: str) -> str:
    raw = read_user_file(resolved, shown, "a CSV file", DataError, MAX_CSV_BYTES, hint=hint)
    raw = _decompress(raw, resolved, shown)
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        name = "UTF-8" if codec == "utf-8-sig" else encoding
        raise DataError(
            f"{shown}: not {name} text (byte {exc.start}, line {line} of the file); set data.encoding "
            "(e.g. latin-1 or cp1252) or save the file as UTF-8"
        ) from None
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(f"{shown}: contains a NUL byte (line {line} of the file); expected a plain-text CSV file")
    if not text.strip():
        raise DataError(f"{shown}: empty file; expected a header line of column names, then data rows")
    return text


def _decompress(raw: bytes, path: Path, shown: str) -> bytes:
    suffix = path.suffix.lower()
    if suffix not in COMPRESSION_SUFFIXES:
        return raw
    kind = suffix[1:]
    try:
        if suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise DataError(f"{shown}: a .zip file must hold exactly one CSV file (it holds {len(members)})")
                stream = archive.open(members[0])
                return _read_limited(stream, shown)
        opener = {".gz": lambda f: gzip.GzipFile(fileobj=f), ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}[suffix]
        return _read_limited(opener(io.BytesIO(raw)), shown)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile, ValueError) as exc:
        raise DataError(f"{shown}: not a valid {kind} file ({one_line(exc)}); "
                        "compressed files are read by their suffix (.gz, .bz2, .xz, .zip)") from None


def _read_limited(stream, shown: str) -> bytes:
    with stream:
        data = stream.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise DataError(f"{shown}: expands to more than {MAX_CSV_BYTES:,} bytes; "
                        "decompress it or use a smaller file")
    return data


def _skip_lines(text: str, count: int, comment: str | None, shown: str,
                lines: list[int] | None = None) -> tuple[str, list[int]]:
    """Drop the first ``count`` lines and, with ``comment``, every line that starts with it.

    Returns the rest and the real line number of each line left.
    """
    if lines is None:
        lines = list(range(1, text.count("\n") + 2))
    if count:
        cut = 0
        for _ in range(count):
            cut = text.find("\n", cut) + 1
            if cut == 0:
                raise DataError(f"{shown}: has {len(lines)} lines, all skipped (skip_rows and header); "
                                "lower data.skip_rows or data.header")
        text, lines = text[cut:], lines[count:]
    if comment:
        pieces = text.split("\n")
        kept = [i for i, piece in enumerate(pieces) if not piece.lstrip().startswith(comment)]
        if len(kept) < len(pieces):
            text = "\n".join(pieces[i] for i in kept)
            lines = [lines[i] for i in kept]
    if not text.strip():
        raise DataError(f"{shown}: nothing left after the skipped lines (skip_rows, header, comment); "
                        "expected data rows")
    return text, lines


def detect_delimiter(text: str) -> str:
    """The delimiter among ``,`` ``;`` tab ``|`` that splits the first lines into the same number (> 1) of
    fields, the most fields winning (ties in that order); ``,`` when none does."""
    pieces = text.split("\n", SNIFF_LINES)
    truncated = len(pieces) > SNIFF_LINES  # the sample may then end inside a record: its last one is ignored
    sample = "\n".join(pieces[:SNIFF_LINES])
    best, best_width = ",", 1
    for candidate in DELIMITERS:
        try:
            records = [r for r in csv.reader(io.StringIO(sample), delimiter=candidate)]
        except csv.Error:
            continue
        widths = {len(r) for r in records[: -1 if truncated and len(records) > 1 else None] if r}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = candidate, width
    return best


def _first_record(text: str, shown: str, delimiter: str, lines: list[int]) -> list[str]:
    try:
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataError(f"{shown}: line {lines[0]}: cannot be read as CSV ({one_line(exc)})") from None
    return first


def _take_header(text: str, lines: list[int], shown: str, delimiter: str) -> tuple[list[str], str, list[int]]:
    """Column names from the first record, stripped; returns the text after it."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        first = next(reader, [])
    except csv.Error as exc:
        raise DataError(f"{shown}: line {lines[0]} (the header): cannot be read as CSV ({one_line(exc)})") from None
    names = [name.strip() for name in first]
    if not any(names):
        raise DataError(f"{shown}: line {lines[0]} is blank; the first line must be the header of column names "
                        "(or set data.header: none)")
    used = reader.line_num  # a quoted name may span lines
    cut = 0
    for _ in range(used):
        cut = text.find("\n", cut) + 1
        if cut == 0:
            cut = len(text)
            break
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]  # pandas' spelling for a blank name
    return names, text[cut:], lines[used:]


def _check_names(names: list[str], shown: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{shown}: duplicate column name '{name}' (columns {seen[name] + 1} and {i + 1} of the header); "
                "each column needs a unique name"
            )
        seen[name] = i


def _drop_trailing_blank_lines(text: str, delimiter: str) -> str:
    """Without the lines at the end that hold nothing but delimiters (rows with every field empty)."""
    blank = re.compile(f"[{re.escape(delimiter)}]*\r?")
    pieces = text.split("\n")
    keep = len(pieces)
    while keep > 0 and blank.fullmatch(pieces[keep - 1]):
        keep -= 1
    return "\n".join(pieces[:keep]) + "\n" if keep else ""


def _parser_error(probe: CsvFile, message: str) -> DataError:
    # pandas counts records from 1 ("Expected 3 fields in line 5, saw 4": here the 5th data row)
    # and data rows from 1 in "EOF inside string starting at row 3".
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match is not None:
        row, saw = int(match.group(2)), int(match.group(3))
        line, _ = probe._record(row)
        return DataError(_ragged_message(probe, row, line, saw))
    match = re.search(r"EOF inside string starting at row (\d+)", message)
    if match is not None:
        row = int(match.group(1)) + 1  # counted from 0 when pandas reads no header
        return DataError(f"{probe.shown}: unclosed double quote starting at {probe.where(row)}; "
                         "close the quote or remove it")
    return DataError(f"{probe.shown}: cannot be read as CSV ({one_line(message)})")


def _ragged_message(probe: CsvFile, row: int, line: int, n_fields: int) -> str:
    return (f"{probe.shown}: row {row} (line {line} of the file) has {n_fields} fields but the "
            f"{probe._width_source()} has {len(probe.names)} columns; {probe.row_rule()}")


def _ragged_row_error(probe: CsvFile) -> DataError:
    """The first data row whose field count differs from the header's. Error path only."""
    reader = csv.reader(io.StringIO(probe._text), delimiter=probe.delimiter)
    row = 0
    while True:
        start = reader.line_num + 1
        fields = next(reader, None)
        if fields is None:
            break
        row += 1
        if fields and len(fields) != len(probe.names):
            return DataError(_ragged_message(probe, row, probe.line(start), len(fields)))
    return DataError(f"{probe.shown}: a row has more fields than the header's {len(probe.names)} columns")


def list_columns(columns: list[str]) -> str:
    listed = ", ".join(columns[:MAX_LISTED_COLUMNS])
    if len(columns) > MAX_LISTED_COLUMNS:
        listed += f", ... ({len(columns)} in all)"
    return listed


def one_line(value: object) -> str:
    return " ".join(str(value).split())
