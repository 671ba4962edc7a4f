"""The config a run was started with, as the run directory keeps it: ``config.yaml`` (resolved, with
the dlexp version) and, in every resumable checkpoint, its JSON record and digest, so that resume
refuses a checkpoint whose config has changed since, naming the first field that differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dlexp import __version__
from dlexp.config import ExperimentConfig, resolved_dict
from dlexp.errors import DlexpError
from dlexp.rundir.schema import CONFIG_DIGEST, CONFIG_RECORD


def resolved_config_text(cfg: ExperimentConfig, base_dir: Path, run_dir: Path) -> str:
    data = resolved_dict(cfg)
    if data["data"].get("path"):
        absolute = (Path(base_dir) / data["data"]["path"]).resolve()
        try:
            data["data"]["path"] = os.path.relpath(absolute, Path(run_dir).resolve())
        except ValueError:
            data["data"]["path"] = str(absolute)
    data["dlexp_version"] = __version__
    header = f"# dlexp {__version__}: resolved config; `dlexp train` on this file reproduces the run.\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def config_record(cfg: ExperimentConfig) -> dict[str, np.ndarray]:
    """The run's config as checkpoints record it: the resolved config as JSON (``meta.config``, to name
    what changed) and its SHA-256 (``meta.config_sha256``). The dlexp version is left out: it does not
    change the run. ``cfg`` is the config as read back from the run's ``config.yaml``."""
    data = resolved_dict(cfg)
    data.pop("dlexp_version", None)
    text = json.dumps(data, separators=(",", ":"))
    return {CONFIG_RECORD: np.array(text), CONFIG_DIGEST: np.array(hashlib.sha256(text.encode()).hexdigest())}


def first_difference(old: Any, new: Any, loc: tuple = ()) -> tuple | None:
    """The path of the first place where two JSON values differ (None if equal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            if key not in old or key not in new:
                return (*loc, key)
            found = first_difference(old[key], new[key], (*loc, key))
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            found = first_difference(a, b, (*loc, i))
            if found is not None:
                return found
        return None
    return None if old == new and type(old) is type(new) else loc


def check_config_record(arrays: dict[str, np.ndarray], ckpt: Path, current: dict[str, np.ndarray],
                        config_path: Path) -> None:
    """DlexpError unless the checkpoint was written for the config now in ``config_path``."""
    from dlexp.config import _format_loc, _short_repr

    recorded, digest = arrays.get(CONFIG_RECORD), arrays.get(CONFIG_DIGEST)
    if recorded is None or digest is None:
        raise DlexpError(f"{ckpt}: holds no record of the config it was trained with (written by an older "
                         "dlexp?); start a new run")
    text = str(recorded)
    if hashlib.sha256(text.encode()).hexdigest() != str(digest):
        raise DlexpError(f"{ckpt}: its config record does not match its digest; the checkpoint is damaged")
    if str(current[CONFIG_DIGEST]) == str(digest):
        return
    old, new = json.loads(text), json.loads(str(current[CONFIG_RECORD]))
    loc = first_difference(old, new) or ()
    pick = [old, new]
    for part in loc:
        pick = [v[part] if isinstance(v, (dict, list)) and (part in v if isinstance(v, dict) else part < len(v))
                else "(absent)" for v in pick]
    raise DlexpError(f"{config_path}: {_format_loc(loc) or '(top level)'} is {_short_repr(pick[1])} but the "
                     f"checkpoint was trained with {_short_repr(pick[0])}; restore the file, or start a new run "
                     f"with `dlexp train {config_path}`")
