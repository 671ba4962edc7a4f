"""A plain (non-editable) install runs the gallery from any folder: the wheel carries configs/ and data/."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import REPO

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "dlexp", "configs", "data")


def _run(argv, cwd, scratch, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(NO_COLOR="1", MPLBACKEND="Agg", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               TMPDIR=str(scratch))
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_a_quick_gallery_claim_from_another_folder(tmp_path):
    source = tmp_path / "src"  # a copy, so that building leaves nothing in the checkout
    source.mkdir()
    scratch = tmp_path / "tmp"  # the temporary folder of every command below; left empty at the end
    scratch.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source],
         tmp_path, scratch)
    wheel = next(wheels.glob("dlexp-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", venv], tmp_path, scratch)
    python, dlexp = venv / "bin" / "python", venv / "bin" / "dlexp"
    _run([python, "-m", "pip", "install", "--no-deps", "--force-reinstall", wheel], tmp_path, scratch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", "import dlexp, dlexp.gallery.core as c; print(dlexp.__file__); print(c.REPO)"],
                 elsewhere, scratch).split()
    assert where[0].startswith(str(venv)) and where[1].startswith(str(venv)), where  # not the checkout
    bundled = venv.joinpath(where[1])
    for name in ("configs/gallery/vanishing_depth.yaml", "configs/quickstart.yaml", "data/iris.csv",
                 "data/gallery/sparse.csv", "data/gallery/diabetes-clean.csv"):
        assert (bundled / name).is_file(), name
    out = _run([dlexp, "gallery", "--quick", "--only", "1", "--jobs", "1", "--out", tmp_path / "page",
                "--runs-dir", tmp_path / "runs"], elsewhere, scratch, timeout=600)
    assert "direction ok" in out and (tmp_path / "page" / "experiments.md").is_file()
    assert not any(elsewhere.iterdir())  # everything went where --out and --runs-dir said
    assert not any(scratch.iterdir())  # the wheel build, the install and the gallery left no temporary files
