import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session", autouse=True)
def torch_cache_under_basetemp(tmp_path_factory):
    """The torch parity tests make torch create its inductor cache folder, by default in the temporary
    folder; the suite keeps it in pytest's own (the suite leaves nothing in the temporary folder)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "torchinductor"))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``dlexp ARGS`` in-process through the real entry point (error handling included)."""
    from dlexp.cli.app import main

    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def run_subprocess(*args, cwd=None, timeout=120, env=None) -> CliResult:
    full_env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(REPO))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "dlexp", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


TINY = """\
name: tiny
seed: 3
data: {source: synthetic, kind: moons, n_samples: 120, noise: 0.2}
model: {hidden: [8, 8], activation: tanh}
training: {epochs: 3, batch_size: 16, optimizer: {name: adam, lr: 0.01}}
"""


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    return write_config(tmp_path / "tiny.yaml", TINY)


DEEP_SIGMOID = """\
name: deep
seed: 1
data: {source: synthetic, kind: moons, n_samples: 96, noise: 0.2}
model: {depth: 6, width: 8, activation: sigmoid, init: xavier_uniform}
training: {epochs: 3, batch_size: 32, optimizer: {name: sgd, lr: 0.1}}
"""


def invoke(*args) -> tuple[int, str, str]:
    """``dlexp ARGS`` in-process through the real entry point, usable outside a test function (module
    fixtures): returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from dlexp.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def deep_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished run, a sweep (2 points × 2 seeds) with its printed table, and a killed copy of the run."""
    root = tmp_path_factory.mktemp("share")
    config = root / "deep.yaml"
    config.write_text(DEEP_SIGMOID)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_COLOR", "1")
        code, _, err = invoke("train", config, "--runs-dir", root / "runs", "--quiet")
        assert code == 0, err
        code, sweep_out, err = invoke("sweep", config, "--grid", "training.optimizer.lr=0.1,0.5", "--seeds",
                                      "2", "--jobs", "1", "--runs-dir", root / "runs", "--wide")  # every column
        assert code == 0, err
    run = next((root / "runs").glob("deep-*"))
    sweep = next((root / "runs" / "sweeps").glob("deep-*"))
    killed = root / "killed"
    shutil.copytree(run, killed)
    (killed / "summary.json").unlink()
    for name in ("metrics.csv", "grad_norms.csv"):
        with open(killed / name, "a") as fh:
            fh.write("4,99,0.5")  # a torn last line, as a SIGKILL mid-write would leave
    return {"root": root, "run": run, "sweep": sweep, "killed": killed, "sweep_out": sweep_out}
