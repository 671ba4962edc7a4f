"""CsvLog and format_value: how numbers and text are written into a run's CSVs."""

from __future__ import annotations

import csv

import numpy as np

from dlexp.rundir import CsvLog, format_value


def test_format_value_writes_shortest_round_trip_floats_and_blank_nan():
    assert format_value(0.1) == "0.1"
    assert format_value(np.float64(0.1)) == "0.1"  # never "np.float64(0.1)"
    assert format_value(np.float32(0.5)) == "0.5"
    assert format_value(float("nan")) == ""
    assert format_value(None) == ""
    assert format_value(3) == "3"
    assert format_value("relu") == "relu"


def test_csvlog_rows_read_back_exactly(tmp_path):
    path = tmp_path / "log.csv"
    log = CsvLog(path, ["step", "param", "value", "note"])
    rows = [{"step": 1, "param": "W", "value": 1 / 3, "note": None},
            {"step": 2, "param": "b", "value": float("nan"), "note": 'a, "quoted"\nline'},
            {"step": 3, "param": "W", "value": np.float64(2.5e-300), "note": "plain"}]
    log.write(rows)
    assert path.read_text() == "step,param,value,note\n"  # buffered until flushed
    log.close()
    back = list(csv.DictReader(path.open(newline="")))
    assert [r["step"] for r in back] == ["1", "2", "3"]
    assert float(back[0]["value"]) == 1 / 3
    assert back[1]["value"] == "" and back[1]["note"] == 'a, "quoted"\nline'
    assert float(back[2]["value"]) == 2.5e-300
    assert back[0]["note"] == ""
