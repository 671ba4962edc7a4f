"""From a parsed CSV file to a feature matrix and a target, and back again for new rows.

Choosing columns: ``target``, ``features``, ``exclude`` and ``index_col`` name a column or give
its position (0 first, -1 last). An index column (named ``Unnamed: N``, as pandas names a blank
header, and holding the row numbers: distinct integers, 0..n-1 in any order or increasing) is
left out with a notice unless ``features`` lists it or ``index_col: false`` is set.

Encoding: text feature columns with at most ``MAX_CATEGORIES`` distinct values are one-hot encoded
as ``column=value`` columns in sorted value order; more distinct values are refused. Task
``auto``: classification if the target is text, or integer-valued with at most
``MAX_AUTO_CLASSES`` distinct values; otherwise regression. Class indices follow the sorted
distinct values (text sorted as strings, numbers numerically).

:class:`ColumnEncoding` is what was learned from the training file (which columns, their kind,
the categories, the classes); it encodes any other file with the same columns the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.data.csv import CsvFormat, list_columns, read_csv
from dlexp.data.csv_file import CsvFile, show
from dlexp.errors import DataError
from dlexp.registry import did_you_mean

MAX_CATEGORIES = 50  # distinct values a text feature may have to be one-hot encoded
MAX_AUTO_CLASSES = 20  # an integer target with more distinct values is regression under task: auto
MAX_CLASSES = 1000  # same limit as the config's n_classes
MAX_LISTED_VALUES = 10
_UNNAMED = re.compile(r"Unnamed: \d+")


@dataclass
class ColumnEncoding:
    """Input columns in order, each ``{"name", "kind": numeric|categorical[, "categories"]}``; the target
    and, for classification, its classes ``{"kind": text|numeric, "names", "values"}``."""

    columns: list[dict[str, Any]]
    target: str
    task: str
    classes: dict[str, Any] | None = None

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for column in self.columns:
            if column["kind"] == "numeric":
                names.append(column["name"])
            else:
                names.extend(f"{column['name']}={category}" for category in column["categories"])
        return names

    @property
    def class_names(self) -> list[str] | None:
        return None if self.classes is None else list(self.classes["names"])

    def encode_features(self, table: CsvFile) -> np.ndarray:
        """The raw (unstandardized) feature matrix of ``table``, refusing what training did not see."""
        missing = [c["name"] for c in self.columns if c["name"] not in table.names]
        if missing:
            raise DataError(f"{table.shown}: feature column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(repr(m) for m in missing[:5])} not found; the model was trained on "
                            f"{list_columns([c['name'] for c in self.columns])} (the file has {list_columns(table.names)})")
        blocks: dict[str, np.ndarray] = {}
        for column in sorted(self.columns, key=lambda c: table.names.index(c["name"])):  # leftmost error first
            name = column["name"]
            if column["kind"] == "numeric":
                blocks[name] = table.numbers(name, "the column was numeric when the model was trained")[:, None]
            else:
                codes = _codes(table, name, column["categories"], "category")
                blocks[name] = (codes[:, None] == np.arange(len(column["categories"]))[None, :]).astype(np.float64)
        return np.ascontiguousarray(np.hstack([blocks[c["name"]] for c in self.columns]), dtype=np.float64)

    def encode_target(self, table: CsvFile) -> np.ndarray:
        """Class indices (int64 ``(n,)``) or values (float64 ``(n, 1)``) of the target column of ``table``."""
        if self.target not in table.names:
            raise DataError(f"{table.shown}: target column '{self.target}' not found{did_you_mean(self.target, table.names)}; "
                            f"evaluating needs the true values (columns: {list_columns(table.names)})")
        if self.task == "regression":
            return np.ascontiguousarray(table.numbers(self.target, "the target was numeric when the model was "
                                                      "trained")[:, None])
        if self.classes["kind"] == "text":
            return _codes(table, self.target, self.classes["names"], "class")
        values = table.numbers(self.target, "the target classes were numbers when the model was trained")
        known = np.asarray(self.classes["values"], dtype=np.float64)
        codes = np.minimum(np.searchsorted(known, values), len(known) - 1)
        unseen = known[codes] != values
        if unseen.any():
            row = int(np.argmax(unseen)) + 1
            raise DataError(f"{table.shown}: column '{self.target}': class {values[row - 1]!r} at {table.where(row)} "
                            f"was not seen in training (classes: {', '.join(self.classes['names'][:MAX_LISTED_VALUES])})")
        return codes.astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "target": self.target, "task": self.task, "classes": self.classes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnEncoding:
        return cls(columns=list(data["columns"]), target=data["target"], task=data["task"], classes=data["classes"])


@dataclass
class Table:
    """A CSV file turned into arrays: X float64 ``(n, d)``; y int64 ``(n,)`` or float64 ``(n, 1)``."""

    X: np.ndarray
    y: np.ndarray
    encoding: ColumnEncoding
    delimiter: str
    notes: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.encoding.task


def csv_format(cfg) -> CsvFormat:
    """The reading options of a ``DataConfig``."""
    return CsvFormat(header=None if cfg.header == "none" else cfg.header,
                     names=tuple(cfg.names) if cfg.names is not None else None, skip_rows=cfg.skip_rows,
                     delimiter=cfg.delimiter, comment=cfg.comment, encoding=cfg.encoding)


def read_csv_table(cfg, base_dir: Path, check_inputs: Callable[[int], None] | None = None) -> Table:
    """Load ``cfg.path`` (relative to ``base_dir``) as ``cfg`` (a ``DataConfig``) says; see the module rules.

    ``check_inputs(n)`` is called with the number of feature columns once they are chosen, before any is
    checked or one-hot encoded (encoding only adds inputs), so a caller can refuse a too-wide file early.
    """
    shown = cfg.path
    table = read_csv(Path(base_dir) / cfg.path, shown, csv_format(cfg))
    if table.n_rows == 0:
        raise DataError(f"{shown}: header only, no data rows; expected data rows after the header line")
    target = resolve_column(table, cfg.target, "target column", "data.target")
    notes: list[str] = []
    feature_columns = choose_features(table, target, cfg, notes)
    if check_inputs is not None:
        check_inputs(len(feature_columns))
    kinds: dict[str, np.ndarray] = {}
    for name in table.names:  # checked in file order so the first problem reported is the leftmost
        if name == target or name in feature_columns:
            kinds[name] = table.column(name)
    columns, blocks = [], []
    for name in feature_columns:
        values = kinds[name]
        if values.dtype != object:
            columns.append({"name": name, "kind": "numeric"})
            blocks.append(values[:, None])
            continue
        categories, codes = np.unique(values.astype(str), return_inverse=True)
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"{shown}: column '{name}': {len(categories)} distinct text values; a text feature may have at "
                f"most {MAX_CATEGORIES} (it is one-hot encoded); leave it out of data.features or encode it as numbers"
            )
        columns.append({"name": name, "kind": "categorical", "categories": [str(c) for c in categories]})
        blocks.append((codes[:, None] == np.arange(len(categories))[None, :]).astype(np.float64))
    X = np.ascontiguousarray(np.hstack(blocks), dtype=np.float64)
    y, task, classes = _fit_target(target, kinds[target], cfg.task, shown)
    encoding = ColumnEncoding(columns=columns, target=target, task=task, classes=classes)
    return Table(X=X, y=y, encoding=encoding, delimiter=table.delimiter, notes=notes)


def resolve_column(table: CsvFile, ref: str | int, what: str, field_name: str) -> str:
    """The name of the column ``ref`` names or points at (0 first, -1 last)."""
    names = table.names
    if isinstance(ref, int):
        if not -len(names) <= ref < len(names):
            raise DataError(f"{table.shown}: {field_name}: position {ref} is out of range; the file has "
                            f"{len(names)} columns (0..{len(names) - 1}, or -{len(names)}..-1 from the end)")
        return names[ref]
    if ref in names:
        return ref
    if len(names) == 1:
        separator = next((sep for sep in (";", "\t", "|", ",") if sep in names[0] and sep != table.delimiter), None)
        if separator is not None:
            raise DataError(f"{table.shown}: the header is one column {show(names[0])}; the file seems to use "
                            f"{separator!r} between values; set data.delimiter: {separator!r} (or leave it out "
                            "to detect it)")
    where = "" if field_name == "data.target" else f" (in {field_name})"
    raise DataError(f"{table.shown}: {what} '{ref}'{where} not found{did_you_mean(str(ref), names)} "
                    f"(columns: {list_columns(names)})")


def choose_features(table: CsvFile, target: str, cfg, notes: list[str]) -> list[str]:
    shown = table.shown
    if cfg.features is not None:
        chosen = [resolve_column(table, ref, "feature column", "data.features") for ref in cfg.features]
        for name in chosen:
            if name == target:
                raise DataError(f"{shown}: column '{name}' is the target and cannot also be in data.features; "
                                "remove it there")
        repeated = next((name for i, name in enumerate(chosen) if name in chosen[:i]), None)
        if repeated is not None:
            raise DataError(f"{shown}: column '{repeated}' is listed twice in data.features; list each once")
        return chosen
    left_out = {resolve_column(table, ref, "column", "data.exclude") for ref in (cfg.exclude or [])}
    if cfg.index_col is not None and cfg.index_col is not False:
        index = resolve_column(table, cfg.index_col, "index column", "data.index_col")
        if index == target:
            raise DataError(f"{shown}: data.index_col: '{index}' is the target column; the index is left out of "
                            "the features, the target cannot be")
        left_out.add(index)
    elif cfg.index_col is None:
        for name in table.names:
            if name != target and name not in left_out and _UNNAMED.fullmatch(name) and _is_row_index(table, name):
                left_out.add(name)
                notes.append(f"{shown}: column '{name}' holds the row numbers (an index, as DataFrame.to_csv writes "
                             "it) and is not used as a feature; set data.index_col: false to use it")
    chosen = [name for name in table.names if name != target and name not in left_out]
    if not chosen:
        raise DataError(f"{shown}: no feature columns left besides the target '{target}'; at least one is needed")
    return chosen


def _is_row_index(table: CsvFile, name: str) -> bool:
    try:
        values = table.column(name)
    except DataError:
        return False
    if values.dtype == object or np.any(values != np.round(values)) or np.any(values < 0):
        return False
    if np.all(np.diff(values) > 0):
        return True
    return bool(np.array_equal(np.sort(values), np.arange(len(values))))


def _fit_target(target: str, values: np.ndarray, task: str, shown: str) -> tuple[np.ndarray, str, dict | None]:
    if values.dtype == object:
        values = values.astype(str)
        if task == "regression":
            raise DataError(
                f"{shown}: target column '{target}' is text (e.g. {show(values[0])} at row 1); regression needs "
                "numbers; use task: classification or auto"
            )
        classes, y = np.unique(values, return_inverse=True)
        info = {"kind": "text", "names": [str(c) for c in classes]}
    else:
        integral = bool(np.all(values == np.round(values)))
        distinct = np.unique(values)
        if task == "regression" or (task == "auto" and not (integral and len(distinct) <= MAX_AUTO_CLASSES)):
            return np.ascontiguousarray(values[:, None], dtype=np.float64), "regression", None
        classes, y = distinct, np.searchsorted(distinct, values)
        info = {"kind": "numeric", "names": [str(int(c)) if integral else repr(float(c)) for c in classes],
                "values": [float(c) for c in classes]}
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"{shown}: target column '{target}': {len(classes)} distinct values; classification supports at most "
            f"{MAX_CLASSES} classes; use task: regression for a numeric target"
        )
    if len(classes) < 2:
        raise DataError(
            f"{shown}: target column '{target}' has a single class ({info['names'][0]!r}); classification needs "
            "at least 2 classes"
        )
    return np.ascontiguousarray(y, dtype=np.int64), "classification", info


def _codes(table: CsvFile, name: str, known: list[str], what: str) -> np.ndarray:
    values = table.texts(name).astype(str)
    categories = np.asarray(known, dtype=str)
    codes = np.minimum(np.searchsorted(categories, values), len(categories) - 1)
    unseen = categories[codes] != values
    if unseen.any():
        row = int(np.argmax(unseen)) + 1
        listed = ", ".join(repr(c) for c in known[:MAX_LISTED_VALUES]) + (", ..." if len(known) > MAX_LISTED_VALUES else "")
        raise DataError(f"{table.shown}: column '{name}': {what} {show(values[row - 1])} at {table.where(row)} was not "
                        f"seen in training (known: {listed})")
    return codes.astype(np.int64)
