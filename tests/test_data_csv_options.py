"""CSV files as people have them: header-less, with an index column, compressed, other delimiters
and encodings, columns by position; and the vectorized reader agreeing with Python's float()."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_data_csv import load, refused, write

from dlexp.config import DataConfig
from dlexp.errors import DataError


def wine_shaped(n: int = 30, seed: int = 0) -> tuple[str, np.ndarray, np.ndarray]:
    """A file shaped like scikit-learn's wine_data.csv: a counts line, then header-less rows."""
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(10, 3, size=(n, 13)), 3)
    y = np.arange(n) % 3
    rows = [",".join(map(repr, row.tolist())) + f",{label}" for row, label in zip(X, y)]
    return f"{n},13,class_0,class_1,class_2\n" + "\n".join(rows) + "\n", X, y


def test_wine_shaped_file_loads_with_documented_options(tmp_path):
    text, X, y = wine_shaped()
    ds = load(tmp_path, write(tmp_path, "wine.csv", text), -1, header="none", skip_rows=1, val_fraction=0.0,
              standardize=False)
    assert ds.task == "classification" and ds.class_names == ["0", "1", "2"]
    assert ds.feature_names == [str(i) for i in range(13)] and ds.target_names == ["13"]
    order = np.lexsort(ds.X_train.T[::-1])
    np.testing.assert_array_equal(ds.X_train[order], X[np.lexsort(X.T[::-1])])
    assert np.bincount(ds.y_train).tolist() == np.bincount(y).tolist()


def test_wine_as_scikit_learn_ships_it(tmp_path):
    datasets = pytest.importorskip("sklearn.datasets")
    path = Path(datasets.__file__).parent / "data" / "wine_data.csv"
    ds = load(path.parent, path.name, -1, header="none", skip_rows=1, val_fraction=0.0, standardize=False)
    reference = datasets.load_wine()
    assert ds.X_train.shape == (178, 13) and np.bincount(ds.y_train).tolist() == [59, 71, 48]
    np.testing.assert_array_equal(np.sort(ds.X_train[:, 0]), np.sort(reference.data[:, 0]))


def test_names_for_a_header_less_file_and_their_count(tmp_path):
    path = write(tmp_path, "f.csv", "1,2,a\n3,4,b\n5,6,a\n7,8,b\n")
    ds = load(tmp_path, path, "label", header="none", names=["x", "z", "label"], val_fraction=0.0)
    assert ds.feature_names == ["x", "z"] and ds.class_names == ["a", "b"]
    message = refused(tmp_path, "1,2,a\n3,4,b\n", target="label", header="none", names=["x", "label"])
    assert "data.names gives 2 names but the first row (line 1 of the file) has 3 fields" in message


def test_to_csv_index_column_is_dropped_with_a_notice(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "y": np.arange(40) % 2})
    for name, written in (("plain", frame), ("shuffled", frame.sample(frac=1, random_state=1))):
        path = tmp_path / f"{name}.csv"
        written.to_csv(path)  # the default: the index as an unnamed first column
        assert path.read_text().startswith(",a,b,y\n")
        ds = load(tmp_path, path.name, "y", val_fraction=0.0)
        assert ds.feature_names == ["a", "b"]
        assert len(ds.notes) == 1 and "column 'Unnamed: 0' holds the row numbers" in ds.notes[0]
    kept = load(tmp_path, "plain.csv", "y", val_fraction=0.0, index_col=False)
    assert kept.feature_names == ["Unnamed: 0", "a", "b"] and kept.notes == []
    explicit = load(tmp_path, "plain.csv", "y", val_fraction=0.0, index_col=0)
    assert explicit.feature_names == ["a", "b"] and explicit.notes == []


def test_unnamed_column_that_is_not_an_index_is_a_feature(tmp_path):
    path = write(tmp_path, "f.csv", ",a,y\n5,1,0\n3,2,1\n9,3,0\n1,4,1\n")
    assert load(tmp_path, path, "y", val_fraction=0.0).feature_names == ["Unnamed: 0", "a"]


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz", ".zip"])
def test_compressed_files_read_like_the_plain_one(tmp_path, suffix):
    text = "a,b,y\n" + "".join(f"{i * 0.5},{i % 3},{i % 2}\n" for i in range(20))
    raw = text.encode()
    if suffix == ".zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("inner.csv", raw)
        packed = buffer.getvalue()
    else:
        packed = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}[suffix](raw)
    plain = load(tmp_path, write(tmp_path, "f.csv", raw), "y")
    packed_ds = load(tmp_path, write(tmp_path, f"f.csv{suffix}", packed), "y")
    np.testing.assert_array_equal(plain.X_train, packed_ds.X_train)
    np.testing.assert_array_equal(plain.y_train, packed_ds.y_train)


def test_broken_compressed_file_is_refused(tmp_path):
    path = write(tmp_path, "bad.csv.gz", b"not gzip at all")
    with pytest.raises(DataError, match=r"^data/bad.csv.gz: not a valid gz file"):
        load(tmp_path, path, "y")


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_detected(tmp_path, delimiter):
    text = "\n".join(delimiter.join(row) for row in [["a", "b", "y"], ["1,5", "2", "0"], ["3", "4", "1"],
                                                      ["5", "6", "0"], ["7", "8", "1"]]) + "\n"
    text = text.replace("1,5", '"1,5"') if delimiter != "," else text
    ds = load(tmp_path, write(tmp_path, "f.csv", text), "y", val_fraction=0.0, standardize=False, features=["b"])
    assert ds.delimiter == delimiter and ds.feature_names == ["b"]


def test_latin1_file_with_encoding(tmp_path):
    raw = "ville,x,y\nMontréal,1,0\nQuébec,2,1\nLyon,3,0\nGenève,4,1\n".encode("latin-1")
    assert "not UTF-8 text" in refused(tmp_path, raw)
    ds = load(tmp_path, write(tmp_path, "f.csv", raw), "y", encoding="latin-1", val_fraction=0.0)
    assert ds.feature_names[:3] == ["ville=Genève", "ville=Lyon", "ville=Montréal"]


def test_comment_and_skip_rows_keep_real_line_numbers(tmp_path):
    text = "exported 2024\n# a comment\na,y\n1,0\n# another\nx,1\n3,0\n4,1\n5,0\n"
    message = refused(tmp_path, text, skip_rows=1, comment="#")
    assert "1 non-numeric value among numbers, first 'x' at row 2 (line 6 of the file)" in message
    ds = load(tmp_path, write(tmp_path, "ok.csv", text.replace("x,1", "2,1")), "y", skip_rows=1, comment="#",
              val_fraction=0.0)
    assert len(ds.X_train) == 5
    inline = "a,c,y\n1,red # a comment ends the line,0\n2,blue,1 # note\n3,red,0\n"
    message = refused(tmp_path, inline, comment="#")
    assert "column 'y': 1 missing value (first at row 1, line 2 of the file)" in message
    ds = load(tmp_path, write(tmp_path, "inline.csv", inline.replace("red # a comment ends the line,0", "red,0")),
              "y", comment="#", val_fraction=0.0)
    assert ds.feature_names == ["a", "c=blue", "c=red"]


def test_header_row_number(tmp_path):
    ds = load(tmp_path, write(tmp_path, "f.csv", "title\nunits\na,y\n1,0\n2,1\n"), "y", header=2, val_fraction=0.0)
    assert ds.feature_names == ["a"] and len(ds.X_train) == 2


def test_features_and_exclude_by_name_and_position(tmp_path):
    path = write(tmp_path, "f.csv", "a,b,c,y\n1,2,3,0\n4,5,6,1\n7,8,9,0\n")
    assert load(tmp_path, path, "y", exclude=["b"], val_fraction=0.0).feature_names == ["a", "c"]
    assert load(tmp_path, path, 3, features=[2, "a"], val_fraction=0.0).feature_names == ["c", "a"]
    assert load(tmp_path, path, -1, exclude=[0, -2], val_fraction=0.0).feature_names == ["b"]
    message = refused(tmp_path, "a,b,y\n1,2,0\n", target=5)
    assert "data.target: position 5 is out of range; the file has 3 columns (0..2, or -3..-1 from the end)" in message
    assert "column 'zz' (in data.exclude) not found" in refused(tmp_path, "a,b,y\n1,2,0\n", exclude=["zz"])
    with pytest.raises(ValueError, match="not both"):
        DataConfig(source="csv", path="f.csv", target="y", features=["a"], exclude=["b"])


def test_csv_options_refused_with_synthetic_data_and_bad_values():
    with pytest.raises(ValueError, match="delimiter: only read when source is 'csv'"):
        DataConfig(delimiter=";")
    with pytest.raises(ValueError, match="unknown encoding 'utf-9'"):
        DataConfig(source="csv", path="f.csv", target="y", encoding="utf-9")
    with pytest.raises(ValueError, match="one character"):
        DataConfig(source="csv", path="f.csv", target="y", delimiter=";;")


def test_vectorized_reader_matches_python_float_and_the_text_path(tmp_path):
    rng = np.random.default_rng(5)
    values = [repr(float(v)) for v in rng.normal(scale=1e3, size=400)]
    values += ["1e-310", "2.2250738585072011e-308", "123456789012345678", " 7 ", "+3", "-0.0", "1E5", ".5"]
    n = len(values) // 2 * 2
    text = "a,b,y\n" + "".join(f"{values[i]},{values[i + 1]},{i // 2 % 2}\n" for i in range(0, n, 2))
    ds = load(tmp_path, write(tmp_path, "f.csv", text), "y", val_fraction=0.0, standardize=False)
    expected = {(float(values[i]), float(values[i + 1])) for i in range(0, n, 2)}
    assert {tuple(row) for row in ds.X_train.tolist()} == expected
    from dlexp.data.csv import CsvFormat, read_csv

    table = read_csv(tmp_path / "data" / "f.csv", "f.csv", CsvFormat())
    for name in ("a", "b"):
        fast = table.column(name)
        slow = np.array([float(v) for v in table.texts(name)])
        np.testing.assert_array_equal(fast, slow)


def test_a_process_reads_each_csv_once_and_draws_each_synthetic_set_once(tmp_path, monkeypatch):
    from dlexp.data import dataset, load_data

    calls = []
    real_read, real_draw = dataset.read_csv_table, dataset.make_synthetic
    monkeypatch.setattr(dataset, "read_csv_table", lambda *a: calls.append("read") or real_read(*a))
    monkeypatch.setattr(dataset, "make_synthetic", lambda *a: calls.append("draw") or real_draw(*a))
    monkeypatch.setattr(dataset, "_cache", {})
    path = write(tmp_path, "f.csv", "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    first, second = load(tmp_path, path, "y"), load(tmp_path, path, "y", val_fraction=0.3)
    assert calls == ["read"] and len(second.X_val) == 6
    np.testing.assert_array_equal(first.X_train, load(tmp_path, path, "y").X_train)
    assert first.X_train.flags.writeable
    (tmp_path / path).write_text("a,y\n" + "".join(f"{i},{i % 3 % 2}\n" for i in range(20)))
    load(tmp_path, path, "y")
    assert calls == ["read", "read"]  # the file changed: read again

    cfg = DataConfig(kind="spirals", n_samples=60, n_classes=3)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        runs.append((load_data(cfg, tmp_path, rng), rng.bit_generator.state))
    assert calls.count("draw") == 1
    monkeypatch.setattr(dataset, "_cache", {})
    rng = np.random.default_rng(7)
    fresh = load_data(cfg, tmp_path, rng)
    for ds, state in runs:
        np.testing.assert_array_equal(ds.X_train, fresh.X_train)
        np.testing.assert_array_equal(ds.y_val, fresh.y_val)
        assert state == rng.bit_generator.state
