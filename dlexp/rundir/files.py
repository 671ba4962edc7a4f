"""Files written whole: a temporary file renamed into place (JSON, text, ``.npz``), run and sweep
folders created exclusively, and the one-writer lock of a run directory.

Every file dlexp writes other than the run's CSVs (JSON, YAML, npz, PNG, report CSVs) goes
through :func:`atomic_write`.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import math
import os
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dlexp.errors import DlexpError
from dlexp.rundir.schema import CHECKPOINTS, LOCK

_TMP_NUMBERS = itertools.count()


@contextmanager
def atomic_write(path: Path, binary: bool = False) -> Iterator[IO]:
    """A file object whose content replaces ``path`` only when the block ends without an error.

    It writes a new temporary file next to ``path`` (created exclusively, so nothing already there, a
    symlink included, is written through), then fsyncs it and renames it over ``path``. The rename
    replaces a symlink at ``path`` rather than writing into its target. A folder at ``path`` is refused
    (DlexpError) before anything is created, and on any error the temporary file is removed, so no
    ``*.tmp`` is left behind. Text is UTF-8 with ``\\n`` line ends on every system.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise DlexpError(f"{path}: is a directory; expected the name of a file to write")
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{next(_TMP_NUMBERS)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    with atomic_write(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=_json_value, allow_nan=False)
        fh.write("\n")


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)


def _json_value(obj):
    import numpy as np  # imported when needed: the CLI's start-up does not load NumPy

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def create_unique_dir(parent: Path, name: str, now: float | None = None, what: str = "--runs-dir") -> Path:
    """Make a fresh ``parent/<name>-<YYYYmmdd-HHMMSS>[-k]`` folder; never reuses one (mkdir is exclusive),
    so two runs started in the same second with the same name get different folders."""
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise DlexpError(f"{what} {parent}: is a file; expected a folder for run directories")
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
    for k in range(10_000):
        candidate = parent / (base if k == 0 else f"{base}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise DlexpError(f"{what} {parent}: could not create a new folder named {base}-*")


def create_run_dir(runs_dir: Path, name: str, now: float | None = None) -> Path:
    """A fresh run directory with its ``checkpoints/`` folder."""
    run_dir = create_unique_dir(runs_dir, name, now)
    (run_dir / CHECKPOINTS).mkdir()
    return run_dir


class RunLock:
    """The one-writer lock of a run directory: an exclusive ``flock`` on ``.lock``, holding the writer's pid.

    ``flock`` belongs to the open file, so the kernel drops it when its process ends, however it ends:
    a lock left by a killed run is no obstacle. The file itself stays (deleting it would let two
    processes lock two different files of the same name).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise DlexpError(f"{self.path.parent}: another dlexp process ({holder}) is writing this run; "
                             "wait for it to end or stop it, then retry") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _lock_holder(fd: int) -> str:
    """``pid N`` from a held lock file ("pid unknown" if its holder has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return f"pid {int(text)}" if text.isdigit() else "pid unknown"


def save_npz_atomic(path: str | Path, arrays: dict[str, Any]) -> None:
    """Write an ``.npz`` that ``np.load`` reads, byte-for-byte reproducible, atomically.

    ``np.savez`` stamps the current time into the zip; here every member gets a fixed date so the
    same arrays give the same bytes. Written through :func:`atomic_write`.
    """
    import numpy as np

    with atomic_write(Path(path), binary=True) as fh, \
            zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
