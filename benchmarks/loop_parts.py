"""Parts of the training loop's cost, measured in one process with paired, alternating blocks:

1. per-step logging: blocks of training steps on W1 and W2 with a run writer attached, logging every
   step (``grad_every: 1``: per-layer statistics, rows, CSV text) against logging off;
2. checkpoints: `dlexp train`'s loop on digits (200 epochs), a checkpoint after every epoch against
   none (``checkpoint_every: 0``);
3. the process that makes the step log's text: what starting it costs, how soon it is ready, and
   what a block's text costs here and through it.

    python benchmarks/loop_parts.py                       # this checkout
    python benchmarks/loop_parts.py --repo /path/to/old   # another checkout of dlexp, to compare

Blocks a fraction of a second apart cancel most of a shared machine's speed swings, which whole
CLI runs (benchmarks/loop.py) do not. One BLAS thread.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy is imported

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {
    "W1": {"n_in": 2, "hidden": [32] * 10, "n_out": 1, "act": "sigmoid", "loss": "bce", "batch": 64, "steps": 250,
           "dtype": "float64"},
    "W2": {"n_in": 784, "hidden": [256, 256], "n_out": 10, "act": "relu", "loss": "sparse_cce", "batch": 128,
           "steps": 40, "dtype": "float32"},
}
METRICS_ROW = ["train_loss", "val_loss", "train_acc", "val_acc", "penalty", "lr", "grad_norm_total"]


def logging_ratio(name: str, pairs: int) -> list[float]:
    """Per pair: time of a block of steps logging every step / the same block with logging off."""
    import numpy as np

    from dlexp.experiment import RunWriter
    from dlexp.nn import MLP, make_loss
    from dlexp.optim import make_optimizer
    from dlexp.optim.schedules import make_schedule
    from dlexp.trainer import Trainer

    w = WORKLOADS[name]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(w["batch"], w["n_in"])).astype(w["dtype"])
    loss = make_loss(w["loss"])
    targets = loss.targets(rng.integers(0, max(2, w["n_out"]), w["batch"]), w["n_out"], np.dtype(w["dtype"]))
    folder = Path(tempfile.mkdtemp())
    trainers = {}
    for every in (1, 10**9):
        model = MLP(w["n_in"], w["hidden"], w["n_out"], activation=w["act"], init="he_normal", dtype=w["dtype"],
                    output_activation="sigmoid" if w["loss"] == "bce" else "softmax", rng=np.random.default_rng(0))
        run_dir = folder / str(every)
        (run_dir / "checkpoints").mkdir(parents=True)
        writer = RunWriter(run_dir, True, 0, time.perf_counter(), {})
        trainers[every] = Trainer(model, loss, make_optimizer("adam"), make_schedule(None), epochs=1,
                                  batch_size=w["batch"], grad_every=every, shuffle_rng=np.random.default_rng(1),
                                  dropout_rng=np.random.default_rng(2), callbacks=[writer])

    def block(every: int) -> float:
        trainer = trainers[every]
        start = time.perf_counter()
        for _ in range(w["steps"]):
            trainer._train_step(X, targets)
        if hasattr(trainer, "_hand_over_steps"):  # the bulk step log (older checkouts write row by row)
            trainer._hand_over_steps()
        trainer.callbacks[0].on_epoch({"epoch": 0, "step": 0, **dict.fromkeys(METRICS_ROW, 0.0)})
        return time.perf_counter() - start

    ratios = []
    with np.errstate(all="ignore"):
        block(1), block(10**9)
        for i in range(pairs):
            first, second = (1, 10**9) if i % 2 else (10**9, 1)
            times = {first: block(first)}
            times[second] = block(second)
            ratios.append(times[1] / times[10**9])
    return ratios


def checkpoint_seconds(repo: Path, pairs: int) -> list[tuple[float, float]]:
    """Per pair: digits' loop seconds with a checkpoint after every epoch, and with none."""
    from dlexp import experiment
    from dlexp.config import validate_mapping

    def loop(every: int) -> float:
        training = {"epochs": 200, "batch_size": 200, "optimizer": {"name": "adam", "lr": 0.001},
                    "checkpoint_every": every}
        config = {"name": "digits", "seed": 0, "model": {"hidden": [100], "activation": "relu", "init": "he_normal"},
                  "data": {"source": "csv", "path": str(repo / "data" / "digits.csv"), "target": "digit",
                           "val_fraction": 0.2, "test_fraction": 0.2}, "training": training}
        try:  # a checkout with checkpoint_every_s: no wait between checkpoints
            cfg = validate_mapping({**config, "training": {**training, "checkpoint_every_s": 0}}, "digits")
        except Exception:
            cfg = validate_mapping(config, "digits")
        with tempfile.TemporaryDirectory() as folder:
            result = experiment.run(cfg, base_dir=Path("."), runs_dir=Path(folder))
            return float((result.run_dir / "timing.csv").read_text().strip().split("\n")[-1].split(",")[-1])

    out = []
    for i in range(pairs):
        if i % 2:
            every, never = loop(1), loop(0)
        else:
            never, every = loop(0), loop(1)
        out.append((every, never))
    return out


def format_process_costs(repeats: int) -> dict[str, float] | None:
    """The second process that makes the step log's text (dlexp.rundir.formatproc), on W1-shaped
    blocks of 73 steps (22 gradient rows and 11 layer rows a step, 64 KiB of numbers): medians over
    ``repeats`` fresh children of its start in this process (ms), the time until it is ready (ms),
    a block's text made here (µs a number), and a block sent to the ready child and its text taken
    back at once (ms; in a run the child works while the next block trains). None: a checkout without it."""
    import numpy as np

    try:
        from dlexp.rundir.formatproc import FormatProcess, InlineText
    except ImportError:
        return None
    from dlexp.rundir.steplog import StepLog

    rng = np.random.default_rng(0)
    log = StepLog([layer for layer in range(11) for _ in "Wb"], ["W", "b"] * 11, ["sigmoid"] * 11, capacity=73)
    log.count = 73
    log.steps[:] = np.arange(1, 74)
    log.epochs[:] = 1
    log.grads[:] = rng.lognormal(-5, 3, log.grads.shape)
    log.layers[:] = rng.uniform(0, 1, log.layers.shape)
    message, layout = log.message(), log.layout()
    numbers = log.grads.size + log.layers.size
    costs: dict[str, list[float]] = {"start_ms": [], "ready_ms": [], "here_us_per_number": [], "child_block_ms": []}
    for _ in range(repeats):
        here = InlineText(layout)
        start = time.perf_counter()
        here.submit(message)
        here.take()
        costs["here_us_per_number"].append((time.perf_counter() - start) / numbers * 1e6)
        child = FormatProcess(layout, start_values=0)
        start = time.perf_counter()
        child._start()
        costs["start_ms"].append((time.perf_counter() - start) * 1e3)
        while not child._poll_ready():
            time.sleep(0.0005)
        costs["ready_ms"].append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        child.submit(message)
        child.take()
        costs["child_block_ms"].append((time.perf_counter() - start) * 1e3)
        child.close()
    return {k: statistics.median(v) for k, v in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--checkpoint-pairs", type=int, default=2)
    parser.add_argument("--format-repeats", type=int, default=9)
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    print(f"dlexp from {args.repo.resolve()}; one BLAS thread")
    for name in WORKLOADS:
        ratios = logging_ratio(name, args.pairs)
        q1, q3 = statistics.quantiles(ratios, n=4)[0], statistics.quantiles(ratios, n=4)[2]
        print(f"{name}: steps logging every step / logging off: median {statistics.median(ratios):.3f} "
              f"(quartiles {q1:.3f}-{q3:.3f}, {len(ratios)} pairs)")
    for every, never in checkpoint_seconds(args.repo.resolve(), args.checkpoint_pairs):
        print(f"digits loop: {every:.2f} s with a checkpoint after every epoch, {never:.2f} s with none")
    costs = format_process_costs(args.format_repeats)
    if costs is not None:
        print(f"formatting process (medians of {args.format_repeats}): start {costs['start_ms']:.2f} ms here, "
              f"ready after {costs['ready_ms']:.1f} ms; a W1 block of 73 steps: text made here "
              f"{costs['here_us_per_number']:.2f} µs a number, sent to the child and taken back at once "
              f"{costs['child_block_ms']:.1f} ms")


if __name__ == "__main__":
    main()
