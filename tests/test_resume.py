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


def start(cfg: Path, runs: Path, **extra_env: str) -> subprocess.Popen:
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO), **extra_env)
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


@pytest.mark.parametrize("dtype,sig,code,batchnorm,histograms,child", [
    ("float64", signal.SIGINT, 130, "false", 0, "0"),
    ("float32", signal.SIGTERM, 143, "true", 5, "0"),
    ("float64", signal.SIGINT, 130, "false", 0, "1"),  # step-log text made by a second process
])
def test_interrupt_then_resume_is_bit_identical(tmp_path, dtype, sig, code, batchnorm, histograms, child):
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype=dtype, epochs=12, batchnorm=batchnorm,
                                                          histograms=histograms))
    proc = start(cfg, tmp_path / "runs", DLEXP_FORMAT_PROCESS=child)
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


def _resume_proc(run: Path) -> subprocess.Popen:
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "dlexp", "train", "--resume", str(run), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=60)


@pytest.mark.slow
def test_one_writer_per_run_directory(tmp_path):
    """A resume while the run is being written, or while another resume is, is refused naming the pid;
    the lock of a killed process is no obstacle."""
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype="float64", epochs=1000, batchnorm="false", histograms=0))
    proc = start(cfg, tmp_path / "runs")
    try:
        run = wait_for_rows(tmp_path / "runs", 1, proc)
        before = (run / "metrics.csv").read_text()
        second = run_subprocess("train", "--resume", run, "--quiet")
        assert second.code == 2, second.stderr
        assert second.stderr == (f"error: {run}: another dlexp process (pid {proc.pid}) is writing this run; "
                                 "wait for it to end or stop it, then retry\n")
        assert proc.poll() is None and (run / "metrics.csv").read_text().startswith(before)  # untouched
    finally:
        _stop(proc)  # SIGKILL: the kernel drops the lock; the dead pid stays in the file
    first = _resume_proc(run)
    try:
        deadline = time.monotonic() + 60
        while (run / ".lock").read_text().strip() != str(first.pid):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        other = run_subprocess("train", "--resume", run, "--quiet")
        assert other.code == 2 and f"(pid {first.pid}) is writing this run" in other.stderr, other.stderr
        assert first.poll() is None
        first.send_signal(signal.SIGINT)
        _out, err = first.communicate(timeout=60)
    finally:
        _stop(first)
    assert first.returncode == 130, err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


BIG = CONFIG.replace("hidden: [32, 32]", "hidden: [256, 256]")  # a checkpoint takes a while to write


@pytest.mark.slow
@pytest.mark.parametrize("first, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_more_signals_while_stopping_leave_an_interrupted_resumable_run(tmp_path, first, code):
    """After the first signal, more arrive every millisecond until the process is gone: some land in
    the step, some while the checkpoint and the summary are written. None of them cuts a file. (The same
    signal again: Python runs pending handlers in signal-number order, so a SIGINT arriving just after a
    SIGTERM may be seen first.)"""
    cfg = write_config(tmp_path / "c.yaml", BIG.format(dtype="float64", epochs=3, batchnorm="false", histograms=0))
    proc = start(cfg, tmp_path / "runs")
    try:
        run = wait_for_rows(tmp_path / "runs", 2, proc)
        proc.send_signal(first)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(first)
            time.sleep(0.001)
        _out, err = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "--resume" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == first
    assert not list(run.rglob("*.tmp"))
    resumed = run_subprocess("train", "--resume", run, "--quiet")
    assert resumed.code == 0, resumed.stderr
    assert_same(run, reference(tmp_path, cfg))


def _only_whole_rows(run: Path) -> None:
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "timing.csv"]:
        path = run / name
        if not path.exists() or path.stat().st_size == 0:
            continue
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n"), (name, text[-200:])
        lines = text.split("\n")[:-1]
        assert all(line.count(",") == lines[0].count(",") for line in lines), name
        assert len(pd.read_csv(path)) == len(lines) - 1


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_whole_rows_and_resumes_exactly(tmp_path):
    """Kill, resume, kill again... at random moments (the seed is printed by pytest on failure): every
    CSV holds whole rows after each kill, and the last resume still ends bit for bit."""
    rng = np.random.default_rng(int(time.time()))
    seed = int(rng.integers(1 << 31))
    rng = np.random.default_rng(seed)
    cfg = write_config(tmp_path / "c.yaml", CONFIG.format(dtype="float64", epochs=25, batchnorm="false", histograms=0))
    proc = start(cfg, tmp_path / "runs")
    run = None
    for _ in range(4):
        try:
            if run is None:
                run = wait_for_rows(tmp_path / "runs", 0, proc)
            time.sleep(float(rng.uniform(0.0, 0.6)))
        finally:
            _stop(proc)
        try:
            _only_whole_rows(run)
        except AssertionError as exc:
            raise AssertionError(f"kill times drawn with seed {seed}: {exc}") from exc
        summary = run / "summary.json"
        if summary.exists() and json.loads(summary.read_text())["status"] == "completed":
            break  # on a fast machine the run can end before the next kill: nothing left to resume
        proc = _resume_proc(run)
    else:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (seed, err)
    assert_same(run, reference(tmp_path, cfg))


TINY_RUN = """\
seed: 2
data: {kind: moons, n_samples: 200}
model: {hidden: [8, 8, 8]}
training: {epochs: 400, batch_size: 8, checkpoint_every: 0}
"""


def _full_disk_run(tmp_path: Path, runs: Path, preexec=None) -> tuple[subprocess.CompletedProcess, Path]:
    cfg = write_config(tmp_path / "c.yaml", TINY_RUN)
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "dlexp", "train", str(cfg), "--runs-dir", str(runs), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=120, preexec_fn=preexec, check=False)
    return proc, next(runs.iterdir())


def _assert_rolled_back(proc, run: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {run}/"), proc.stderr
    assert "cut back to its last whole row and the run stopped" in lines[0]
    _only_whole_rows(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "cannot write" in summary["error"]


def test_a_full_disk_rolls_back_to_the_last_whole_row(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes the OS cut a write short, as a full disk does, without root."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an EFBIG error instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    proc, run = _full_disk_run(tmp_path, tmp_path / "runs", limit)
    _assert_rolled_back(proc, run)
    assert "File too large" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_tmpfs_rolls_back_to_the_last_whole_row(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        proc, run = _full_disk_run(tmp_path, mount / "runs")
        _assert_rolled_back(proc, run)
        assert "No space left on device" in proc.stderr
    finally:
        subprocess.run(["umount", str(mount)], check=False)
