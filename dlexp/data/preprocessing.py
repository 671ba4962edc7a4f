"""Everything between raw rows and the model, saved beside the weights so a run can be used on new data.

A run directory holds it as two files, versioned, never pickled:

    preprocessing.json   format, version, task, the input columns in order (numeric, or categorical with
                         the one-hot categories), feature names, target, class names (and numeric class
                         values), output activation, number of outputs, the CSV reading options
    preprocessing.npz    feature_mean, feature_std (when features were standardized),
                         target_mean, target_std (when a regression target was)

:meth:`Preprocessing.features` turns a parsed CSV file into the standardized matrix the model
takes; :meth:`Preprocessing.target_units` maps model outputs back to the target's units.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.data.csv import CsvFormat, read_csv
from dlexp.data.csv_file import CsvFile
from dlexp.data.table import ColumnEncoding
from dlexp.errors import DlexpError

JSON_NAME = "preprocessing.json"
NPZ_NAME = "preprocessing.npz"
FORMAT = "dlexp.preprocessing"
VERSION = 1
_ARRAYS = ("feature_mean", "feature_std", "target_mean", "target_std")


@dataclass
class Preprocessing:
    encoding: ColumnEncoding
    reading: dict[str, Any] | None  # CsvFormat fields of the training file; None for synthetic data
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    target_mean: np.ndarray | None = None
    target_std: np.ndarray | None = None
    output_activation: str = "identity"
    n_outputs: int = 1

    @property
    def task(self) -> str:
        return self.encoding.task

    @property
    def feature_names(self) -> list[str]:
        return self.encoding.feature_names

    @property
    def class_names(self) -> list[str] | None:
        return self.encoding.class_names

    def csv_format(self, detect_delimiter: bool = True) -> CsvFormat:
        """How to read new files: the training file's options, the delimiter detected again by default."""
        reading = dict(self.reading or {})
        if reading.get("names") is not None:
            reading["names"] = tuple(reading["names"])
        if detect_delimiter:
            reading["delimiter"] = None
        return CsvFormat(**reading)

    def read(self, path: Path, shown: str) -> CsvFile:
        return read_csv(path, shown, self.csv_format(), hint="")

    def features(self, table: CsvFile) -> np.ndarray:
        """The standardized float64 feature matrix of ``table``'s rows."""
        X = self.encoding.encode_features(table)
        if self.feature_mean is not None:
            X = np.ascontiguousarray((X - self.feature_mean) / self.feature_std, dtype=np.float64)
        return X

    def target_units(self, values: np.ndarray) -> np.ndarray:
        """Regression outputs or targets in the target's own units (standardization undone)."""
        values = np.asarray(values, dtype=np.float64)
        if self.target_mean is None:
            return values
        return values * self.target_std + self.target_mean

    # -- persistence ----------------------------------------------------------------------------

    def save(self, run_dir: Path) -> None:
        from dlexp import rundir as rd
        from dlexp.nn.model import save_npz_atomic

        arrays = {name: getattr(self, name) for name in _ARRAYS if getattr(self, name) is not None}
        save_npz_atomic(Path(run_dir) / NPZ_NAME, arrays)
        rd.write_json_atomic(Path(run_dir) / JSON_NAME, {
            "format": FORMAT, "version": VERSION, "task": self.task, **self.encoding.to_json(),
            "feature_names": self.feature_names, "class_names": self.class_names,
            "output_activation": self.output_activation, "n_outputs": self.n_outputs,
            "standardized": {"features": self.feature_mean is not None, "target": self.target_mean is not None},
            "reading": self.reading,
        })

    @classmethod
    def load(cls, run_dir: Path) -> Preprocessing:
        run_dir = Path(run_dir)
        json_path, npz_path = run_dir / JSON_NAME, run_dir / NPZ_NAME
        for path in (json_path, npz_path):
            if not path.is_file():
                raise DlexpError(f"{run_dir}: no {path.name}; only runs trained by this version of dlexp or later "
                                 "keep their preprocessing (train the run again)")
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError(f"format {data.get('format')!r} version {data.get('version')!r}, expected "
                                 f"{FORMAT!r} version {VERSION}")
            with np.load(npz_path, allow_pickle=False) as npz:
                arrays = {name: np.array(npz[name]) for name in _ARRAYS if name in npz.files}
            return cls(encoding=ColumnEncoding.from_json(data), reading=data.get("reading"),
                       output_activation=data["output_activation"], n_outputs=int(data["n_outputs"]), **arrays)
        except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise DlexpError(f"{run_dir}: unreadable preprocessing files ({' '.join(str(exc).split())[:200]})") from None
