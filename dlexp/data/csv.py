"""Read a CSV file (through pandas) into a feature matrix and a target, refusing bad data in one line.

Every message names the file as written in the config, then the column, an example row and what
would be accepted. **Row N** is the N-th data row after the header, which is line N+1 of the
file (unless a quoted field spans several lines; the line number given is then the real one).

Rules:

- Cells are read as text and stripped of surrounding spaces; column names too. A UTF-8 byte
  order mark is allowed. Blank lines at the end of the file are ignored; elsewhere they are rows
  with every value missing.
- Missing values: an empty cell or a pandas NA token (``NA``, ``N/A``, ``NaN``, ``null``, ...).
  They are refused only in the columns used (features and target).
- A column is numeric when every value parses as a number; numeric-looking (more than half
  parse) with some that do not is refused, naming the first such value; otherwise it is text.
  Infinite values (``inf``, ``1e999``) are refused.
- Text feature columns with at most ``MAX_CATEGORIES`` distinct values are one-hot encoded as
  ``column=value`` columns in sorted value order; more distinct values are refused.
- Task ``auto``: classification if the target is text, or integer-valued with at most
  ``MAX_AUTO_CLASSES`` distinct values; otherwise regression. Class indices follow the sorted
  distinct values (text sorted as strings, numbers numerically).
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlexp.errors import DataError, read_user_file, show_value
from dlexp.registry import did_you_mean

MAX_CATEGORIES = 50  # distinct values a text feature may have to be one-hot encoded
MAX_AUTO_CLASSES = 20  # an integer target with more distinct values is regression under task: auto
MAX_CLASSES = 1000  # same limit as the config's n_classes
MAX_LISTED_COLUMNS = 30  # column lists in messages are cut after this many
MAX_CSV_BYTES = 200_000_000  # a larger file is refused before it is read (pandas holds every cell as text)

# pandas' default NA strings (pandas.io.parsers.STR_NA_VALUES), fixed here so a pandas upgrade
# cannot silently change what counts as missing.
# fmt: off
NA_TOKENS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
# fmt: on


@dataclass
class Table:
    """A CSV file turned into arrays: X float64 ``(n, d)``; y int64 ``(n,)`` or float64 ``(n, 1)``."""

    X: np.ndarray
    y: np.ndarray
    task: str
    feature_names: list[str]
    class_names: list[str] | None
    target: str


def read_csv_table(path: str, target: str, features: list[str] | None, task: str, base_dir: Path,
                   check_inputs: Callable[[int], None] | None = None) -> Table:
    """Load ``path`` (relative to ``base_dir``) and build features and target; see the module rules.

    ``check_inputs(n)`` is called once the header is read, with the fewest feature columns the table
    can have (one-hot encoding only adds), so a caller can refuse a too-wide file before the rows are parsed.
    """
    import pandas as pd  # only the CSV path needs pandas; keeps `import dlexp` light

    shown = path
    text = _read_text(Path(base_dir) / path, shown)
    header = _read_header(text, shown)
    if check_inputs is not None:
        check_inputs(len(features) if features else max(len(header) - 1, 1))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = pd.read_csv(
                io.StringIO(text),
                header=0,
                names=header,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                index_col=False,
                engine="c",
            )
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{shown}: empty file; expected a header line of column names, then data rows"
        ) from None
    except pd.errors.ParserError as exc:
        raise _parser_error(text, shown, len(header), str(exc)) from None
    except (ValueError, MemoryError) as exc:
        raise DataError(f"{shown}: cannot be read as CSV ({_one_line(exc)})") from None

    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas drops the extra fields of a first row longer than the header, with only a warning
        raise _ragged_row_error(text, shown, len(header))
    frame = _drop_trailing_blank_rows(frame)
    if len(frame) == 0:
        raise DataError(f"{shown}: header only, no data rows; expected data rows after the header line")

    feature_columns = _choose_features(header, target, features, shown)
    numeric: dict[str, np.ndarray] = {}
    text_values: dict[str, np.ndarray] = {}
    for column in header:  # checked in file order so the first problem reported is the leftmost
        if column != target and column not in feature_columns:
            continue
        values = frame[column].str.strip()
        _check_missing(values, column, text, shown, len(header))
        parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if _is_numeric(parsed, values, column, text, shown):
            numeric[column] = parsed
        else:
            text_values[column] = values.to_numpy(dtype=object)

    X, feature_names = _encode_features(feature_columns, numeric, text_values, shown)
    y, resolved_task, class_names = _encode_target(target, numeric, text_values, task, shown)
    return Table(
        X=X, y=y, task=resolved_task, feature_names=feature_names, class_names=class_names, target=target
    )


# ---------------------------------------------------------------------------------------------
# Reading the file


def _read_text(resolved: Path, shown: str) -> str:
    raw = read_user_file(resolved, shown, "a CSV file", DataError, MAX_CSV_BYTES,
                         hint=" (a relative path is read from the config file's folder)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{shown}: not UTF-8 text (byte {exc.start}, line {line} of the file, counting the header); "
            "save the file as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError(
            f"{shown}: contains a NUL byte (line {line} of the file); expected a plain-text CSV file"
        )
    if not text.strip():
        raise DataError(f"{shown}: empty file; expected a header line of column names, then data rows")
    return text


def _read_header(text: str, shown: str) -> list[str]:
    """Column names from the first record, stripped; refuses blank and duplicate names."""
    try:
        first = next(csv.reader(io.StringIO(text)), [])
    except csv.Error as exc:
        raise DataError(f"{shown}: line 1 (the header): cannot be read as CSV ({_one_line(exc)})") from None
    names = [name.strip() for name in first]
    if not any(names):
        raise DataError(f"{shown}: line 1 is blank; the first line must be the header of column names")
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]  # pandas' spelling for a blank name
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{shown}: duplicate column name '{name}' (columns {seen[name] + 1} and {i + 1} of the header); "
                "each column needs a unique name"
            )
        seen[name] = i
    return names


def _record(text: str, row: int) -> tuple[int, int]:
    """``(first line of the file, number of fields)`` of data row ``row`` (1-based). Error path only."""
    reader = csv.reader(io.StringIO(text))
    try:
        next(reader)
        for _ in range(row - 1):
            next(reader)
        start = reader.line_num + 1
        fields = next(reader)
    except (StopIteration, csv.Error):
        return row + 1, -1
    return start, len(fields)


def _where(text: str, row: int) -> str:
    line, _ = _record(text, row)
    return f"row {row} (line {line} of the file)"


def _ragged_message(shown: str, row: int, line: int, n_fields: int, n_columns: int) -> str:
    return (
        f"{shown}: row {row} (line {line} of the file) has {n_fields} fields but the header has {n_columns} "
        f"columns; every row needs exactly {n_columns} comma-separated values"
    )


def _parser_error(text: str, shown: str, n_columns: int, message: str) -> DataError:
    # pandas counts records with the header as line 1 ("Expected 3 fields in line 5, saw 4") but
    # data rows from 1 in "EOF inside string starting at row 3".
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match is not None:
        row, saw = int(match.group(2)) - 1, int(match.group(3))
        line, _ = _record(text, row)
        return DataError(_ragged_message(shown, row, line, saw, n_columns))
    match = re.search(r"EOF inside string starting at row (\d+)", message)
    if match is not None:
        row = int(match.group(1))
        return DataError(
            f"{shown}: unclosed double quote starting at {_where(text, row)}; close the quote or remove it"
        )
    return DataError(f"{shown}: cannot be read as CSV ({_one_line(message)})")


def _ragged_row_error(text: str, shown: str, n_columns: int) -> DataError:
    """The first data row whose field count differs from the header's. Error path only."""
    reader = csv.reader(io.StringIO(text))
    next(reader)
    row = 0
    while True:
        start = reader.line_num + 1
        fields = next(reader, None)
        if fields is None:
            break
        row += 1
        if fields and len(fields) != n_columns:
            return DataError(_ragged_message(shown, row, start, len(fields), n_columns))
    return DataError(f"{shown}: a row has more fields than the header's {n_columns} columns")


def _drop_trailing_blank_rows(frame):
    blank = (frame == "").all(axis=1).to_numpy()
    keep = len(blank)
    while keep > 0 and blank[keep - 1]:
        keep -= 1
    return frame.iloc[:keep]


def _list_columns(columns: list[str]) -> str:
    listed = ", ".join(columns[:MAX_LISTED_COLUMNS])
    if len(columns) > MAX_LISTED_COLUMNS:
        listed += f", ... ({len(columns)} in all)"
    return listed


def _choose_features(header: list[str], target: str, features: list[str] | None, shown: str) -> list[str]:
    if target not in header:
        separator = next((sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), None)
        if separator is not None:
            raise DataError(
                f"{shown}: the header is one column {_show(header[0])}; the file seems to use {separator!r} "
                "between values, but only comma-separated files are read"
            )
        raise DataError(
            f"{shown}: target column '{target}' not found{did_you_mean(target, header)} "
            f"(columns: {_list_columns(header)})"
        )
    if features is None:
        chosen = [c for c in header if c != target]
        if not chosen:
            raise DataError(
                f"{shown}: only the target column '{target}'; at least one feature column is needed"
            )
        return chosen
    if not features:
        raise DataError(
            f"{shown}: data.features is an empty list; omit it to use every column but the target"
        )
    seen: set[str] = set()
    for name in features:
        if name not in header:
            raise DataError(
                f"{shown}: feature column '{name}' (in data.features) not found{did_you_mean(name, header)} "
                f"(columns: {_list_columns(header)})"
            )
        if name == target:
            raise DataError(
                f"{shown}: column '{name}' is the target and cannot also be in data.features; remove it there"
            )
        if name in seen:
            raise DataError(f"{shown}: column '{name}' is listed twice in data.features; list each once")
        seen.add(name)
    return list(features)


# ---------------------------------------------------------------------------------------------
# Checking and typing columns


def _check_missing(values, column: str, text: str, shown: str, n_columns: int) -> None:
    missing = values.isin(NA_TOKENS).to_numpy()
    if not missing.any():
        return
    row = int(np.argmax(missing)) + 1
    line, n_fields = _record(text, row)
    if n_fields == 0:
        raise DataError(
            f"{shown}: row {row} (line {line} of the file) is blank, so column '{column}' has no value there; "
            "remove blank lines or fill the row"
        )
    if 0 < n_fields < n_columns:
        raise DataError(
            f"{shown}: row {row} (line {line} of the file) has {n_fields} fields but the header has {n_columns} "
            f"columns, so column '{column}' has no value; every row needs exactly {n_columns} comma-separated values"
        )
    count = int(missing.sum())
    plural = "value" if count == 1 else "values"
    raise DataError(
        f"{shown}: column '{column}': {count} missing {plural} (first at row {row}, line {line} of the file); "
        "every used column needs a value in each row (fill them, drop those rows, or leave the column out "
        "of data.features)"
    )


def _is_numeric(parsed: np.ndarray, values, column: str, text: str, shown: str) -> bool:
    """True for a numeric column; False for text; refuses stray text or infinities among numbers."""
    not_number = np.isnan(parsed)
    n_bad = int(not_number.sum())
    if n_bad * 2 >= len(parsed):
        return False
    if n_bad:
        row = int(np.argmax(not_number)) + 1
        value = values.iloc[row - 1]
        plural = "value" if n_bad == 1 else "values"
        raise DataError(
            f"{shown}: column '{column}': {n_bad} non-numeric {plural} among numbers, first {_show(value)} at "
            f"{_where(text, row)}; a numeric column accepts only numbers"
        )
    infinite = np.isinf(parsed)
    if infinite.any():
        row = int(np.argmax(infinite)) + 1
        value = values.iloc[row - 1]
        raise DataError(
            f"{shown}: column '{column}': infinite value {_show(value)} at {_where(text, row)}; "
            "only finite numbers are accepted"
        )
    return True


def _encode_features(
    columns: list[str], numeric: dict[str, np.ndarray], text_values: dict[str, np.ndarray], shown: str
) -> tuple[np.ndarray, list[str]]:
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for column in columns:
        if column in numeric:
            blocks.append(numeric[column][:, None])
            names.append(column)
            continue
        values = text_values[column]
        categories, codes = np.unique(values.astype(str), return_inverse=True)
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"{shown}: column '{column}': {len(categories)} distinct text values; a text feature may have at "
                f"most {MAX_CATEGORIES} (it is one-hot encoded); leave it out of data.features or encode it as numbers"
            )
        blocks.append((codes[:, None] == np.arange(len(categories))[None, :]).astype(np.float64))
        names.extend(f"{column}={category}" for category in categories)
    X = np.ascontiguousarray(np.hstack(blocks), dtype=np.float64)
    return X, names


def _encode_target(
    target: str, numeric: dict[str, np.ndarray], text_values: dict[str, np.ndarray], task: str, shown: str
) -> tuple[np.ndarray, str, list[str] | None]:
    if target in text_values:
        values = text_values[target].astype(str)
        if task == "regression":
            raise DataError(
                f"{shown}: target column '{target}' is text (e.g. {_show(values[0])} at row 1); regression needs "
                "numbers; use task: classification or auto"
            )
        classes, y = np.unique(values, return_inverse=True)
        class_names = [str(c) for c in classes]
    else:
        values = numeric[target]
        integral = bool(np.all(values == np.round(values)))
        distinct = np.unique(values)
        if task == "regression" or (task == "auto" and not (integral and len(distinct) <= MAX_AUTO_CLASSES)):
            return np.ascontiguousarray(values[:, None], dtype=np.float64), "regression", None
        classes, y = distinct, np.searchsorted(distinct, values)
        class_names = [str(int(c)) if integral else repr(float(c)) for c in classes]
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"{shown}: target column '{target}': {len(classes)} distinct values; classification supports at most "
            f"{MAX_CLASSES} classes; use task: regression for a numeric target"
        )
    if len(classes) < 2:
        raise DataError(
            f"{shown}: target column '{target}' has a single class ({class_names[0]!r}); classification needs "
            "at least 2 classes"
        )
    return np.ascontiguousarray(y, dtype=np.int64), "classification", class_names


def _show(value: object) -> str:
    return show_value(str(value), 40)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
