"""How far the shipped configs stay from training.divergence's defaults.

    python benchmarks/divergence_margins.py                 # every configs/*.yaml and configs/gallery/*.yaml
    python benchmarks/divergence_margins.py --epochs 0 configs/iris.yaml   # 0: the configs' own epochs

For each config, trained with both rules off, it prints the worst step: the largest training loss
over the loss at initialisation, and the largest gradient norm (all parameters, before clipping),
each with how many powers of ten separate it from the default (``loss_factor`` 1e6,
``grad_norm_max`` 1e8). The README's "every shipped config stays below 5 × its initial loss and a
gradient norm of 20" is this table (a gallery config is its base run; the gallery varies it).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlexp import experiment
from dlexp.config import DivergenceConfig, config_base_dir, load_config
from dlexp.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--epochs", type=int, default=25, help="cap on each config's epochs (0: no cap)")
    args = parser.parse_args()
    paths = args.configs or [*sorted((ROOT / "configs").glob("*.yaml")),
                             *sorted((ROOT / "configs" / "gallery").glob("*.yaml"))]
    defaults = DivergenceConfig()
    worst = {"loss": 0.0, "norm": 0.0}
    rule = Trainer._exploded

    def watch(trainer, loss_value, total_norm, squares):  # both rules off: see how far each run goes
        initial = trainer.history[0]["train_loss"]
        worst["loss"] = max(worst["loss"], loss_value / initial if initial > 0 else 0.0)
        worst["norm"] = max(worst["norm"], total_norm)

    Trainer._exploded = watch
    print(f"{'config':45} {'status':10} {'loss/initial':>12} {'grad norm':>10} {'decades to default':>19}")
    try:
        with tempfile.TemporaryDirectory() as runs:
            for path in paths:
                worst.update(loss=0.0, norm=0.0)
                cfg = load_config(path)
                if args.epochs:
                    cfg.training.epochs = min(cfg.training.epochs, args.epochs)
                result = experiment.run(cfg, base_dir=config_base_dir(path), runs_dir=Path(runs))
                margin = min(math.log10(defaults.loss_factor / worst["loss"]),
                             math.log10(defaults.grad_norm_max / worst["norm"]))
                print(f"{path.name:45} {result.status:10} {worst['loss']:12.3g} {worst['norm']:10.3g} {margin:19.1f}",
                      flush=True)
    finally:
        Trainer._exploded = rule


if __name__ == "__main__":
    main()
