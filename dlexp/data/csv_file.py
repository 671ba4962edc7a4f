"""A parsed CSV file's columns, each typed and checked on first use, refusing bad data in one line.

Every message names the file as written in the config, then the column, an example row and what
would be accepted. **Row N** is the N-th data row after the header (or after the skipped lines
when there is no header); **line L** is the real line of the file, counting every line.
Reading the file (options, compression, delimiter, header) is :mod:`dlexp.data.csv`.

Rules:

- Cells are read as text and stripped of surrounding spaces; column names too. Blank lines at
  the end of the file are ignored; elsewhere they are rows with every value missing.
- Missing values: an empty cell or a pandas NA token (``NA``, ``N/A``, ``NaN``, ``null``, ...).
  They are refused only in the columns used (features and target).
- A column is numeric when every value parses as a number; numeric-looking (more than half
  parse) with some that do not is refused, naming the first such value; otherwise it is text.
  Infinite values (``inf``, ``1e999``) are refused.

Speed: pandas' C parser types every column at once; a column it reads as numbers is checked with
a few whole-column NumPy operations. Only the columns it could not read as numbers are read again
as text and checked value by value, so a numeric file never pays for the text path.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np

from dlexp.errors import DataError, show_value

# pandas' default NA strings (pandas.io.parsers.STR_NA_VALUES), fixed here so a pandas upgrade
# cannot silently change what counts as missing.
# fmt: off
NA_TOKENS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
# fmt: on


def delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delimiter, repr(delimiter))


@dataclass
class CsvFile:
    """A parsed CSV file: column names, row count, and each column checked on first use.

    :meth:`numbers` gives a numeric column as float64 and refuses anything else; :meth:`texts`
    gives stripped strings; :meth:`column` decides between the two by the rules above.
    """

    shown: str
    names: list[str]
    n_rows: int
    delimiter: str
    has_header: bool
    comment: str | None
    _text: str  # the text parsed (skipped lines removed), for error messages
    _lines: list[int]  # _lines[i]: real line of the file of line i + 1 of _text
    _frame: object  # the pandas DataFrame with inferred dtypes
    _strings: dict[str, np.ndarray] = field(default_factory=dict)
    _checked: dict[str, np.ndarray] = field(default_factory=dict)

    # -- columns ------------------------------------------------------------------------------

    def column(self, name: str) -> np.ndarray:
        """float64 values for a numeric column, stripped strings (object array) for a text column."""
        if name not in self._checked:
            numeric = self._fast_numbers(name)
            if numeric is None:
                values = self.texts(name)
                parsed = _to_numbers(values)
                numeric = parsed if self._is_numeric(parsed, values, name) else values
            self._checked[name] = numeric
        return self._checked[name]

    def numbers(self, name: str, why: str = "") -> np.ndarray:
        """A column that must be numeric (``why`` says so in the message, e.g. 'numeric in training')."""
        values = self.column(name)
        if values.dtype == object:
            bad = int(np.argmax(np.isnan(_to_numbers(values))))
            raise DataError(f"{self.shown}: column '{name}': {show(values[bad])} at {self.where(bad + 1)} is not a "
                            f"number; {why or 'this column must be numeric'}")
        return values

    def texts(self, name: str) -> np.ndarray:
        """Stripped strings of a column (object array), refusing missing values."""
        if name not in self._strings:
            self._load_strings([name])
        return self._strings[name]

    def _fast_numbers(self, name: str) -> np.ndarray | None:
        """A column pandas typed as numbers, checked whole: missing values, infinities. None if not numeric."""
        series = self._frame[name]
        if series.dtype.kind not in "iuf":
            return None
        values = series.to_numpy(dtype=np.float64)
        if series.dtype.kind == "f":
            missing = np.isnan(values)
            if missing.any():
                self._missing_error(name, missing)
            self._refuse_infinite(name, values, lambda row: self._cell(row, name))
        return values

    def _load_strings(self, wanted: list[str]) -> None:
        import pandas as pd

        columns = [self.names.index(name) for name in wanted]
        frame = pd.read_csv(io.StringIO(self._text), header=None, names=self.names, usecols=columns, dtype=str,
                            sep=self.delimiter, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                            index_col=False, engine="c", comment=self.comment)
        for name in wanted:
            values = frame[name].str.strip().fillna("")
            missing = values.isin(NA_TOKENS).to_numpy()
            if missing.any():
                self._missing_error(name, missing)
            self._strings[name] = values.to_numpy(dtype=object)

    def _is_numeric(self, parsed: np.ndarray, values: np.ndarray, name: str) -> bool:
        """True for a numeric column; False for text; refuses stray text or infinities among numbers."""
        not_number = np.isnan(parsed)
        n_bad = int(not_number.sum())
        if n_bad * 2 >= len(parsed):
            return False
        if n_bad:
            row = int(np.argmax(not_number)) + 1
            plural = "value" if n_bad == 1 else "values"
            raise DataError(
                f"{self.shown}: column '{name}': {n_bad} non-numeric {plural} among numbers, first "
                f"{show(values[row - 1])} at {self.where(row)}; a numeric column accepts only numbers"
            )
        self._refuse_infinite(name, parsed, lambda row: values[row - 1])
        return True

    def _refuse_infinite(self, name: str, parsed: np.ndarray, cell) -> None:
        """Refuse the first infinity in a numeric column; ``cell(row)`` is the text of data row ``row``."""
        infinite = np.isinf(parsed)
        if infinite.any():
            row = int(np.argmax(infinite)) + 1
            raise DataError(f"{self.shown}: column '{name}': infinite value {show(cell(row))} at "
                            f"{self.where(row)}; only finite numbers are accepted")

    # -- locating rows (error paths only) -----------------------------------------------------

    def _record(self, row: int) -> tuple[int, list[str] | None]:
        """``(real first line, fields)`` of data row ``row`` (1-based); fields None if unreadable."""
        reader = csv.reader(io.StringIO(self._text), delimiter=self.delimiter)
        try:
            for _ in range(row - 1):
                next(reader)
            start = reader.line_num + 1
            fields = next(reader)
        except (StopIteration, csv.Error):
            return self.line(row), None
        return self.line(start), fields

    def line(self, text_line: int) -> int:
        """Real line of the file of line ``text_line`` (1-based) of the parsed text."""
        if 1 <= text_line <= len(self._lines):
            return self._lines[text_line - 1]
        return (self._lines[-1] if self._lines else 0) + text_line - len(self._lines)

    def where(self, row: int) -> str:
        line, _ = self._record(row)
        return f"row {row} (line {line} of the file)"

    def _cell(self, row: int, name: str) -> str:
        _, fields = self._record(row)
        index = self.names.index(name)
        return fields[index].strip() if fields is not None and index < len(fields) else "?"

    def _missing_error(self, name: str, missing: np.ndarray) -> None:
        row = int(np.argmax(missing)) + 1
        line, fields = self._record(row)
        n_fields = -1 if fields is None else len(fields)
        n_columns = len(self.names)
        if n_fields == 0:
            raise DataError(
                f"{self.shown}: row {row} (line {line} of the file) is blank, so column '{name}' has no value there; "
                "remove blank lines or fill the row"
            )
        if 0 < n_fields < n_columns:
            raise DataError(
                f"{self.shown}: row {row} (line {line} of the file) has {n_fields} fields but the "
                f"{self._width_source()} has {n_columns} columns, so column '{name}' has no value; "
                f"{self.row_rule()}"
            )
        count = int(missing.sum())
        plural = "value" if count == 1 else "values"
        raise DataError(
            f"{self.shown}: column '{name}': {count} missing {plural} (first at row {row}, line {line} of the file); "
            "every used column needs a value in each row (fill them, drop those rows, or leave the column out "
            "of data.features)"
        )

    def _width_source(self) -> str:
        return "header" if self.has_header else "first row"

    def row_rule(self) -> str:
        return f"every row needs exactly {len(self.names)} values separated by {delimiter_name(self.delimiter)}s"


def _to_numbers(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64,
                                                                                     na_value=np.nan)


def show(value: object) -> str:
    return show_value(str(value), 40)
