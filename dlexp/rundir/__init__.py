"""Run directories: declared once, created exclusively, written crash-safely, read back by reports.

Layout of ``RUNS_DIR/<name>-<YYYYmmdd-HHMMSS>[-k]/``::

    config.yaml        resolved config (+ dlexp version); `dlexp train` on it reproduces the run
    metrics.csv        one row per epoch (epoch 0 = at initialisation)
    grad_norms.csv     one row per (logged step, layer, param)
    layer_stats.csv    one row per (logged step, layer)
    histograms.csv     one row per (histogram step, layer, kind, non-empty bin); only with
                       logging.histograms_every > 0
    timing.csv         wall-clock seconds per epoch (kept apart so metrics.csv is byte-reproducible)
    steps.csv          one row per step: lr and mini-batch loss (per-step schedules only: the range test)
    summary.json       status: running | completed | interrupted | diverged | failed
    checkpoints/       init.npz, last.npz (resumable state), final.npz
    .lock              held (``flock``) by the one process writing the directory; holds its pid

Where each part lives:

- :mod:`~dlexp.rundir.schema`: every file's columns and types, the summary's fields, the checkpoint's keys;
- :mod:`~dlexp.rundir.csvlog`: how a number is written, the append-only CSV log, and the reader
  that cuts a CSV back to a checkpoint;
- :mod:`~dlexp.rundir.files`: atomic writes (JSON, text, npz), unique folders, the run lock;
- :mod:`~dlexp.rundir.summary`: summary.json and the per-layer means read back from the CSVs;
- :mod:`~dlexp.rundir.writer`: the training listener that writes the CSVs and checkpoints;
- :mod:`~dlexp.rundir.record`: the config as the run keeps it (config.yaml, the checkpoint's record).
"""

from dlexp.rundir.schema import (
    CONFIG,
    GRAD_COLUMNS,
    GRAD_NORMS,
    HISTOGRAM_COLUMNS,
    HISTOGRAMS,
    LAYER_COLUMNS,
    LAYER_STATS,
    LOCK,
    METRICS,
    STEP_COLUMNS,
    STEPS,
    SUMMARY,
    TEXT_COLUMNS,
    TIMING,
    TIMING_COLUMNS,
    metrics_columns,
    split_metric_columns,
)

# The schema is plain Python; the writers and readers import numpy, so they load on first use
# (``dlexp --help`` reads the metric names through the CLI's checks and must not import numpy).
_LAZY = {
    "csvlog": ("CsvLog", "csv_field", "format_value", "rows_up_to"),
    "files": ("RunLock", "atomic_write", "create_run_dir", "create_unique_dir", "json_safe", "save_npz_atomic",
              "write_json_atomic", "write_text_atomic"),
    "summary": ("build_summary", "grad_ratio", "grad_ratios", "is_run_dir", "layer_epoch_means", "read_summary",
                "versions", "write_summary"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dlexp.rundir' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"dlexp.rundir.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CONFIG", "GRAD_COLUMNS", "GRAD_NORMS", "HISTOGRAMS", "HISTOGRAM_COLUMNS", "LAYER_COLUMNS", "LAYER_STATS", "LOCK",
    "METRICS", "STEPS", "STEP_COLUMNS", "SUMMARY", "TEXT_COLUMNS", "TIMING", "TIMING_COLUMNS", "CsvLog", "RunLock",
    "atomic_write", "build_summary", "create_run_dir", "create_unique_dir", "csv_field", "format_value", "grad_ratio",
    "grad_ratios", "is_run_dir", "json_safe", "layer_epoch_means", "metrics_columns", "read_summary", "rows_up_to",
    "save_npz_atomic", "split_metric_columns", "versions", "write_json_atomic", "write_summary", "write_text_atomic",
]
