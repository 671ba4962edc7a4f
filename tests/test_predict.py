"""A trained run used on new rows: `dlexp predict`, `dlexp evaluate`, `dlexp.api.load_run`, the saved
preprocessing, regression metrics in the target's units, and test-split metrics per epoch."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_config

from dlexp import api
from dlexp.config import load_config
from dlexp.experiment import prepare
from dlexp.nn.losses import make_loss
from dlexp.nn.model import MLP
from dlexp.trainer import Split, split_metrics

IRIS = REPO / "data" / "iris.csv"
DIABETES = REPO / "data" / "diabetes.csv"


def train(cli, tmp_path: Path, name: str, data: str, extra: str = "") -> Path:
    config = write_config(tmp_path / f"{name}.yaml", f"""\
name: {name}
seed: 1
data: {{source: csv, {data}}}
model: {{hidden: [8], activation: tanh}}
training: {{epochs: 4, batch_size: 16, optimizer: {{name: adam, lr: 0.02}}{extra}}}
""")
    result = cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.code == 0, result.stderr
    return next((tmp_path / "runs").glob(f"{name}-*"))


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    from dlexp.cli.app import main

    tmp = tmp_path_factory.mktemp("iris")
    config = write_config(tmp / "iris.yaml", f"""\
name: iris
seed: 1
data: {{source: csv, path: {IRIS}, target: species, test_fraction: 0.2}}
model: {{hidden: [8], activation: tanh}}
training: {{epochs: 4, batch_size: 16, optimizer: {{name: adam, lr: 0.02}}}}
""")
    with pytest.raises(SystemExit) as done:
        main(["train", str(config), "--runs-dir", str(tmp / "runs"), "--quiet"])
    assert done.value.code == 0
    return next((tmp / "runs").glob("iris-*"))


def read_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_run_keeps_its_preprocessing_as_json_and_npz(iris_run):
    info = json.loads((iris_run / "preprocessing.json").read_text())
    assert info["format"] == "dlexp.preprocessing" and info["version"] == 1
    assert info["task"] == "classification" and info["class_names"] == ["setosa", "versicolor", "virginica"]
    assert info["feature_names"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert info["output_activation"] == "softmax" and info["n_outputs"] == 3
    assert info["reading"]["delimiter"] == ","
    with np.load(iris_run / "preprocessing.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["feature_mean", "feature_std"] and npz["feature_mean"].shape == (4,)
    header = (iris_run / "metrics.csv").read_text().splitlines()[0]
    assert header == ("epoch,step,train_loss,val_loss,test_loss,train_acc,val_acc,test_acc,penalty,lr,"
                      "grad_norm_total")
    assert "delimiter: ','" in (iris_run / "config.yaml").read_text()


def test_predict_on_the_training_csv_reproduces_the_runs_predictions_bit_for_bit(cli, iris_run, tmp_path):
    out = tmp_path / "pred.csv"
    result = cli("predict", iris_run, IRIS, "--out", out, "--proba")
    assert result.code == 0, result.stderr
    rows = read_rows(out.read_text())
    assert len(rows) == 150 and list(rows[0]) == ["predicted_species", "proba_setosa", "proba_versicolor",
                                                   "proba_virginica"]
    cfg = load_config(iris_run / "config.yaml")
    p = prepare(cfg, iris_run)  # the run's own splits, standardized as in training
    model = MLP.load(iris_run / "checkpoints" / "final.npz")
    raw = np.loadtxt(IRIS, delimiter=",", skiprows=1, usecols=range(4))
    standardized = (raw - p.dataset.feature_mean) / p.dataset.feature_std
    by_row = {standardized[i].tobytes(): rows[i] for i in range(150)}
    for split in (p.train, p.val, p.test):
        proba = model.predict_proba(split.X)
        for x, expected in zip(split.X, proba):
            row = by_row[x.tobytes()]  # the file's row, standardized bit for bit as in training
            got = np.array([float(row[f"proba_{c}"]) for c in ("setosa", "versicolor", "virginica")])
            np.testing.assert_array_equal(got, expected)
            assert row["predicted_species"] == p.dataset.class_names[int(expected.argmax())]
    final = read_rows((iris_run / "metrics.csv").read_text())[-1]
    train_loss = split_metrics(model, p.loss, p.train)["loss"]
    assert repr(train_loss) == final["train_loss"]


def test_evaluate_confusion_matrix_matches_a_hand_count(cli, iris_run):
    result = cli("evaluate", iris_run, IRIS, "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    predicted = [row["predicted_species"] for row in read_rows(cli("predict", iris_run, IRIS).stdout)]
    true = [row["species"] for row in csv.DictReader(IRIS.open())]
    names = ["setosa", "versicolor", "virginica"]
    counts = Counter(zip(true, predicted))
    matrix = report["confusion_matrix"]
    assert matrix == [[counts[(t, q)] for q in names] for t in names]
    assert sum(map(sum, matrix)) == 150 == report["n_rows"]
    assert report["acc"] == sum(t == q for t, q in zip(true, predicted)) / 150
    for k, row in enumerate(report["per_class"]):
        tp = matrix[k][k]
        predicted_k, support = sum(r[k] for r in matrix), sum(matrix[k])
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / support
        assert row["support"] == support == 50
        assert row["precision"] == pytest.approx(precision, abs=1e-15)
        assert row["recall"] == pytest.approx(recall, abs=1e-15)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert row["f1"] == pytest.approx(f1, abs=1e-15)
    table = cli("evaluate", iris_run, IRIS)
    assert table.code == 0 and "confusion matrix" in table.stdout and "weighted avg" in table.stdout


def test_per_class_scores_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    from dlexp.inference import classification_report

    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    predicted[predicted == 3] = 2  # class 3 never predicted: precision 0 by convention
    report = classification_report(true, predicted, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(report["confusion_matrix"], metrics.confusion_matrix(true, predicted))
    p, r, f, support = metrics.precision_recall_fscore_support(true, predicted, zero_division=0)
    assert [row["support"] for row in report["per_class"]] == support.tolist()
    got = report["per_class"]
    np.testing.assert_allclose([row["precision"] for row in got], p, rtol=1e-15)
    np.testing.assert_allclose([row["recall"] for row in got], r, rtol=1e-15)
    np.testing.assert_allclose([row["f1"] for row in got], f, rtol=1e-15)
    weighted = metrics.precision_recall_fscore_support(true, predicted, zero_division=0, average="weighted")
    assert report["averages"]["weighted"]["f1"] == pytest.approx(weighted[2], rel=1e-14)


def test_split_metrics_regression_formulas_in_target_units():
    rng = np.random.default_rng(3)
    model = api.build_model(3, [5], 2, seed=0, activation="tanh")
    X = rng.normal(size=(50, 3))
    targets = rng.normal(size=(50, 2))
    scale = np.array([10.0, 0.5])
    metrics = split_metrics(model, make_loss("mse"), Split(X, targets, None, scale), chunk=7)
    error = (model.predict_proba(X) - targets) * scale  # in units: (ŷ·s + m) - (y·s + m)
    y_units = targets * scale + 3.0
    rmse = np.sqrt((error**2).mean(axis=0)).mean()
    mae = np.abs(error).mean(axis=0).mean()
    r2 = (1 - (error**2).sum(axis=0) / ((y_units - y_units.mean(axis=0)) ** 2).sum(axis=0)).mean()
    assert metrics["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert metrics["mae"] == pytest.approx(mae, rel=1e-12)
    assert metrics["r2"] == pytest.approx(r2, rel=1e-12)
    assert metrics["loss"] == pytest.approx(((model.predict_proba(X) - targets) ** 2).mean(), rel=1e-12)
    constant = split_metrics(model, make_loss("mse"), Split(X, np.ones((50, 2)), None))
    assert math.isnan(constant["r2"])


def test_regression_run_reports_units_and_predict_matches_evaluate(cli, tmp_path):
    run = train(cli, tmp_path, "reg", f"path: {DIABETES}, target: progression, test_fraction: 0.2")
    rows = read_rows((run / "metrics.csv").read_text())
    assert list(rows[0])[2:] == ["train_loss", "val_loss", "test_loss", "train_rmse", "val_rmse", "test_rmse",
                                 "train_mae", "val_mae", "test_mae", "train_r2", "val_r2", "test_r2", "penalty",
                                 "lr", "grad_norm_total"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["test_rmse"] == float(rows[-1]["test_rmse"])
    assert 30 < summary["final"]["train_rmse"] < 120  # in the target's units (progression: 25..346)
    predicted = np.array([float(r["predicted_progression"]) for r in read_rows(cli("predict", run, DIABETES).stdout)])
    true = np.array([float(r["progression"]) for r in csv.DictReader(DIABETES.open())])
    report = json.loads(cli("evaluate", run, DIABETES, "--json").stdout)
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - true) ** 2)), rel=1e-12)
    assert report["mae"] == pytest.approx(np.mean(np.abs(predicted - true)), rel=1e-12)
    r2 = 1 - np.sum((predicted - true) ** 2) / np.sum((true - true.mean()) ** 2)
    assert report["r2"] == pytest.approx(r2, rel=1e-12)


def test_bad_prediction_inputs_exit_2_naming_the_column(cli, iris_run, tmp_path):
    header = "sepal_length,sepal_width,petal_length,petal_width"
    cases = {
        "missing.csv": ("sepal_length,sepal_width,petal_length\n5,3,1\n", "'petal_width' not found"),
        "text.csv": (f"{header}\n5,3,1,0.2\n5,abc,1,0.2\n", "column 'sepal_width': 'abc' at row 2"),
        "blank.csv": (f"{header}\n5,3,1,0.2\n5,,1,0.2\n", "column 'sepal_width': 1 missing value"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(content)
        out = tmp_path / f"{name}.out"
        result = cli("predict", iris_run, tmp_path / name, "--out", out)
        assert result.code == 2 and expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert not out.exists()
    (tmp_path / "labels.csv").write_text(f"{header},species\n5,3,1,0.2,setosa\n6,3,4,1.3,daisy\n")
    result = cli("evaluate", iris_run, tmp_path / "labels.csv")
    assert result.code == 2 and "column 'species': class 'daisy' at row 2" in result.stderr
    assert cli("predict", tmp_path, IRIS).code == 2


def test_unseen_category_is_refused(cli, tmp_path):
    data = tmp_path / "cat.csv"
    data.write_text("size,color,y\n" + "".join(f"{i},{['red', 'blue'][i % 2]},{i % 2}\n" for i in range(20)))
    run = train(cli, tmp_path, "cat", f"path: {data}, target: y")
    (tmp_path / "new.csv").write_text("size,color\n1,red\n2,green\n")
    result = cli("predict", run, tmp_path / "new.csv")
    assert result.code == 2 and "column 'color': category 'green' at row 2" in result.stderr
    assert "known: 'blue', 'red'" in result.stderr


def test_load_run_api_labels_whatever_the_output_activation(cli, iris_run, tmp_path):
    trained = api.load_run(iris_run)
    labels = trained.predict(IRIS)
    assert labels.shape == (150,) and set(labels) <= {"setosa", "versicolor", "virginica"}
    proba = trained.predict_proba(IRIS)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert trained.evaluate(IRIS)["acc"] == np.mean(labels == np.array([r["species"] for r in csv.DictReader(IRIS.open())]))
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(IRIS)
    np.testing.assert_array_equal(trained.predict(frame.drop(columns="species")), labels)
    raw = frame.drop(columns="species").to_numpy()
    np.testing.assert_array_equal(trained.predict(raw), labels)
    # mse on one-hot targets: identity output, 3 outputs; predict still gives one label per row
    run = train(cli, tmp_path, "mse", f"path: {IRIS}, target: species", ", loss: mse")
    identity = api.load_run(run)
    assert identity.model.output_activation == "identity" and identity.predict(IRIS).shape == (150,)
    with pytest.raises(Exception, match="not probabilities"):
        identity.predict_proba(IRIS)


def test_final_table_shows_the_test_split(cli, tmp_path):
    config = write_config(tmp_path / "t.yaml", """\
name: t
data: {source: synthetic, kind: moons, n_samples: 80, test_fraction: 0.25}
model: {hidden: [4]}
training: {epochs: 2}
""")
    result = cli("train", config, "--runs-dir", tmp_path / "runs")
    assert result.code == 0
    for name in ("test_loss", "test_acc"):
        assert f"│ {name} " in result.stdout


def test_the_wine_example_in_the_docs_validates(cli, tmp_path):
    from test_data_csv_options import wine_shaped

    text = (REPO / "docs" / "data.md").read_text()
    block = text.split("### Example: scikit-learn's `wine_data.csv`")[1].split("```yaml\n")[1].split("```")[0]
    config = write_config(tmp_path / "wine.yaml", block)
    (tmp_path / "wine_data.csv").write_text(wine_shaped(60)[0])
    result = cli("validate", config)
    assert result.code == 0, result.stderr
    assert "(60 rows, 3 classes)" in result.stdout and "delimiter: ','" in result.stdout


def test_resume_refuses_a_run_whose_metrics_columns_differ(cli, tmp_path):
    config = write_config(tmp_path / "r.yaml", """\
name: r
data: {source: synthetic, kind: sine, n_samples: 60}
model: {hidden: [4]}
training: {epochs: 2}
""")
    assert cli("train", config, "--runs-dir", tmp_path / "runs", "--quiet").code == 0
    run = next((tmp_path / "runs").glob("r-*"))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(dict(summary, status="interrupted")))
    metrics = run / "metrics.csv"
    lines = metrics.read_text().splitlines()
    old = "epoch,step,train_loss,val_loss,penalty,lr,grad_norm_total"  # before rmse, mae, r2
    metrics.write_text("\n".join([old, *lines[1:]]) + "\n")
    result = cli("train", "--resume", run)
    assert result.code == 2 and "differ from the 13 this version writes" in result.stderr
    assert metrics.read_text().splitlines()[0] == old  # nothing rewritten
