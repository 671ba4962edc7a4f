"""What each file of a run directory holds, declared once: every CSV's columns and their types, the
summary's fields, the checkpoint's keys.

Writers take their column lists from here and :class:`~dlexp.rundir.csvlog.CsvLog` refuses a row
whose keys differ from its file's columns (:func:`check_row`), so a renamed key is an error, never
an empty column. Readers (resume, reports) use the same declarations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

METRICS = "metrics.csv"
GRAD_NORMS = "grad_norms.csv"
LAYER_STATS = "layer_stats.csv"
TIMING = "timing.csv"
HISTOGRAMS = "histograms.csv"
STEPS = "steps.csv"
SUMMARY = "summary.json"
CONFIG = "config.yaml"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
INIT_CHECKPOINT = "init.npz"  # the weights at initialisation
LAST_CHECKPOINT = "last.npz"  # the resumable state
FINAL_CHECKPOINT = "final.npz"  # the weights of a completed run

INT, FLOAT, TEXT = "int", "float", "text"


@dataclass(frozen=True)
class CsvFile:
    """One CSV of a run directory: its name, its columns with their types, and the counter (``key``)
    that orders its rows and by which resume cuts it back to a checkpoint."""

    name: str
    types: tuple[tuple[str, str], ...]
    key: str

    @property
    def columns(self) -> list[str]:
        return [name for name, _ in self.types]

    def of_type(self, kind: str) -> list[str]:
        return [name for name, t in self.types if t == kind]


GRAD_NORMS_FILE = CsvFile(GRAD_NORMS, (("step", INT), ("epoch", INT), ("layer", INT), ("param", TEXT),
                                       ("grad_norm", FLOAT), ("param_norm", FLOAT), ("update_ratio", FLOAT)), "step")
LAYER_STATS_FILE = CsvFile(LAYER_STATS, (("step", INT), ("epoch", INT), ("layer", INT), ("activation", TEXT),
                                         ("act_mean", FLOAT), ("act_std", FLOAT), ("saturated_fraction", FLOAT),
                                         ("dead_fraction", FLOAT)), "step")
TIMING_FILE = CsvFile(TIMING, (("epoch", INT), ("step", INT), ("elapsed_s", FLOAT)), "epoch")
HISTOGRAMS_FILE = CsvFile(HISTOGRAMS, (("step", INT), ("epoch", INT), ("layer", INT), ("kind", TEXT),
                                       ("bin_low", FLOAT), ("bin_high", FLOAT), ("count", INT)), "step")
STEPS_FILE = CsvFile(STEPS, (("step", INT), ("epoch", INT), ("lr", FLOAT), ("loss", FLOAT)), "step")

GRAD_COLUMNS = GRAD_NORMS_FILE.columns
LAYER_COLUMNS = LAYER_STATS_FILE.columns
TIMING_COLUMNS = TIMING_FILE.columns
HISTOGRAM_COLUMNS = HISTOGRAMS_FILE.columns
STEP_COLUMNS = STEPS_FILE.columns
# the per-step numbers of a gradient row and of a layer row, in their columns' order
GRAD_STATISTICS = tuple(GRAD_NORMS_FILE.of_type(FLOAT))
LAYER_STATISTICS = tuple(LAYER_STATS_FILE.of_type(FLOAT))


def split_metric_names(classification: bool) -> tuple[str, ...]:
    """The metrics of one split (train, val, test), in metrics.csv's order."""
    return ("loss", "acc") if classification else ("loss", "rmse", "mae", "r2")


def split_metric_columns(*splits: str, classification: bool | None = None) -> list[str]:
    """metrics.csv's ``{split}_{metric}`` names, metric by metric, of :func:`split_metric_names`: a
    classifier's (``True``: loss, acc), a regressor's (``False``), or every name either logs (``None``).
    The one source of metric-name lists: summaries, sweep tables, checks and the early-stopping monitor."""
    if classification is None:
        names = dict.fromkeys((*split_metric_names(True), *split_metric_names(False)))
    else:
        names = split_metric_names(classification)
    return [f"{split}_{name}" for name in names for split in splits]


def metrics_file(classification: bool, test: bool = False) -> CsvFile:
    """metrics.csv: one row per epoch, each split's metrics (train, val, and test when there is a test split)."""
    prefixes = ("train", "val", "test") if test else ("train", "val")
    metrics = split_metric_columns(*prefixes, classification=classification)
    names = [*metrics, "penalty", "lr", "grad_norm_total"]
    return CsvFile(METRICS, (("epoch", INT), ("step", INT), *((name, FLOAT) for name in names)), "epoch")


def metrics_columns(classification: bool, test: bool = False) -> list[str]:
    return metrics_file(classification, test).columns


# every column of a run's CSVs holds numbers except these
TEXT_COLUMNS = frozenset(name for f in (GRAD_NORMS_FILE, LAYER_STATS_FILE, HISTOGRAMS_FILE, STEPS_FILE, TIMING_FILE)
                         for name in f.of_type(TEXT))


def check_row(path: Any, columns: Iterable[str], row: Mapping[str, Any]) -> None:
    """ValueError unless ``row`` has exactly the keys ``columns`` (a programming error, not bad input)."""
    expected = set(columns)
    if row.keys() != expected:
        missing = sorted(expected - row.keys())
        unknown = sorted(set(row) - expected)
        raise ValueError(f"{path}: a row's keys differ from the file's columns (missing {missing}, unknown {unknown})")


# summary.json, in the order written. ``running`` while a run is going, ``failed`` after an error
# writing a run file; a finished run's summary has SUMMARY_FIELDS, those marked optional only when
# they apply (``test``: a completed run with a test split; ``signal``: stopped by a signal;
# ``checkpoint_step``: an interrupted run, where --resume continues).
SUMMARY_RUNNING_FIELDS = ("status", "name", "run_dir", "versions")
SUMMARY_FAILED_FIELDS = ("status", "name", "run_dir", "error", "versions")
SUMMARY_FIELDS = ("status", "name", "run_dir", "task", "loss", "optimizer", "lr", "n_params", "epochs", "steps",
                  "stopped_early", "stop_reason", "final", "best", "wall_s", "grad_ratio", "grad_ratio_first_epoch",
                  "divergence", "class_names", "data", "versions", "test", "signal", "checkpoint_step")
SUMMARY_OPTIONAL_FIELDS = frozenset({"stop_reason", "test", "signal", "checkpoint_step"})


def check_summary(summary: Mapping[str, Any]) -> None:
    """ValueError unless ``summary``'s keys are one of the declared kinds, in the declared order."""
    status = summary.get("status")
    if status == "running":
        allowed, required = SUMMARY_RUNNING_FIELDS, set(SUMMARY_RUNNING_FIELDS)
    elif status == "failed":
        allowed, required = SUMMARY_FAILED_FIELDS, set(SUMMARY_FAILED_FIELDS)
    else:
        allowed, required = SUMMARY_FIELDS, set(SUMMARY_FIELDS) - SUMMARY_OPTIONAL_FIELDS
    order = [key for key in allowed if key in summary]
    if list(summary) != order or not required <= summary.keys():
        raise ValueError(f"summary.json ({status}): keys {list(summary)} are not the declared fields "
                         f"{list(allowed)} in order (required {sorted(required)})")


# checkpoints/last.npz: the model's named arrays (``layers.{i}.W`` ...), the optimizer's state
# (``optim.{slot}.{parameter}`` for per-parameter slots, ``optim.{slot}`` otherwise), and these
TRAINER_STATE = "trainer.state"  # JSON text of TRAINER_COUNTERS (+ STOP_RULE_STATE with a stop rule)
TRAINER_PERM = "trainer.perm"  # the current epoch's permutation (empty between epochs)
TRAINER_HAS_PERM = "trainer.has_perm"
ELAPSED = "meta.elapsed_s"  # training seconds before this checkpoint
CONFIG_RECORD = "meta.config"  # the resolved config as JSON
CONFIG_DIGEST = "meta.config_sha256"
ARCHITECTURE = "meta.architecture"  # model checkpoints (init.npz, final.npz): how to rebuild the network
OPTIMIZER_PREFIX = "optim."
# in trainer.state, in this order; ``wait`` and ``best`` are the early-stopping callback's state
TRAINER_COUNTERS = ("step", "epoch", "batch_index", "grad_norm_sum", "grad_norm_count", "wait", "best", "history",
                    "shuffle_rng", "dropout_rng")
STOP_RULE_STATE = "stop_rule"
