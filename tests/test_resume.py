"""Interrupt and exact resume with real signals sent to a subprocess, and crash safety after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_subprocess, write_config

CONFIG = """\
name: resumable
seed: 7
dtype: {dtype}
data: {{kind: spirals, n_samples: 400, n_classes: 3}}
model: {{hidden: [32, 32], activation: tanh, dropout: 0.3, batchnorm: {batchnorm}}}
training: {{epochs: {epochs}, batch_size: 8, shuffle: true, optimizer: adam, schedule: {{name: step, step_size: 3, gamma: 0.7}}}}
logging: {{grad_every: 3, histograms_every: {histograms}}}
"""

FILES = ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "checkpoints/final.npz"]


def start(cfg: Path, runs: Path) -> subprocess.Popen:
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "dlexp", "train", str(cfg), "--runs-dir", str(runs), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_rows(runs: Path, rows: int, proc: subprocess.Popen, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in runs.glob("*/metrics.csv") if runs.exists() else []:
            if run.read_text().count("\n") >= rows + 1:
                return run.parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("run did not progress")


def reference(tmp_path: Path, cfg: Path) -> Path:
    result = run_subprocess("train", cfg, "--runs-dir", tmp_path / "ref", "--quiet")
    assert result.code == 0, result.stderr
    return next((tmp_path / "ref").iterdir())


def assert_same(a: Path, b: Path) -> None:
    assert (a / "histograms.csv").exists() == (b / "histograms.csv").exists()
    for name in FILES + (["histograms.csv"] if (a / "histograms.csv").exists() else []):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("dtype,sig,code,batchnorm,histograms", [("float64", signal.SIGINT, 130, "false", 0),
                                                                 ("float32", signal.SIGTERM, 143, "true", 5)])
def test_interrupt_then_resume_is_bit_identical(tmp_path, dtype, sig, code, batchnorm, histograms):
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype=dtype, epochs=12, batchnorm=batchnorm,
                                                          histograms=histograms))
    proc = start(cfg, tmp_path / "runs")
    run = wait_for_rows(tmp_path / "runs", 3, proc)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "--resume" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] < 12 * 40
    assert (run / "checkpoints/last.npz").exists() and not (run / "checkpoints/final.npz").exists()
    with np.load(run / "checkpoints/last.npz", allow_pickle=False) as ckpt:
        assert {"layers.0.W", "optim.exp_avg.layers.0.W", "trainer.state", "trainer.perm"} <= set(ckpt.files)
    resumed = run_subprocess("train", "--resume", run, "--quiet")
    assert resumed.code == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert_same(run, reference(tmp_path, cfg))


def test_sigkill_leaves_a_readable_directory_that_resumes_exactly(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype="float64", epochs=40, batchnorm="false", histograms=0))
    proc = start(cfg, tmp_path / "runs")
    run = wait_for_rows(tmp_path / "runs", 4, proc)
    time.sleep(0.05)
    proc.kill()  # 40 epochs take seconds; the kill lands mid-run
    proc.communicate()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv"]:
        text = (run / name).read_text()
        # only whole rows: every complete line has the header's field count
        lines = text.split("\n")
        width = lines[0].count(",")
        assert all(line.count(",") == width for line in lines[1:-1])
    pd.read_csv(run / "metrics.csv")  # readable as is
    resumed = run_subprocess("train", "--resume", run, "--quiet")
    assert resumed.code == 0, resumed.stderr
    assert_same(run, reference(tmp_path, cfg))


def test_resume_refuses_a_completed_run_and_a_non_run(tmp_path, cli):
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype="float64", epochs=1, batchnorm="false", histograms=0))
    assert cli("train", cfg, "--runs-dir", tmp_path / "runs", "--quiet").code == 0
    run = next((tmp_path / "runs").iterdir())
    again = cli("train", "--resume", run)
    assert again.code == 2 and "already completed" in again.stderr
    nothing = cli("train", "--resume", tmp_path)
    assert nothing.code == 2 and "not a dlexp run directory" in nothing.stderr


def test_trainer_checkpoint_round_trip_mid_epoch():
    """In-process: stop after an arbitrary step, restore into a fresh trainer, finish: identical to one go."""
    from dlexp.config import validate_mapping
    from dlexp.experiment import make_trainer, prepare

    mapping = {"seed": 1, "data": {"kind": "blobs", "n_samples": 90, "n_classes": 3},
               "model": {"hidden": [6], "dropout": 0.4},
               "training": {"epochs": 3, "batch_size": 7, "optimizer": {"name": "nadam"}}}

    def fresh():
        p = prepare(validate_mapping(mapping, "m"), Path("."))
        return p, make_trainer(p, [])

    p1, t1 = fresh()
    t1.fit(p1.train, p1.val)

    p2, t2 = fresh()
    original = t2._train_step

    def step_then_stop(Xb, tb):
        out = original(Xb, tb)
        if t2.step == 13:
            t2.request_stop()
        return out

    t2._train_step = step_then_stop
    assert t2.fit(p2.train, p2.val).status == "interrupted"
    arrays = t2.checkpoint_arrays()
    p3, t3 = fresh()
    t3.restore(arrays)
    assert t3.fit(p3.train, p3.val).status == "completed"
    np.testing.assert_array_equal(t3.model.params, t1.model.params)
    assert json.dumps(t3.history) == json.dumps(t1.history)  # NaN-safe exact comparison
