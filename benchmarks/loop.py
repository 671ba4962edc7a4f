"""The whole training loop: `dlexp train` against a plain torch.optim loop and scikit-learn's
``MLPClassifier.fit`` on the same rows, and dlexp with per-step logging against logging off.

    python benchmarks/loop.py                  # W1, W2 and digits, 5 alternating repeats
    python benchmarks/loop.py --repeats 9 --workloads W1

Workloads (issue 18): W1 2 → 10×32 sigmoid → 1, BCE, batch 64, 16,000 training rows (moons), 3 epochs,
Adam, float64; W2 784 → 256 → 256 → 10 relu, CCE, batch 128, 8,000 training rows (blobs), 3 epochs,
Adam, float32; digits 64 → 100 relu → 10, CCE, batch 200, 1,078 training rows, 200 epochs, Adam.

Every contender runs in its own process with one BLAS thread (OPENBLAS_NUM_THREADS=1, torch with one
thread), on the training split dlexp's own data pipeline produces for the config. Times:

- dlexp: the training loop as ``timing.csv``'s last ``elapsed_s`` (evaluation, logging and checkpoints
  included; start-up, data loading and the run directory's creation not), with the config's defaults
  (``grad_every: 1``; the step log's text made in a second process where a core is free); with logging
  off (``grad_every`` above the number of steps: only step 1 logged); with the defaults but the text
  made in the training process (``DLEXP_FORMAT_PROCESS=0``); and with logging off and the splits
  evaluated only before training and after the last epoch (``eval_every`` = epochs), the closest
  dlexp comes to the work torch's loop and scikit-learn's ``fit`` do (neither evaluates anything);
- torch: epochs of shuffled mini-batches (forward, loss, backward, ``torch.optim.Adam`` step), nothing else;
- sklearn: ``MLPClassifier(solver="adam").fit`` with the same architecture, batch size, epochs and lr,
  no L2 (``alpha=0``), no early stopping.

In each repeat every contender runs once, in an order that alternates between repeats; ratios are
taken within a repeat and the median of those paired ratios is reported (shared machines change
speed from one minute to the next), with their range and the ratio of each contender's best time
(the least disturbed run of each). torch and scikit-learn are skipped where not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORKLOADS = {
    "W1": {"config": {"name": "w1", "seed": 0, "dtype": "float64",
                      "data": {"source": "synthetic", "kind": "moons", "n_samples": 20000, "noise": 0.15,
                               "val_fraction": 0.2},
                      "model": {"hidden": [32] * 10, "activation": "sigmoid", "init": "xavier_uniform"},
                      "training": {"epochs": 3, "batch_size": 64, "loss": "bce",
                                   "optimizer": {"name": "adam", "lr": 0.001}}},
           "torch": True},
    "W2": {"config": {"name": "w2", "seed": 0, "dtype": "float32",
                      "data": {"source": "synthetic", "kind": "blobs", "n_samples": 10000, "n_features": 784,
                               "n_classes": 10, "val_fraction": 0.2},
                      "model": {"hidden": [256, 256], "activation": "relu", "init": "he_normal"},
                      "training": {"epochs": 3, "batch_size": 128, "loss": "cce",
                                   "optimizer": {"name": "adam", "lr": 0.001}}},
           "torch": True},
    "digits": {"config": {"name": "digits", "seed": 0, "dtype": "float64",
                          "data": {"source": "csv", "path": str(REPO / "data" / "digits.csv"), "target": "digit",
                                   "val_fraction": 0.2, "test_fraction": 0.2},
                          "model": {"hidden": [100], "activation": "relu", "init": "he_normal"},
                          "training": {"epochs": 200, "batch_size": 200, "loss": "cce",
                                       "optimizer": {"name": "adam", "lr": 0.001}}},
               "torch": False},
}

ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NO_COLOR="1",
           PYTHONPATH=str(REPO))


def _config_file(folder: Path, name: str, overrides: dict | None = None) -> Path:
    import yaml

    config = json.loads(json.dumps(WORKLOADS[name]["config"]))
    for dotted, value in (overrides or {}).items():
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    path = folder / f"{name}-{abs(hash(json.dumps(overrides, sort_keys=True)))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dlexp_loop(folder: Path, name: str, overrides: dict | None = None, env: dict | None = None) -> float:
    """Seconds of `dlexp train`'s loop (timing.csv's last elapsed_s)."""
    config = _config_file(folder, name, overrides)
    runs = Path(tempfile.mkdtemp(dir=folder))
    subprocess.run([sys.executable, "-m", "dlexp", "train", str(config), "--runs-dir", str(runs), "--quiet"],
                   check=True, env={**ENV, **(env or {})}, stdout=subprocess.DEVNULL)
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    last = (run_dir / "timing.csv").read_text().strip().split("\n")[-1]
    return float(last.split(",")[-1])


def _worker(kind: str, name: str, folder: Path) -> float:
    return float(subprocess.run([sys.executable, __file__, "--worker", kind, name, str(folder)], check=True,
                                env=ENV, capture_output=True, text=True).stdout.split()[-1])


def _prepared(name: str, folder: Path):
    from dlexp.config import validate_mapping
    from dlexp.prepare import prepare

    return prepare(validate_mapping(WORKLOADS[name]["config"], name), folder)


def torch_loop(name: str, folder: Path) -> float:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    p = _prepared(name, folder)
    cfg = WORKLOADS[name]["config"]
    dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32
    torch.manual_seed(0)
    sizes = [p.train.X.shape[1], *cfg["model"]["hidden"], p.model.sizes[-1]]
    act = torch.nn.Sigmoid if cfg["model"]["activation"] == "sigmoid" else torch.nn.ReLU
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1], dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(act())
    net = torch.nn.Sequential(*layers)
    X = torch.from_numpy(np.ascontiguousarray(p.train.X))
    if sizes[-1] == 1:
        y = torch.from_numpy(np.ascontiguousarray(p.train.targets)).to(dtype)
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        y = torch.from_numpy(np.asarray(p.train.labels, dtype=np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(net.parameters(), lr=cfg["training"]["optimizer"]["lr"])
    batch = cfg["training"]["batch_size"]
    n = len(X)
    start = time.perf_counter()
    for _ in range(cfg["training"]["epochs"]):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            opt.zero_grad()
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def sklearn_fit(name: str, folder: Path) -> float:
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    p = _prepared(name, folder)
    cfg = WORKLOADS[name]["config"]
    t = cfg["training"]
    model = MLPClassifier(hidden_layer_sizes=tuple(cfg["model"]["hidden"]), activation=(
        "logistic" if cfg["model"]["activation"] == "sigmoid" else "relu"), solver="adam", alpha=0.0,
        batch_size=t["batch_size"], learning_rate_init=t["optimizer"]["lr"], max_iter=t["epochs"], shuffle=True,
        tol=0.0, n_iter_no_change=t["epochs"] + 1, early_stopping=False, random_state=0)
    X = np.ascontiguousarray(p.train.X)
    y = np.asarray(p.train.labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workloads", default="W1,W2,digits")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, name, folder = args.worker
        print(torch_loop(name, Path(folder)) if kind == "torch" else sklearn_fit(name, Path(folder)))
        return
    have_torch, have_sklearn = _available("torch"), _available("sklearn")
    print(f"one BLAS thread per process; {args.repeats} alternating repeats; median of paired ratios"
          f"{'' if have_torch else '; torch not installed: skipped'}"
          f"{'' if have_sklearn else '; scikit-learn not installed: skipped'}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in args.workloads.split(","):
            epochs = WORKLOADS[name]["config"]["training"]["epochs"]
            contenders = {
                "dlexp": lambda n=name: dlexp_loop(folder, n),
                "dlexp, logging off": lambda n=name: dlexp_loop(folder, n, {"logging.grad_every": 10**7}),
                "dlexp, text made here": lambda n=name: dlexp_loop(folder, n, env={"DLEXP_FORMAT_PROCESS": "0"}),
                "dlexp, 2 evaluations, logging off": lambda n=name, e=epochs: dlexp_loop(
                    folder, n, {"logging.grad_every": 10**7, "logging.eval_every": e}),
            }
            if have_torch and WORKLOADS[name]["torch"]:
                contenders["torch"] = lambda n=name: _worker("torch", n, folder)
            if have_sklearn:
                contenders["sklearn fit"] = lambda n=name: _worker("sklearn", n, folder)
            times: dict[str, list[float]] = {k: [] for k in contenders}
            order = list(contenders)
            for r in range(args.repeats):
                for key in (order if r % 2 == 0 else order[::-1]):
                    times[key].append(contenders[key]())
            print(f"\n{name}: median seconds " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in times.items()))
            for other in [k for k in contenders if k != "dlexp"]:
                ratios = [a / b for a, b in zip(times["dlexp"], times[other])]
                print(f"  dlexp / {other}: median {statistics.median(ratios):.3f} "
                      f"(range {min(ratios):.3f}-{max(ratios):.3f}); best / best {min(times['dlexp']) / min(times[other]):.3f}")


if __name__ == "__main__":
    main()
