"""Everything a run needs, built from a validated config without touching the disk.

``prepare`` does every check that can fail on user input (data, loss/task/output agreement, sizes)
and builds the data splits, model, loss, optimizer and schedule; ``make_trainer`` wires them into a
:class:`~dlexp.trainer.Trainer`.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into four independent generators —
data (synthetic draw and split), init (weights), shuffle (batch order), dropout (masks) — so for a
given seed every optimizer in a comparison starts from the same weights and sees the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlexp.config import ExperimentConfig, check_parameter_count
from dlexp.errors import ConfigError, DataError
from dlexp.nn.losses import make_loss
from dlexp.nn.model import MLP
from dlexp.optim import make_optimizer
from dlexp.optim.schedules import make_schedule
from dlexp.trainer import Callback, Split, Trainer


def make_generators(seed: int) -> dict[str, np.random.Generator]:
    data, init, shuffle, dropout = np.random.SeedSequence(seed).spawn(4)
    return {"data": np.random.default_rng(data), "init": np.random.default_rng(init),
            "shuffle": np.random.default_rng(shuffle), "dropout": np.random.default_rng(dropout)}


@dataclass
class Prepared:
    cfg: ExperimentConfig
    base_dir: Path
    dataset: Any
    model: MLP
    loss: Any
    optimizer: Any
    schedule: Any
    train: Split
    val: Split | None
    test: Split | None
    rngs: dict[str, np.random.Generator]
    loss_name: str = ""


def _first_sentence(exc: Exception) -> str:
    return " ".join(str(exc).split(". ")[0].split())


def _field_error(cfg_path: str, field: str, message: str) -> ConfigError:
    return ConfigError(f"{cfg_path}: {field}: {message}")


def resolve_loss(cfg: ExperimentConfig, task: str, n_classes: int | None, shown: str):
    spec = cfg.training.loss
    if spec == "auto":
        if task == "regression":
            spec = "mse"
        else:
            spec = "bce" if n_classes == 2 else "cce"
    loss = make_loss(spec)
    if loss.classification and task == "regression":
        raise _field_error(shown, "training.loss", f"'{loss.name}' is a classification loss but the data is a "
                           "regression task; use mse, mae or huber")
    if loss.name == "bce" and task == "classification" and n_classes != 2:
        raise _field_error(shown, "training.loss", f"bce is for two classes, the data has {n_classes}; "
                           "use cce or sparse_cce")
    out_act = cfg.model.output_activation
    if out_act == "auto":
        out_act = loss.output_activation
    elif loss.fused and out_act != loss.output_activation:
        raise _field_error(shown, "model.output_activation", f"{loss.name} fuses {loss.output_activation} into the "
                           f"loss; use 'auto' or '{loss.output_activation}' (got '{out_act}')")
    if task == "classification":
        n_outputs = 1 if (loss.name == "bce" or (not loss.fused and n_classes == 2)) else n_classes
    else:
        n_outputs = None
    return loss, out_act, n_outputs


MAX_ACTIVATION_BYTES = 4 * 2**30  # one training batch's forward/backward arrays; refused above this
EVAL_CHUNK = 8192  # rows the trainer evaluates at once


def _check_activation_memory(cfg: ExperimentConfig, n_train: int, n_outputs: int, itemsize: int, shown: str) -> None:
    """Refuse a batch whose activations could not fit in memory, before any is allocated."""
    batch = cfg.training.batch_size
    rows = max(n_train if batch == "full" else min(batch, n_train), min(EVAL_CHUNK, n_train))
    units = sum(cfg.model.hidden_sizes()) + n_outputs
    needed = rows * units * itemsize * 4  # pre-activation, activation, their gradients
    if needed > MAX_ACTIVATION_BYTES:
        raise _field_error(shown, "training.batch_size", f"{rows:,} rows per batch through {units:,} units need "
                           f"about {needed / 2**30:.1f} GiB of activations, above the limit of "
                           f"{MAX_ACTIVATION_BYTES / 2**30:.0f} GiB; use a smaller batch_size or fewer/narrower layers")


def _check_model_size(cfg: ExperimentConfig, n_inputs: int, n_outputs: int, shown: str, bound: str = "") -> None:
    """The parameter count for the data's widths against the cap, before the model exists.

    ``bound="at least "`` when the widths are lower bounds (a CSV's feature columns, counted before any
    is checked or encoded; one-hot encoding can only add inputs).
    """
    where = cfg.data.path if cfg.data.source == "csv" else f"synthetic {cfg.data.kind}"
    why = f"; {n_inputs:,} inputs and {n_outputs:,} outputs from the data, {where}"
    if bound:
        why = f"; {n_inputs:,} feature columns in {where}"
    try:
        check_parameter_count([n_inputs, *cfg.model.hidden_sizes(), n_outputs], cfg.model.batchnorm, bound, why)
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None


def _check_target_memory(dataset, loss, n_outputs: int, itemsize: int, shown: str) -> None:
    """Refuse one-hot targets that could not fit in memory (many rows times many classes)."""
    if dataset.task != "classification" or n_outputs == 1 or loss.name == "sparse_cce":
        return
    rows = len(dataset.X_train) + len(dataset.X_val) + len(dataset.X_test)
    needed = rows * n_outputs * itemsize
    if needed > MAX_ACTIVATION_BYTES:
        raise _field_error(shown, "training.loss", f"one-hot targets for {rows:,} rows x {n_outputs:,} classes "
                           f"need about {needed / 2**30:.1f} GiB, above the limit of "
                           f"{MAX_ACTIVATION_BYTES / 2**30:.0f} GiB; use sparse_cce, or fewer rows or classes")


def prepare(cfg: ExperimentConfig, base_dir: Path, shown: str = "config") -> Prepared:
    """Load data and build model, loss, optimizer and schedule. Raises DlexpError; writes nothing."""
    from dlexp.data import load_data

    rngs = make_generators(cfg.seed)
    try:
        dataset = load_data(cfg.data, Path(base_dir), rngs["data"],
                            check_inputs=lambda n: _check_model_size(cfg, n, 1, shown, "at least "))
    except DataError as exc:
        if cfg.data.source == "csv":
            raise  # names the CSV file as written in the config
        raise DataError(f"{shown}: {exc}") from None  # synthetic data: the config is the file to fix
    if len(dataset.X_train) < 1:
        raise ConfigError(f"{shown}: data: the training split is empty")
    if cfg.data.source == "csv" and cfg.data.delimiter is None:  # the resolved config states what was detected
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"delimiter": dataset.delimiter})})
    task = dataset.task
    loss, out_act, n_outputs = resolve_loss(cfg, task, dataset.n_classes, shown)
    if n_outputs is None:
        n_outputs = dataset.y_train.shape[1]
    batch = cfg.training.batch_size
    if cfg.model.batchnorm and (batch == 1 or len(dataset.X_train) < 2):
        raise _field_error(shown, "training.batch_size", "BatchNorm needs at least 2 samples per batch (got 1)")
    stopping = cfg.training.early_stopping
    if stopping is not None and stopping.monitor.endswith("_acc") and task != "classification":
        raise _field_error(shown, "training.early_stopping.monitor", f"'{stopping.monitor}' needs a classification "
                           "task but the data is regression; use val_loss or train_loss")
    dtype = np.dtype(cfg.dtype)
    _check_model_size(cfg, dataset.X_train.shape[1], n_outputs, shown)
    _check_activation_memory(cfg, len(dataset.X_train), n_outputs, dtype.itemsize, shown)
    _check_target_memory(dataset, loss, n_outputs, dtype.itemsize, shown)
    try:
        model = MLP(dataset.X_train.shape[1], cfg.model.hidden_sizes(), n_outputs,
                    activation=cfg.model.activation, init=cfg.model.init, dropout=cfg.model.dropout,
                    dropout_mode=cfg.model.dropout_mode, norm=cfg.model.normalization(),
                    residual=cfg.model.residual_every(),
                    output_activation=out_act, dtype=cfg.dtype, rng=rngs["init"])
        optimizer = make_optimizer(cfg.training.optimizer)
        schedule = make_schedule(cfg.training.schedule)
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None

    dataset.preprocessing.output_activation = out_act
    dataset.preprocessing.n_outputs = n_outputs

    def split(X, y):
        if len(X) == 0:
            return None
        labels = y if task == "classification" else None
        return Split(np.ascontiguousarray(X, dtype=dtype), loss.targets(y, n_outputs, dtype), labels,
                     dataset.target_std)

    return Prepared(cfg=cfg, base_dir=Path(base_dir), dataset=dataset, model=model, loss=loss,
                    optimizer=optimizer, schedule=schedule, train=split(dataset.X_train, dataset.y_train),
                    val=split(dataset.X_val, dataset.y_val), test=split(dataset.X_test, dataset.y_test),
                    rngs=rngs, loss_name=loss.name)


def make_trainer(p: Prepared, callbacks: list[Callback]) -> Trainer:
    t = p.cfg.training
    return Trainer(p.model, p.loss, p.optimizer, p.schedule, epochs=t.epochs, batch_size=t.batch_size,
                   shuffle=t.shuffle, l1=t.l1, l2=t.l2, clip_grad_norm=t.clip_grad_norm,
                   clip_grad_value=t.clip_grad_value,
                   early_stopping=t.early_stopping.model_dump() if t.early_stopping else None,
                   divergence_loss_factor=t.divergence.loss_factor, divergence_grad_norm=t.divergence.grad_norm_max,
                   grad_every=p.cfg.logging.grad_every, histograms_every=p.cfg.logging.histograms_every,
                   eval_every=p.cfg.logging.eval_every,
                   shuffle_rng=p.rngs["shuffle"], dropout_rng=p.rngs["dropout"], callbacks=callbacks, test=p.test)
