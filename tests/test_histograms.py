"""Per-layer histograms: fixed bins, counts that add up, rows that match an independent recomputation,
and a run that is the same byte for byte with histograms on or off."""

import numpy as np
import pandas as pd
import pytest
from conftest import write_config

from dlexp.nn import MLP
from dlexp.nn.histograms import KINDS, LayerHistograms, bins_for


def test_linear_bins_put_values_where_np_histogram_does_and_clip_the_rest():
    bins = bins_for("pre_activation")
    edges = bins.edges
    assert len(edges) == 101 and edges[0] == -10 and edges[-1] == 10 and edges[1] == -9.8
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=5000)
    inside = x[(x > -10) & (x < 10)]
    expected, _ = np.histogram(inside, bins=edges)
    counts = bins.counts(x)
    assert counts.sum() == x.size
    np.testing.assert_array_equal(counts[1:-1], expected[1:-1])
    assert counts[0] == expected[0] + np.count_nonzero(x <= -10)
    assert counts[-1] == expected[-1] + np.count_nonzero(x >= 10)
    assert bins.counts(np.array([np.nan, np.inf, -np.inf])).tolist() == [1] + [0] * 98 + [1]


def test_signed_log_gradient_bins():
    bins = bins_for("gradient")
    edges = bins.edges
    assert bins.count == 88 and edges[0] == -10.0 and edges[-1] == 10.0 and edges[44] == 0.0
    assert edges[45] == pytest.approx(10**-9.75, rel=1e-11) and edges[48] == pytest.approx(1e-9, rel=1e-11)
    for value in [3e-3, -3e-3, 0.5, -7.0, 2e-10]:
        k = int(np.flatnonzero(bins.counts(np.array([value])))[0])
        assert edges[k] <= value < edges[k + 1]
    counts = bins.counts(np.array([0.0, 1e-300, -1e-12, 1e5]))
    assert counts[44] == 2 and counts[43] == 1 and counts[87] == 1  # tiny values innermost, huge at the edge


def test_bounded_activations_get_their_range():
    assert (bins_for("activation", (0.0, 1.0)).edges[[0, -1]] == [0, 1]).all()
    assert (bins_for("activation").edges[[0, -1]] == [-5, 5]).all()
    with pytest.raises(ValueError, match="accepted: activation, pre_activation, gradient, weight"):
        bins_for("bias")


def test_rows_count_every_value_of_every_layer():
    rng = np.random.default_rng(1)
    model = MLP(3, [6, 5], 2, activation="tanh", norm="layernorm", output_activation="softmax", rng=rng)
    from dlexp.nn import make_loss

    loss = make_loss("sparse_cce")
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10)
    model.loss_and_grads(X, loss.targets(y, 2, np.float64), loss)
    rows = pd.DataFrame(LayerHistograms(model).rows(step=4, epoch=2))
    assert (rows.step == 4).all() and (rows.epoch == 2).all() and (rows["count"] > 0).all()
    totals = rows.groupby(["layer", "kind"])["count"].sum().to_dict()
    assert totals == {(0, "activation"): 60, (0, "gradient"): 60, (0, "pre_activation"): 60, (0, "weight"): 18,
                      (1, "activation"): 50, (1, "gradient"): 50, (1, "pre_activation"): 50, (1, "weight"): 30,
                      (2, "gradient"): 20, (2, "weight"): 10}
    # an independent recomputation: the activations of layer 1 (tanh: 50 bins over [-1, 1])
    a1 = np.tanh(model._last_ws.u[1])
    expected, edges = np.histogram(a1, bins=np.linspace(-1, 1, 51))
    got = rows[(rows.layer == 1) & (rows.kind == "activation")]
    dense = dict(zip(np.round(got.bin_low, 9), got["count"]))
    assert [dense.get(round(e, 9), 0) for e in edges[:-1]] == expected.tolist()
    assert set(rows.kind) == set(KINDS)


RUN = """\
seed: 3
data: {{kind: moons, n_samples: 200}}
model: {{depth: 3, width: 8, activation: sigmoid, init: torch_default, dropout: 0.2}}
training: {{epochs: 2, batch_size: 16, optimizer: {{name: sgd, lr: 0.5}}}}
logging: {{grad_every: 2{histograms}}}
"""


def test_histograms_change_no_other_file_and_match_the_weights(cli, tmp_path):
    off = write_config(tmp_path / "off.yaml", RUN.format(histograms=""))
    on = write_config(tmp_path / "on.yaml", RUN.format(histograms=", histograms_every: 4"))
    assert cli("train", off, "--runs-dir", tmp_path / "a", "--quiet", "--name", "x").code == 0
    assert cli("train", on, "--runs-dir", tmp_path / "b", "--quiet", "--name", "x").code == 0
    (a,), (b,) = list((tmp_path / "a").iterdir()), list((tmp_path / "b").iterdir())
    assert not (a / "histograms.csv").exists()
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "checkpoints/final.npz", "checkpoints/init.npz"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert "histograms_every" not in (a / "config.yaml").read_text()
    rows = pd.read_csv(b / "histograms.csv")
    assert list(rows.columns) == ["step", "epoch", "layer", "kind", "bin_low", "bin_high", "count"]
    assert sorted(rows.step.unique())[:3] == [1, 5, 9]  # step 1, then every 4th
    # step 1's weight histogram is the initial weights' (taken before the first update)
    with np.load(b / "checkpoints/init.npz") as init:
        w0 = init["layers.0.W"]
    edges = np.linspace(-1, 1, 101)
    expected, _ = np.histogram(np.clip(w0, -1, 1), bins=edges)
    got = rows[(rows.step == 1) & (rows.layer == 0) & (rows.kind == "weight")]
    dense = dict(zip(np.round(got.bin_low, 9), got["count"]))
    assert [dense.get(round(e, 9), 0) for e in edges[:-1]] == expected.tolist()
    # `dlexp plot` draws them: a heatmap per kind (a panel per layer) and the last step's curves
    plotted = cli("plot", b, "--json")
    assert plotted.code == 0, plotted.stderr
    names = sorted(p.name for p in (b / "figures").iterdir())
    assert [n for n in names if n.startswith("histograms")] == [
        "histograms_activation.png", "histograms_gradient.png", "histograms_last.png",
        "histograms_pre_activation.png", "histograms_weight.png"]
    assert (b / "figures" / "histograms_last.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli("plot", a).code == 0 and not list((a / "figures").glob("histograms*"))
