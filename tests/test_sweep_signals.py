"""Sweeps and signals, with real processes: SIGINT/SIGTERM cancel the workers, print the partial table
and exit 130/143; no worker outlives its sweep or holds the caller's pipes; failed, interrupted and
diverged runs give honest exit codes.

Every subprocess test is bounded (``BOUND_S``) and kills whatever it started by pid when it ends.
Descendants are found in /proc (Linux only).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, write_config

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

BOUND_S = 90  # for the sweep to start training, and again for it to end after the signal
LONG = """\
name: long
seed: 0
data: {source: synthetic, kind: moons, n_samples: 400, noise: 0.2}
model: {hidden: [16, 16], activation: tanh}
training: {epochs: 100000, batch_size: 8, optimizer: {name: sgd, lr: 0.01}}
"""


def children_of(pids: set[int]) -> set[int]:
    """Every live descendant of ``pids`` (zombies count as gone)."""
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        parents, frontier = frontier, set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            pid = int(entry.name)
            if int(ppid) in parents and state != "Z" and pid not in found:
                found.add(pid)
                frontier.add(pid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def start_sweep(tmp_path: Path, *args: str) -> subprocess.Popen:
    config = write_config(tmp_path / "long.yaml", LONG)
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "dlexp", "sweep", str(config), "--grid",
                             "training.optimizer.lr=0.01,0.02", "--runs-dir", str(tmp_path / "runs"),
                             "--wide", *args],  # --wide: the status column is kept in an 80-column log
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def wait_for_training(tmp_path: Path, n_runs: int) -> list[Path]:
    """Run directories whose metrics.csv has an epoch row past epoch 0, once ``n_runs`` have one."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        started = [p.parent for p in (tmp_path / "runs").glob("sweeps/*/runs/*/metrics.csv")
                   if len(p.read_text().splitlines()) >= 3]
        if len(started) >= n_runs:
            return started
        time.sleep(0.2)
    raise AssertionError(f"{n_runs} runs did not start training within {BOUND_S} s")


def signal_and_finish(proc: subprocess.Popen, signum: int, tmp_path: Path, n_training: int):
    """Send ``signum`` to the sweep once ``n_training`` runs train; returns (rc, out, err, descendants)."""
    descendants: set[int] = set()
    try:
        wait_for_training(tmp_path, n_training)
        descendants = children_of({proc.pid})
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=BOUND_S)  # returns only once no process holds the pipes
        return proc.returncode, out, err, descendants
    finally:
        kill_all(descendants | children_of({proc.pid}) | ({proc.pid} if proc.poll() is None else set()))
        if proc.poll() is None:
            proc.wait(5)


def summaries(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("sweeps/*/runs/*/summary.json")]


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_cancels_a_pool_sweep_prints_the_table_and_leaves_no_worker(tmp_path, signum, code):
    proc = start_sweep(tmp_path, "--seeds", "2", "--jobs", "2")
    rc, out, err, workers = signal_and_finish(proc, signum, tmp_path, 2)
    assert rc == code, err
    assert len(workers) >= 2  # two worker processes were running
    # as for Dask below: a process (multiprocessing's resource tracker, a worker) can still be exiting for a
    # moment after the sweep returned (5 failures in 14 runs of this test under a load of 6 on 2 cores, on main too); none may survive
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if alive(pid)]
    assert "stopped" in out and "sweep long: 2 grid points × 2 seeds" in out  # the partial table
    name = signal.Signals(signum).name
    assert f"interrupted by {name}: 0 of 4 runs finished; 2 interrupted" in err and "2 cancelled" in err
    trained = [s for s in summaries(tmp_path) if s["status"] != "running"]
    assert len(trained) == 2 and all(s["status"] == "interrupted" for s in trained)
    for s in trained:  # stopped at a step boundary with a checkpoint: resumable
        assert (Path(s["run_dir"]) / "checkpoints" / "last.npz").exists()
    doc = json.loads(next((tmp_path / "runs").glob("sweeps/*/sweep.json")).read_text())
    assert doc["counts"] == {"completed": 0, "diverged": 0, "failed": 0, "interrupted": 2, "cancelled": 2}


@pytest.mark.slow
def test_sigterm_stops_a_serial_sweep_between_steps(tmp_path):
    proc = start_sweep(tmp_path, "--jobs", "1")
    rc, out, err, _ = signal_and_finish(proc, signal.SIGTERM, tmp_path, 1)
    assert rc == 143, err
    assert "stopped" in out  # the partial table
    assert "interrupted by SIGTERM: 0 of 2 runs finished; 1 interrupted" in err and "1 cancelled" in err
    assert [s["status"] for s in summaries(tmp_path)] == ["interrupted"]


@pytest.mark.slow
def test_workers_of_a_killed_sweep_stop_by_themselves(tmp_path):
    proc = start_sweep(tmp_path, "--seeds", "2", "--jobs", "2")
    workers: set[int] = set()
    try:
        wait_for_training(tmp_path, 2)
        workers = children_of({proc.pid})
        proc.kill()  # SIGKILL: the sweep cannot tell its workers anything
        proc.communicate(timeout=BOUND_S)  # its pipes close once the workers are gone too
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)]
        trained = summaries(tmp_path)
        assert len(trained) == 2 and all(s["status"] == "interrupted" for s in trained)
    finally:
        kill_all(workers)


@pytest.mark.slow
def test_sigterm_closes_a_dask_sweep(tmp_path):
    pytest.importorskip("distributed")
    proc = start_sweep(tmp_path, "--seeds", "2", "--jobs", "2", "--executor", "dask")
    rc, out, err, workers = signal_and_finish(proc, signal.SIGTERM, tmp_path, 2)
    assert rc == 143, err
    # Dask's nanny or resource tracker can still be exiting for a moment after the sweep returned
    # (seen once in a CI-like run); none may survive a short bound.
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers and not [pid for pid in workers if alive(pid)]
    assert "stopped" in out  # the partial table
    assert "interrupted by SIGTERM: 0 of 4 runs finished; 2 interrupted" in err and "2 cancelled" in err


# ---------------------------------------------------------------------------------------------
# Exit codes for failed and diverged runs (in process).


def test_a_failed_run_fails_the_sweep_unless_allowed(cli, tiny_config, tmp_path, monkeypatch):
    from dlexp import experiment

    real_run = experiment.run

    def fail_lr_0_1(cfg, **kwargs):
        if cfg.training.optimizer["lr"] == 0.1:
            raise RuntimeError("disk on fire")
        return real_run(cfg, **kwargs)

    monkeypatch.setattr(experiment, "run", fail_lr_0_1)
    args = ("sweep", tiny_config, "--grid", "training.optimizer.lr=0.1,0.01", "--jobs", "1", "--quiet")
    result = cli(*args, "--runs-dir", tmp_path / "a")
    assert result.code == 1
    assert "error: 1 of 2 runs did not finish (1 failed); --allow-failures accepts that" in result.stderr
    assert "disk on fire" in result.stderr
    allowed = cli(*args, "--runs-dir", tmp_path / "b", "--allow-failures")
    assert allowed.code == 0, allowed.stderr
    assert "did not finish" not in allowed.stderr


def test_a_diverged_run_is_a_result_unless_fail_on_divergence(cli, tiny_config, tmp_path):
    args = ("compare-optimizers", tiny_config, "--optimizers", "sgd,adam", "--lr", "sgd=1e6", "--jobs", "1",
            "--set", "model.hidden=[32,32,32]", "--set", "model.activation=relu", "--epochs", "2", "--quiet")
    result = cli(*args, "--runs-dir", tmp_path / "a")
    assert result.code == 0, result.stderr
    strict = cli(*args, "--runs-dir", tmp_path / "b", "--fail-on-divergence")
    assert strict.code == 1
    assert "error: 1 of 2 runs diverged (--fail-on-divergence)" in strict.stderr
