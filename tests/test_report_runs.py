"""Reports on real runs: the 10-layer sigmoid net vanishes and ReLU + He does not; the grid's CSVs and
figures; `dlexp plot`; `dlexp gradcheck` on every example config and on a deliberately broken backward."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import CONFIGS, write_config

from dlexp.report import figures

SHORT = ["--set", "training.epochs=2", "--set", "data.n_samples=300", "--set", "logging.grad_every=2",
         "--quiet"]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk of a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def pixels(size: tuple[float, float]) -> tuple[int, int]:
    return round(size[0] * figures.DPI), round(size[1] * figures.DPI)


@pytest.fixture(scope="module")
def depth10_runs(tmp_path_factory) -> dict[str, Path]:
    from dlexp.cli.app import main

    runs = tmp_path_factory.mktemp("runs")
    out = {}
    for config in ("sigmoid_depth10", "relu_he_depth10"):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", str(CONFIGS / f"{config}.yaml"), "--runs-dir", str(runs / config), *SHORT])
        assert exit_info.value.code == 0
        (out[config],) = (runs / config).iterdir()
    return out


def test_sigmoid_depth10_vanishes_and_relu_he_does_not(cli, depth10_runs):
    sigmoid, relu = depth10_runs["sigmoid_depth10"], depth10_runs["relu_he_depth10"]
    result = cli("grad-report", sigmoid, relu, "--json")
    assert result.code == 0, result.stderr
    by_name = {r["label"]: r for r in json.loads(result.stdout)["runs"]}
    sig = by_name["sigmoid-depth10"]
    assert sig["verdict"] == "vanishing" and sig["worst_layer"] == 0
    verdicts = [layer["verdict"] for layer in sig["layers"]]
    assert verdicts[:3] == ["vanishing"] * 3 and verdicts[-1] == "healthy"  # the first layers vanish
    assert sig["layers"][0]["log10_ratio"] < -4  # ten sigmoid layers: ≤ 0.25^10 ≈ 10^-6 from the derivatives
    relu_run = by_name["relu-he-depth10"]
    assert relu_run["verdict"] != "vanishing"
    assert all(layer["log10_ratio"] > -1 for layer in relu_run["layers"])
    assert cli("grad-report", relu, "--fail-on", "vanishing,exploding", "--quiet").code == 0
    assert cli("grad-report", sigmoid, relu, "--fail-on", "vanishing", "--quiet").code == 1


def test_plot_writes_four_pngs_per_classification_run(cli, depth10_runs, tmp_path):
    sigmoid, relu = depth10_runs["sigmoid_depth10"], depth10_runs["relu_he_depth10"]
    result = cli("plot", sigmoid, relu, "--out", tmp_path / "figs", "--json")
    assert result.code == 0, result.stderr
    written = json.loads(result.stdout)["figures"]
    assert len(written) == 2 and all(len(files) == 4 for files in written.values())
    for files in written.values():
        for name in files:
            path = Path(name)
            assert path.parent == tmp_path / "figs" and path.stat().st_size > 10_000
            assert png_size(path) == pixels(figures.RUN_FIGSIZE)
    assert {Path(f).name.split("_", 1)[1] for f in written[str(sigmoid)]} == {
        "loss.png", "accuracy.png", "grad_norms.png", "grad_heatmap.png"}


def test_plot_writes_into_the_run_folder_by_default(cli, depth10_runs, monkeypatch):
    relu = depth10_runs["relu_he_depth10"]
    asked = []  # where the figures would go, and their prefix; drawing them is the test above
    monkeypatch.setattr(figures, "plot_run", lambda run, folder, name, prefix="": asked.append((folder, prefix)) or [])
    assert cli("plot", relu).code == 0 and asked == [(relu / "figures", "")]


def _lines(ax) -> list[tuple[str, str, float]]:
    return [(line.get_label(), line.get_linestyle(), line.get_linewidth()) for line in ax.get_lines()]


def test_accuracy_figure_keeps_train_visible_under_validation(depth10_runs):
    from dlexp.report.rundata import read_run

    run = read_run(depth10_runs["relu_he_depth10"])
    ax = figures.metric_figure(run, "acc", "relu").axes[0]
    (train, train_style, train_width), (val, val_style, val_width) = _lines(ax)
    assert (train, val) == ("train acc", "validation acc")
    assert train_style == "-" and val_style == "--" and train_width > val_width  # wide under dashed
    assert ax.get_ylabel().startswith("accuracy")


def test_plot_overlay_draws_every_run_on_one_set_of_axes(cli, depth10_runs, tmp_path):
    from dlexp.report.rundata import read_run

    sigmoid, relu = depth10_runs["sigmoid_depth10"], depth10_runs["relu_he_depth10"]
    runs = [read_run(sigmoid), read_run(relu)]
    names = ["sigmoid-depth10", "relu-he-depth10"]
    for metric in ("loss", "acc"):
        fig = figures.overlay_figure(runs, names, metric)
        (ax,) = fig.axes
        labels = [label for label, _, _ in _lines(ax)]
        assert labels == [f"{n} ({split})" for n in names for split in ("train", "validation")]
        colors = [line.get_color() for line in ax.get_lines()]
        assert colors[0] == colors[1] != colors[2] == colors[3]  # a colour per run
        assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    result = cli("plot", sigmoid, relu, "--overlay", "-o", tmp_path / "cmp", "--json")
    assert result.code == 0, result.stderr
    written = json.loads(result.stdout)["figures"]["overlay"]
    assert [Path(f).name for f in written] == ["overlay_loss.png", "overlay_accuracy.png"]
    assert all(png_size(Path(f)) == pixels(figures.RUN_FIGSIZE) for f in written)


def test_grid_mode_writes_the_expected_rows_and_figures(cli, tmp_path):
    base = write_config(tmp_path / "base.yaml", "name: g\nseed: 5\ndata: {source: synthetic, kind: moons, "
                        "n_samples: 200}\nmodel: {hidden: [16], activation: tanh, init: xavier_uniform}\n"
                        "training: {epochs: 40, batch_size: 16, optimizer: {name: sgd, lr: 0.1}}\n")
    folder = tmp_path / "report"
    result = cli("grad-report", "--config", base, "--activations", "sigmoid,relu", "--depths", "2,6",
                 "--seeds", "2", "--steps", "4", "--jobs", "2", "--out", folder,
                 "--csv", tmp_path / "matrix.csv", "--json")
    assert result.code == 0, result.stderr
    layers = pd.read_csv(folder / "grad_report.csv")
    expected = {(a, d, s, layer)
                for a in ("sigmoid", "relu") for d in (2, 6) for s in (5, 6) for layer in range(d + 1)}
    assert len(layers) == len(expected) == 40
    assert set(zip(layers.activation, layers.depth, layers.seed, layers.layer)) == expected
    assert (layers.init == "xavier_uniform").all() and (~layers.batchnorm).all()
    assert (layers.status == "completed").all()
    matrix = pd.read_csv(folder / "grad_matrix.csv")
    assert len(matrix) == 4 and (matrix.measured == 2).all()
    assert matrix.set_index(["activation", "depth"]).loc[("sigmoid", 6), "bound_log10"] == pytest.approx(
        6 * -0.6020599913279624)
    first = layers[layers.layer == 0].groupby(["activation", "depth"])["ratio_to_output_first_epoch"]
    cell = np.log10(first.get_group(("sigmoid", 6)).to_numpy())
    sig6 = matrix[(matrix.activation == "sigmoid") & (matrix.depth == 6)].iloc[0]
    assert sig6.log10_ratio_first_mean == pytest.approx(cell.mean(), rel=1e-12)
    assert sig6.log10_ratio_first_std == pytest.approx(cell.std(ddof=1), rel=1e-12)
    assert sig6.log10_ratio_first_mean < -2  # six sigmoid layers at initialisation
    assert pd.read_csv(tmp_path / "matrix.csv").equals(matrix)
    # each run directory is kept, trained exactly --steps full-batch steps, and can be reported on again
    runs = sorted((folder / "runs").iterdir())
    assert len(runs) == 8
    config = yaml.safe_load((runs[0] / "config.yaml").read_text())
    assert config["training"]["epochs"] == 4 and config["training"]["batch_size"] == "full"
    assert config["model"]["hidden"] in ([16] * 2, [16] * 6)  # width from the base's hidden list
    assert json.loads((runs[0] / "summary.json").read_text())["steps"] == 4
    document = json.loads(result.stdout)
    assert len(document["runs"]) == 8 and document["axes"]["seeds"] == [5, 6]
    assert document["matrix_epoch"] == "first"
    sizes = {"heatmap.png": figures.heatmap_size(2, 2), "grad_vs_layer.png": figures.grad_vs_layer_size(2)}
    for name, size in sizes.items():
        assert png_size(folder / name) == pixels(size) and (folder / name).stat().st_size > 10_000
    assert "bound sigmoid" in result.stderr and "bound relu" in result.stderr
    assert cli("grad-report", *runs[:2], "--quiet").code == 0


def test_grid_runs_on_the_sweep_runner_with_dask_too(cli, tmp_path):
    # grad-report's grid is a plan of the sweeps' runner: --executor dask gives the local files
    pytest.importorskip("distributed")
    base = write_config(tmp_path / "base.yaml", "name: g\nseed: 2\ndata: {n_samples: 80}\nmodel: {hidden: [8]}\n")
    args = ["grad-report", "--config", base, "--activations", "tanh,relu", "--depths", "2", "--seeds", "1",
            "--steps", "2", "--quiet"]
    local = cli(*args, "--jobs", "1", "--out", tmp_path / "local")
    dask = cli(*args, "--executor", "dask", "--jobs", "2", "--out", tmp_path / "dask")
    assert local.code == 0 and dask.code == 0, (local.stderr, dask.stderr)
    for name in ("grad_report.csv", "grad_matrix.csv"):
        text = {where: re.sub(r"-\d{8}-\d{6}(-\d+)?", "-T", (tmp_path / where / name).read_text())
                .replace(str(tmp_path / where), "X") for where in ("local", "dask")}
        assert text["local"] == text["dask"]
    assert cli("grad-report", tmp_path / "local" / "runs", "--executor", "dask").code == 2  # grid-only option


def test_grid_bad_axis_values_fail_before_any_run(cli, tmp_path):
    base = write_config(tmp_path / "base.yaml", "data: {n_samples: 100}\n")
    cases = [(["--activations", "sigmoid,sigmod"], "did you mean 'sigmoid'"),
             (["--depths", "2,x"], "'x' is not a depth"),
             (["--batchnorm", "maybe"], "accepted: off, on"),
             (["--inits", "he"], "model.init"),
             (["--epoch", "middle"], "accepted: first, last")]
    for args, message in cases:
        result = cli("grad-report", "--config", base, *args, "--runs-dir", tmp_path / "runs")
        assert result.code == 2 and message in result.stderr, (args, result.stderr)
        assert not (tmp_path / "runs").exists()


def example_configs() -> list[Path]:
    return sorted(CONFIGS.glob("*.yaml")) + sorted((CONFIGS / "gallery").glob("*.yaml"))


@pytest.mark.parametrize("config", example_configs(), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_gradcheck_passes_on_every_example_config(cli, config):
    result = cli("gradcheck", config, "--max-per-param", "12", "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["passed"] and all(p["status"] != "fail" for p in document["params"])
    assert {p["name"] for p in document["params"] if p["param"] == "W"}  # every layer is there
    assert "chain rule verified" in result.stderr


def test_gradcheck_table_and_cap_are_reported(cli):
    result = cli("gradcheck", CONFIGS / "sigmoid_depth10.yaml", "--max-per-param", "20")
    assert result.code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "max rel error" in out and "22 parameters pass" in out
    assert "probed at most 20 random entries per parameter (layers.0.W 20 of 64" in out  # 2 inputs × 32 units
    assert "noise-limited: layers.0.W" in out  # vanishing gradients sit below a 1e-6 relative check


def test_gradcheck_fails_on_a_broken_backward(cli, tmp_path, monkeypatch):
    from dlexp.nn.activations import Tanh

    config = write_config(tmp_path / "tanh.yaml", "data: {n_samples: 60}\n"
                          "model: {hidden: [5, 4], activation: tanh}\ntraining: {l2: 0.01}\n")
    assert cli("gradcheck", config).code == 0

    def wrong_backward(self, z, a, grad_a, out):  # forgets the derivative: dL/dz = dL/da
        out[...] = grad_a
        return out

    monkeypatch.setattr(Tanh, "backward", wrong_backward)
    result = cli("gradcheck", config, "--json")
    assert result.code == 1
    failed = [p["name"] for p in json.loads(result.stdout)["params"] if p["status"] == "fail"]
    assert failed and "layers.2.W" not in failed and "layers.0.W" in failed  # the output layer needs no f'
    assert "FAILED: layers.0.W" in result.stderr


def test_heatmap_axis_label_names_every_varied_axis_and_the_shared_settings():
    from types import SimpleNamespace

    from dlexp.report.grid import axes_label, column_label

    both = SimpleNamespace(columns=[(a, "he_normal", bn) for a in ("sigmoid", "relu") for bn in (False, True)])
    assert axes_label(both) == "configuration: activation × BatchNorm (all: init he_normal)"
    assert column_label(both, "sigmoid", "he_normal", True) == "sigmoid +BN"
    fixed_bn = SimpleNamespace(columns=[(a, i, True) for a in ("sigmoid", "tanh") for i in ("he_normal", "normal")])
    assert axes_label(fixed_bn) == "configuration: activation × init (all: BatchNorm on)"
