"""The step log's text made in a second process (dlexp.rundir.formatproc): the same bytes as made
here, a child that dies or cannot start replaced by formatting here without losing a block, the
environment switch, and whole training runs (with resume) byte-identical either way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_subprocess, write_config

from dlexp.errors import DlexpError
from dlexp.rundir import formatproc, schema
from dlexp.rundir.formatproc import FormatProcess, InlineText, start_values
from dlexp.rundir.steplog import StepLog

EDGES = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e16, 1e-5, 1e-4, 5e-324, 0.1, 1 / 3, 1e22]


def _blocks(n_blocks: int, seed: int = 0) -> tuple[dict, list[bytes]]:
    rng = np.random.default_rng(seed)
    log = StepLog([0, 0, 1, 1], ["W", "b", "W", "b"], ["tanh", 'odd,"name"'], capacity=50)
    messages = []
    for b in range(n_blocks):
        n = int(rng.integers(1, 50))
        log.count = n
        log.steps[:n] = np.arange(n) + 100 * b
        log.epochs[:n] = b + 1
        pool = np.concatenate([rng.lognormal(0, 20, 200), EDGES])
        log.grads[:n] = rng.choice(pool, log.grads[:n].shape)
        log.layers[:n] = np.abs(rng.choice(pool, log.layers[:n].shape))
        messages.append(log.message())
    return log.layout(), messages


def _inline(layout: dict, messages: list[bytes]) -> list[tuple[str, str]]:
    here = InlineText(layout)
    for message in messages:
        here.submit(message)
    return here.take()


def _until_ready(child: FormatProcess) -> None:
    deadline = time.monotonic() + 30
    while not child._poll_ready():
        assert time.monotonic() < deadline and child.running, "the child never got ready"
        time.sleep(0.01)


def test_the_child_writes_the_bytes_made_here():
    layout, messages = _blocks(6)
    child = FormatProcess(layout, start_values=0)
    child.submit(messages[0])  # starts the child; formatted here while it gets ready
    assert child.running
    _until_ready(child)
    got = []
    for message in messages[1:]:
        child.submit(message)
        got += child.take() if len(got) % 2 else []  # take now and then: blocks stay in order
    assert child.sent == 5
    proc = child._proc
    child.close()
    got += child.take()
    assert got == _inline(layout, messages)
    assert not child.running
    assert proc.wait(timeout=10) == 0  # it ends at the end of its input


def test_a_child_killed_mid_run_loses_no_block():
    layout, messages = _blocks(4, seed=1)
    child = FormatProcess(layout, start_values=0)
    child.submit(messages[0])
    _until_ready(child)
    child.submit(messages[1])  # in flight when the child dies
    assert child.sent == 1
    child._proc.kill()
    child._proc.wait()
    for message in messages[2:]:
        child.submit(message)
    assert not child.running
    got = child.take()
    child.close()
    assert got == _inline(layout, messages)


@pytest.mark.parametrize("command", [["/nonexistent/python"], [sys.executable, "-c", "pass"],
                                     [sys.executable, "-c", "import sys; sys.stdout.write('garbage' * 9)"]])
def test_a_child_that_cannot_start_or_answers_wrong_is_replaced(command):
    layout, messages = _blocks(3, seed=2)
    child = FormatProcess(layout, start_values=0, command=command)
    child.submit(messages[0])
    deadline = time.monotonic() + 30
    while child.running and not child._poll_ready() and time.monotonic() < deadline:
        time.sleep(0.01)  # until it fails (or, for the garbled one, "gets ready" and then fails)
    for message in messages[1:]:
        child.submit(message)
    got = child.take()
    child.close()
    assert got == _inline(layout, messages)


def test_the_child_starts_only_once_enough_numbers_are_logged():
    layout, messages = _blocks(3, seed=3)
    per_block = [len(m) // 8 for m in messages]  # about the numbers in each block
    child = FormatProcess(layout, start_values=per_block[0] + per_block[1] // 2)
    child.submit(messages[0])
    assert not child.running
    child.submit(messages[1])
    assert child.running
    child.close()


def test_the_environment_switch(monkeypatch):
    monkeypatch.delenv(formatproc.ENV, raising=False)
    assert start_values(True) == formatproc.START_VALUES and start_values(False) is None
    monkeypatch.setenv(formatproc.ENV, "1")
    assert start_values(False) == 0
    monkeypatch.setenv(formatproc.ENV, "0")
    assert start_values(True) is None
    monkeypatch.setenv(formatproc.ENV, "yes\x1b[31m" * 100)
    with pytest.raises(DlexpError, match="accepted values are 0") as info:
        start_values(True)
    assert "\x1b" not in str(info.value) and len(str(info.value)) < 300


def test_a_bad_switch_is_one_line_and_writes_nothing(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "data: {kind: moons, n_samples: 100}\ntraining: {epochs: 1}\n")
    result = run_subprocess("train", cfg, "--runs-dir", tmp_path / "runs", env={formatproc.ENV: "2"})
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert formatproc.ENV in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    sweep = run_subprocess("sweep", cfg, "--grid", "training.optimizer.lr=0.1,0.01", "--runs-dir", tmp_path / "runs",
                           env={formatproc.ENV: "2"})  # refused before any run starts
    assert sweep.code == 2 and len(sweep.stderr.strip().splitlines()) == 1, sweep.stderr
    assert formatproc.ENV in sweep.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


RUN = """\
seed: 3
data: {kind: spirals, n_samples: 300, n_classes: 3}
model: {hidden: [16, 16, 16], activation: tanh}
training: {epochs: 40, batch_size: 16, optimizer: adam}
"""


def test_a_run_with_the_child_writes_the_same_files(tmp_path, monkeypatch):
    from dlexp import experiment
    from dlexp.config import load_mapping, validate_mapping

    cfg = validate_mapping(load_mapping(write_config(tmp_path / "c.yaml", RUN)), "c.yaml")
    sent = []
    close = FormatProcess.close
    monkeypatch.setattr(FormatProcess, "close", lambda self: (close(self), sent.append(self.sent)))
    dirs = {}
    for setting in ("1", "0"):
        monkeypatch.setenv(formatproc.ENV, setting)
        dirs[setting] = experiment.run(cfg, base_dir=tmp_path, runs_dir=tmp_path / setting).run_dir
    assert len(sent) == 1 and sent[0] > 3, sent  # the child made most blocks' text
    names = sorted(p.relative_to(dirs["0"]) for p in dirs["0"].rglob("*") if p.is_file() and p.name != "timing.csv")
    assert len(names) > 8
    for name in names:
        if name.suffix == ".npz":  # last.npz holds the training time too
            with np.load(dirs["1"] / name) as a, np.load(dirs["0"] / name) as b:
                assert a.files == b.files
                assert all(np.array_equal(a[k], b[k]) for k in a.files if k != schema.ELAPSED), name
        elif name.name != "summary.json":
            assert (dirs["1"] / name).read_bytes() == (dirs["0"] / name).read_bytes(), name


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_the_child_ends_with_a_killed_run_and_the_run_resumes_exactly(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", RUN.replace("epochs: 40", "epochs: 200"))
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO), **{formatproc.ENV: "1"})
    proc = subprocess.Popen([sys.executable, "-m", "dlexp", "train", str(cfg), "--runs-dir", str(tmp_path / "runs"),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    children: list[int] = []
    while not children and time.monotonic() < deadline and proc.poll() is None:
        children = _children(proc.pid)
        time.sleep(0.02)
    assert children, "no formatting process started"
    proc.send_signal(signal.SIGKILL)  # a few epochs into 200
    proc.communicate()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{c}").exists() and "Z" not in _state(c)
                                              for c in children):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{c}").exists() and "Z" not in _state(c) for c in children), "the child outlived the run"
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    resumed = run_subprocess("train", "--resume", run, "--quiet", env={formatproc.ENV: "1"})
    assert resumed.code == 0, resumed.stderr
    reference = run_subprocess("train", cfg, "--runs-dir", tmp_path / "ref", "--quiet", env={formatproc.ENV: "0"})
    assert reference.code == 0, reference.stderr
    ref = next((tmp_path / "ref").iterdir())
    for name in ["metrics.csv", "grad_norms.csv", "layer_stats.csv", "checkpoints/final.npz"]:
        assert (run / name).read_bytes() == (ref / name).read_bytes(), name


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_text_ready_is_taken_without_waiting_so_an_epoch_is_never_all_in_memory():
    layout, messages = _blocks(4, seed=4)
    child = FormatProcess(layout, start_values=0)
    child.submit(messages[0])
    _until_ready(child)
    got = child.take(wait=False)  # the block made here while the child got ready
    for message in messages[1:]:
        child.submit(message)  # collects the block before it: at most one in flight
        got += child.take(wait=False)
    assert len(got) == 3 and child.sent == 3  # the last block is still the child's
    got += child.take()
    child.close()
    assert got == _inline(layout, messages)


def test_a_run_gets_the_formatting_process_only_where_each_concurrent_run_has_a_second_core(monkeypatch):
    from dlexp import cores

    monkeypatch.setattr(cores, "available_cores", lambda: 2)
    assert cores.core_to_spare() and cores.core_to_spare(1) and not cores.core_to_spare(2)
    monkeypatch.setattr(cores, "available_cores", lambda: 16)
    assert cores.core_to_spare(8) and not cores.core_to_spare(9)
    monkeypatch.setattr(cores, "available_cores", lambda: 1)
    assert not cores.core_to_spare()
