"""CSV loading: the shipped datasets, encoding rules, and every refusal as a one-line DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlexp.config import DataConfig
from dlexp.data import load_data
from dlexp.errors import DataError

REPO = Path(__file__).resolve().parent.parent


def load(base: Path, path: str, target: str, **kw):
    cfg = DataConfig(source="csv", path=path, target=target, **kw)
    return load_data(cfg, base, np.random.default_rng(0))


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    raw = content.encode() if isinstance(content, str) else content
    (folder / name).write_bytes(raw)
    return f"data/{name}"


def refused(tmp_path: Path, content: str | bytes, target: str = "y", **kw) -> str:
    path = write(tmp_path, "bad.csv", content)
    with pytest.raises(DataError) as info:
        load(tmp_path, path, target, **kw)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("data/bad.csv: ")  # the path as written in the config, not resolved
    assert str(tmp_path) not in message
    return message


# ---------------------------------------------------------------------------------------------
# Shipped datasets


def test_iris_loads_with_string_classes():
    ds = load(REPO, "data/iris.csv", "species", val_fraction=0.2, test_fraction=0.2)
    assert ds.task == "classification" and ds.n_classes == 3
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert ds.target_names == ["species"]
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (90, 30, 30)
    for y, per_class in ((ds.y_train, 30), (ds.y_val, 10), (ds.y_test, 10)):
        assert np.bincount(y).tolist() == [per_class] * 3
    assert ds.description == "data/iris.csv (150 rows, 3 classes)"


def test_breast_cancer_loads_with_class_counts():
    ds = load(REPO, "data/breast_cancer.csv", "diagnosis", val_fraction=0.0)
    assert ds.X_train.shape == (569, 30) and ds.X_train.dtype == np.float64 and ds.X_train.flags.c_contiguous
    assert ds.class_names == ["benign", "malignant"]
    assert np.bincount(ds.y_train).tolist() == [357, 212]
    assert ds.feature_names[0] == "mean_radius" and ds.feature_names[-1] == "worst_fractal_dimension"
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-10)


def test_diabetes_loads_as_regression_with_raw_targets():
    ds = load(REPO, "data/diabetes.csv", "progression", val_fraction=0.0, standardize=False,
              standardize_target=False)
    assert ds.task == "regression" and ds.n_classes is None
    assert ds.X_train.shape == (442, 10) and ds.y_train.shape == (442, 1) and ds.y_train.dtype == np.float64
    assert ds.y_train.min() == 25.0 and ds.y_train.max() == 346.0
    assert ds.target_mean is None


def test_digits_loads_with_class_counts_and_matches_scikit_learn():
    ds = load(REPO, "data/digits.csv", "digit", val_fraction=0.0, standardize=False)
    assert ds.X_train.shape == (1797, 64) and ds.class_names == [str(d) for d in range(10)]
    assert np.bincount(ds.y_train).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert ds.feature_names[0] == "pixel_0_0" and ds.feature_names[-1] == "pixel_7_7"
    assert ds.X_train.min() == 0 and ds.X_train.max() == 16
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    expected = np.hstack([digits.data, digits.target[:, None]])
    shipped = np.loadtxt(REPO / "data" / "digits.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(shipped, expected)


def test_regression_target_standardized_on_training_rows():
    raw = load(REPO, "data/diabetes.csv", "progression", test_fraction=0.2, standardize_target=False)
    ds = load(REPO, "data/diabetes.csv", "progression", test_fraction=0.2)
    mean, std = raw.y_train.mean(axis=0), raw.y_train.std(axis=0)
    np.testing.assert_array_equal(ds.target_mean, mean)
    np.testing.assert_array_equal(ds.target_std, std)
    for standardized, original in ((ds.y_train, raw.y_train), (ds.y_val, raw.y_val), (ds.y_test, raw.y_test)):
        np.testing.assert_array_equal(standardized, (original - mean) / std)
    np.testing.assert_allclose(ds.y_train.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.y_train.std(), 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Encoding rules


def test_categorical_feature_one_hot_sorted(tmp_path):
    path = write(tmp_path, "cat.csv", "size,color,y\n1,red,0\n2,blue,1\n3,red,0\n4,green,1\n")
    ds = load(tmp_path, path, "y", val_fraction=0.0, standardize=False)
    assert ds.feature_names == ["size", "color=blue", "color=green", "color=red"]
    order = np.argsort(ds.X_train[:, 0])
    assert ds.X_train[order].tolist() == [[1, 0, 0, 1], [2, 1, 0, 0], [3, 0, 0, 1], [4, 0, 1, 0]]
    assert ds.class_names == ["0", "1"]  # integer labels keep their str()


def test_string_target_encoded_in_sorted_order(tmp_path):
    path = write(tmp_path, "s.csv", "x,animal\n1,dog\n2,cat\n3,emu\n4,dog\n5,cat\n6,emu\n")
    ds = load(tmp_path, path, "animal", val_fraction=0.0, standardize=False)
    assert ds.class_names == ["cat", "dog", "emu"]
    expected = {1: 1, 2: 0, 3: 2, 4: 1, 5: 0, 6: 2}
    assert all(expected[int(x)] == label for x, label in zip(ds.X_train[:, 0], ds.y_train))


def test_auto_task_integer_labels_vs_continuous(tmp_path):
    rows = "".join(f"{i},{i % 3}\n" for i in range(30))
    ds = load(tmp_path, write(tmp_path, "i.csv", "x,y\n" + rows), "y")
    assert ds.task == "classification" and ds.class_names == ["0", "1", "2"]
    rows = "".join(f"{i},{i}\n" for i in range(30))  # 30 distinct integers > 20: regression
    assert load(tmp_path, write(tmp_path, "r.csv", "x,y\n" + rows), "y").task == "regression"
    rows = "".join(f"{i},{i % 2 + 0.5}\n" for i in range(30))
    assert load(tmp_path, write(tmp_path, "f.csv", "x,y\n" + rows), "y").task == "regression"
    forced = load(tmp_path, write(tmp_path, "f.csv", "x,y\n" + rows), "y", task="classification")
    assert forced.class_names == ["0.5", "1.5"]


def test_features_subset_and_spaces_bom_trailing_blank_lines(tmp_path):
    content = "\ufeffa, b ,c,y\n1, 2,x,0\n3,4,x,1\n5,6,x,0\n7,8,x,1\n\n\n"
    ds = load(
        tmp_path,
        write(tmp_path, "f.csv", content),
        "y",
        features=["b", "a"],
        val_fraction=0.0,
        standardize=False,
    )
    assert ds.feature_names == ["b", "a"]
    assert sorted(ds.X_train[:, 0].tolist()) == [2, 4, 6, 8] and len(ds.y_train) == 4


# ---------------------------------------------------------------------------------------------
# Refusals: one line, the file as given, the column, the row


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match=r"^data/none.csv: file not found"):
        load(tmp_path, "data/none.csv", "y")
    (tmp_path / "data" / "dir.csv").mkdir(parents=True)
    with pytest.raises(DataError, match=r"^data/dir.csv: is a directory"):
        load(tmp_path, "data/dir.csv", "y")


def test_non_utf8_bytes(tmp_path):
    message = refused(tmp_path, b"x,y\n1,0\n2,caf\xe9\n")
    assert "not UTF-8" in message and "line 3" in message


def test_empty_and_header_only(tmp_path):
    assert "empty file" in refused(tmp_path, "")
    assert "empty file" in refused(tmp_path, "\n  \n")
    assert "header only" in refused(tmp_path, "x,y\n")


def test_ragged_rows(tmp_path):
    message = refused(tmp_path, "x,y\n1,0\n2,1\n3,0,9\n")
    assert "row 3 (line 4 of the file) has 3 fields but the header has 2 columns" in message
    message = refused(tmp_path, "x,z,y\n1,2,0\n2,1\n3,0,1\n")
    assert "row 2 (line 3 of the file) has 2 fields" in message and "'y'" in message
    assert "row 1 (line 2 of the file) has 3 fields" in refused(tmp_path, "x,y\n1,0,5\n2,1,6\n")


def test_unknown_target_with_did_you_mean(tmp_path):
    message = refused(tmp_path, "a,b,species\n1,2,x\n", target="specis")
    assert message == (
        "data/bad.csv: target column 'specis' not found; did you mean 'species'? (columns: a, b, species)"
    )


def test_unknown_feature_and_target_in_features(tmp_path):
    message = refused(tmp_path, "age,y\n1,0\n2,1\n", features=["agee"])
    assert "feature column 'agee'" in message and "did you mean 'age'?" in message
    assert "'y' is the target" in refused(tmp_path, "age,y\n1,0\n2,1\n", features=["age", "y"])


def test_duplicate_column_names(tmp_path):
    message = refused(tmp_path, "x,y,x\n1,0,2\n")
    assert "duplicate column name 'x'" in message and "columns 1 and 3" in message


def test_missing_values_with_row_number(tmp_path):
    rows = [f"{i},{i % 2}" for i in range(20)]
    for row in (17, 18, 19):  # data rows 17..19 -> list indices 16..18
        rows[row - 1] = f",{(row - 1) % 2}"
    message = refused(tmp_path, "age,y\n" + "\n".join(rows) + "\n")
    assert "column 'age': 3 missing values (first at row 17, line 18 of the file)" in message


def test_na_token_and_blank_line_count_as_missing(tmp_path):
    assert "column 'x': 1 missing value (first at row 2" in refused(tmp_path, "x,y\n1,0\nNA,1\n3,0\n")
    assert "row 2 (line 3 of the file) is blank" in refused(tmp_path, "x,y\n1,0\n\n3,0\n")


def test_missing_values_in_unused_column_are_fine(tmp_path):
    path = write(tmp_path, "ok.csv", "x,notes,y\n1,,0\n2,,1\n3,a,0\n4,b,1\n")
    ds = load(tmp_path, path, "y", features=["x"], val_fraction=0.0)
    assert ds.feature_names == ["x"]


def test_non_numeric_value_in_numeric_column(tmp_path):
    message = refused(tmp_path, "age,y\n1,0\n2,1\nabc,0\n4,1\n")
    assert "column 'age'" in message and "'abc'" in message and "row 3 (line 4 of the file)" in message


def test_infinite_value(tmp_path):
    message = refused(tmp_path, "age,y\n1,0\ninf,1\n3,0\n")
    assert "column 'age'" in message and "infinite value 'inf' at row 2" in message


def test_too_many_categories(tmp_path):
    rows = "".join(f"name{i},{i % 2}\n" for i in range(51))
    message = refused(tmp_path, "name,y\n" + rows)
    assert "column 'name': 51 distinct text values" in message and "at most 50" in message


def test_one_class_target(tmp_path):
    message = refused(tmp_path, "x,y\n1,yes\n2,yes\n3,yes\n")
    assert "target column 'y' has a single class ('yes')" in message


def test_text_target_for_regression(tmp_path):
    assert "target column 'y' is text" in refused(tmp_path, "x,y\n1,a\n2,b\n", task="regression")


def test_too_few_rows_to_split(tmp_path):
    message = refused(tmp_path, "x,y\n1,0.5\n2,1.5\n", val_fraction=0.5, test_fraction=0.4)
    assert "2 rows are too few" in message
    message = refused(tmp_path, "x,y\n1,a\n2,b\n3,c\n", val_fraction=0.3)
    assert "target 'y': 3 classes need at least one training row each" in message


def test_unclosed_quote_and_nul_byte(tmp_path):
    assert "unclosed double quote starting at row 2" in refused(tmp_path, 'x,y\n1,0\n"2,1\n3,0\n')
    assert "NUL byte" in refused(tmp_path, b"x,y\n1,0\n2\x00,1\n")


def test_semicolon_separated_file_is_named_as_such_when_the_delimiter_is_forced(tmp_path):
    message = refused(tmp_path, "x;y\n1;0\n2;1\n", delimiter=",")
    assert "seems to use ';'" in message and "data.delimiter" in message
