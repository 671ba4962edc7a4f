"""Engine speed: milliseconds per training step (forward + backward + Adam) and the cost of the
per-layer statistics, for the three workloads of the engine issue, in float64 and float32, side by
side with PyTorch eager (default Adam) when torch is installed.

    python benchmarks/engine.py            # all workloads (W3 takes ~1 minute)
    python benchmarks/engine.py --quick    # W1 and W2 only

Workloads: W1 2 → 10×32 sigmoid → 1, BCE, batch 64; W2 784 → 256 → 256 → 10 relu, CCE, batch 128;
W3 1024 → 2048 → 2048 → 10 relu, CCE, batch 512. Milliseconds are medians over repeats of a block
of steps. Ratios are medians of paired ratios: in each repeat every contender runs one block, back
to back (order alternating), and the ratio of two blocks from the same repeat is taken, so the
machine's speed swings cancel out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from dlexp.nn import MLP, make_loss
from dlexp.optim import make_optimizer
from dlexp.optim.schedules import make_schedule
from dlexp.trainer import Trainer

WORKLOADS = {
    "W1": {"n_in": 2, "hidden": [32] * 10, "n_out": 1, "act": "sigmoid", "loss": "bce", "batch": 64, "steps": 400},
    "W2": {"n_in": 784, "hidden": [256, 256], "n_out": 10, "act": "relu", "loss": "sparse_cce", "batch": 128, "steps": 60},
    "W3": {"n_in": 1024, "hidden": [2048, 2048], "n_out": 10, "act": "relu", "loss": "sparse_cce", "batch": 512, "steps": 4},
}


def make_trainer(w, dtype, grad_every):
    rng = np.random.default_rng(0)
    model = MLP(w["n_in"], w["hidden"], w["n_out"], activation=w["act"], init="he_normal",
                output_activation="sigmoid" if w["loss"] == "bce" else "softmax", dtype=dtype, rng=rng)
    loss = make_loss(w["loss"])
    trainer = Trainer(model, loss, make_optimizer("adam"), make_schedule(None), epochs=1, batch_size=w["batch"],
                      grad_every=grad_every, shuffle_rng=np.random.default_rng(1), dropout_rng=np.random.default_rng(2))
    X = rng.normal(size=(w["batch"], w["n_in"])).astype(dtype)
    labels = rng.integers(0, max(2, w["n_out"]), w["batch"])
    t = loss.targets(labels, w["n_out"], np.dtype(dtype))
    return trainer, X, t


def time_block(step, steps, settle=0.0):
    time.sleep(settle)  # let the previous contender's idle BLAS / OpenMP threads stop spinning
    step()  # warm-up: allocate workspaces
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def dlexp_step(w, dtype, stats: bool, grad_every: int = 1):
    trainer, X, t = make_trainer(w, dtype, grad_every=grad_every if stats else 10**9)
    if not stats:
        trainer.step = 1  # step 1 is always logged; start past it
    trainer.callbacks = []
    return lambda: trainer._train_step(X, t)


def optimizer_only_step(w, dtype):
    """The Adam step alone, over the workload's flat parameters (its gradient buffer is scratch,
    so each call steps on the previous call's update: finite values of the usual size)."""
    trainer, X, t = make_trainer(w, dtype, grad_every=10**9)
    trainer._train_step(X, t)
    model = trainer.model
    return lambda: trainer.optimizer.step(model.params, model.grads, trainer.opt_state, 1e-3)


def matmul_only_step(w, dtype):
    """The matmul-bound floor: just the forward and backward matrix products of one step."""
    rng = np.random.default_rng(0)
    sizes = [w["n_in"], *w["hidden"], w["n_out"]]
    n = w["batch"]
    Ws = [rng.normal(size=(a, b)).astype(dtype) for a, b in itertools.pairwise(sizes)]
    acts = [rng.normal(size=(n, s)).astype(dtype) for s in sizes]
    gWs = [np.empty_like(W) for W in Ws]

    def step():
        for k, W in enumerate(Ws):
            np.matmul(acts[k], W, out=acts[k + 1])
        for k in range(len(Ws) - 1, -1, -1):
            np.matmul(acts[k].T, acts[k + 1], out=gWs[k])
            if k:
                np.matmul(acts[k + 1], Ws[k].T, out=acts[k])

    return step


def flops_per_step(w):
    sizes = [w["n_in"], *w["hidden"], w["n_out"]]
    return 2 * w["batch"] * sum(a * b for a, b in itertools.pairwise(sizes)) * 3  # fwd + 2 bwd matmuls


def torch_step(w, dtype):
    import torch

    torch.manual_seed(0)
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    sizes = [w["n_in"], *w["hidden"], w["n_out"]]
    layers = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b, dtype=tdtype))
        if k < len(sizes) - 2:
            layers.append(torch.nn.Sigmoid() if w["act"] == "sigmoid" else torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters())
    X = torch.randn(w["batch"], w["n_in"], dtype=tdtype)
    if w["loss"] == "bce":
        y = torch.randint(0, 2, (w["batch"], 1)).to(tdtype)
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        y = torch.randint(0, w["n_out"], (w["batch"],))
        loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(X), y).backward()
        opt.step()

    return step


def paired(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over repeats of times[a] / times[b]: each ratio is of two blocks measured in the same
    repeat, so the machine's speed swings (common on shared machines) cancel out."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="W1 and W2 only")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settle", type=float, default=0.25,
                        help="seconds to pause before each block: OpenBLAS's idle threads spin for about "
                             "0.1 s after a matmul and slow whichever contender runs next (default 0.25)")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(2)
        have_torch = True
    except ImportError:
        have_torch = False
    names = ["W1", "W2"] if args.quick else ["W1", "W2", "W3"]
    print(f"numpy {np.__version__}; torch {f'{torch.__version__}' if have_torch else 'not installed'}")
    print(f"{'workload':8} {'dtype':7} {'torch ms':>9} {'dlexp ms':>9} {'+stats ms':>10} {'speedup':>8} "
          f"{'stats %':>8} {'every 10':>8} {'GFLOP/s':>8} {'vs matmul':>9} {'torch vs mm':>11} {'adam / mm':>9}")
    for name in names:
        w = WORKLOADS[name]
        for dtype in ("float64", "float32"):
            contenders = {"dlexp": dlexp_step(w, dtype, False), "stats": dlexp_step(w, dtype, True),
                          "stats10": dlexp_step(w, dtype, True, grad_every=10),
                          "matmul": matmul_only_step(w, dtype), "adam": optimizer_only_step(w, dtype)}
            if have_torch:
                contenders["torch"] = torch_step(w, dtype)
            times = {k: [] for k in contenders}
            for r in range(args.repeats):
                order = list(contenders.items())
                for key, step in order if r % 2 == 0 else reversed(order):  # interleaved, order alternated
                    times[key].append(time_block(step, w["steps"], args.settle))
            med = {k: statistics.median(v) for k, v in times.items()}

            speedup = paired(times, "torch", "dlexp") if have_torch else float("nan")
            overhead = (paired(times, "stats", "dlexp") - 1) * 100
            overhead10 = (paired(times, "stats10", "dlexp") - 1) * 100
            gflops = flops_per_step(w) / (med["dlexp"] * 1e-3) / 1e9
            print(f"{name:8} {dtype:7} {med.get('torch', float('nan')):9.3f} {med['dlexp']:9.3f} {med['stats']:10.3f} "
                  f"{speedup:7.2f}x {overhead:7.1f}% {overhead10:7.1f}% {gflops:8.1f} {paired(times, 'dlexp', 'matmul'):8.2f}x "
                  f"{paired(times, 'torch', 'matmul') if have_torch else float('nan'):10.2f}x "
                  f"{paired(times, 'adam', 'matmul') * 100:8.1f}%")
    print("ratios are medians of ratios paired within each repeat (the ms columns are plain medians)")
    print("speedup = torch ms / dlexp ms (no statistics); stats % = cost of per-layer statistics every step;")
    print("every 10 = the same with logging.grad_every: 10;")
    print("vs matmul = dlexp ms / time of the step's matrix products alone (the matmul-bound floor);")
    print("torch vs mm = the same for torch; adam / mm = dlexp's Adam step alone / the matmul floor")


if __name__ == "__main__":
    main()
