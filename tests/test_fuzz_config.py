"""Property: for any config mapping and any ``--set``, dlexp runs or refuses in one line — never crashes.

Configs are drawn over the real schema's keys with small valid values (so runs that start are
fast: at most 60 samples, 2 epochs, widths up to 8, depth up to 3), mixed with junk keys and junk
values (None, booleans, extreme ints, NaN/inf/huge floats, strings, lists, nested mappings). The
outcome must be exit 0 (ran), 1 (diverged) or 2 with exactly one ``error:`` line; never a
traceback and never the "internal error" line that marks a bug.
"""

from __future__ import annotations

import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Junk ints are extremes and small edge values only: a mid-range int in a size field (epochs,
# n_samples) would be valid and slow, which tests the machine, not the validation.
JUNK_INTS = st.sampled_from([-(2**70), -1, 0, 1, 2, 10**12, 2**63, 2**64])
JUNK_FLOATS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.5, 0.5, 1.5]),
    st.floats(allow_nan=True, allow_infinity=True),
)
JUNK_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    JUNK_INTS,
    JUNK_FLOATS,
    st.text(max_size=8),
    st.sampled_from(["", "full", "relu", "adam", "1e-3", "nan", "../x", "a/b", "\x00"]),
)
JUNK = st.recursive(
    JUNK_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def usually(valid: st.SearchStrategy) -> st.SearchStrategy:
    """The valid strategy 4 times in 5, junk otherwise."""
    return st.integers(0, 4).flatmap(lambda k: JUNK if k == 0 else valid)


def section(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Any subset of the section's keys, sometimes with a junk key added."""
    base = st.fixed_dictionaries({}, optional={key: usually(value) for key, value in fields.items()})
    extra = st.dictionaries(
        st.sampled_from(["junk", "activaton", "lr", "epoch", "depht", "1"]), JUNK, max_size=1
    )
    return st.tuples(base, st.integers(0, 9), extra).map(lambda t: {**t[0], **t[2]} if t[1] == 0 else t[0])


small_float = st.floats(0, 1, allow_nan=False)
ACTIVATIONS = [
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "softplus",
    "silu",
    "selu",
    "gelu",
    "relu6",
    "rleu",
]
INITS = [
    "xavier_uniform",
    "xavier_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "normal",
    "uniform",
    "torch_default",
    "zeros",
]
OPTIMIZERS = [
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "adamax",
    "adadelta",
    "rmsprop",
    "adagrad",
    "nadam",
    "adma",
]

DATA = section(
    {
        "source": st.sampled_from(["synthetic", "synthetic", "csv", "excel"]),
        "kind": st.sampled_from(["moons", "circles", "spirals", "blobs", "xor", "linear", "sine", "moon"]),
        "n_samples": st.integers(4, 60),
        "n_features": st.integers(1, 4),
        "n_classes": st.integers(2, 4),
        "noise": st.floats(0, 0.5),
        "path": st.sampled_from(["data.csv", "data.csv", "missing.csv", ".", "regress.csv"]),
        "target": st.sampled_from(["label", "label", "y", "x1", "lable"]),
        "features": st.lists(st.sampled_from(["x1", "x2", "label", "nope"]), max_size=3),
        "task": st.sampled_from(["auto", "classification", "regression"]),
        "val_fraction": st.floats(0, 0.5),
        "test_fraction": st.floats(0, 0.4),
        "standardize": st.booleans(),
    }
)
SPEC_ACTIVATION = st.one_of(
    st.sampled_from(ACTIVATIONS),
    st.fixed_dictionaries(
        {"name": st.sampled_from(["leaky_relu", "elu", "gelu"])},
        optional={"negative_slope": small_float, "alpha": small_float,
                  "approximate": st.sampled_from(["none", "tanh", "fast"])},
    ),
)
MODEL = section(
    {
        "hidden": st.lists(st.integers(1, 8), max_size=3),
        "depth": st.integers(0, 3),
        "width": st.integers(1, 8),
        "activation": SPEC_ACTIVATION,
        "init": st.one_of(
            st.sampled_from(INITS),
            st.fixed_dictionaries({"name": st.just("normal")}, optional={"std": st.floats(0, 2)}),
        ),
        "dropout": st.floats(0, 0.9),
        "dropout_mode": st.sampled_from(["inverted", "scale_at_inference", "alpha", "mc"]),
        "batchnorm": st.booleans(),
        "norm": st.sampled_from(["none", "batchnorm", "layernorm", "group"]),
        "residual": st.one_of(st.booleans(), st.fixed_dictionaries({"every": st.integers(-1, 3)}), st.integers(0, 2)),
        "output_activation": st.sampled_from(["auto", "identity", "sigmoid", "softmax", "tanh"]),
    }
)
SPEC_OPTIMIZER = st.one_of(
    st.sampled_from(OPTIMIZERS),
    st.fixed_dictionaries(
        {"name": st.sampled_from(OPTIMIZERS)},
        optional={
            "lr": st.one_of(st.floats(1e-4, 1.0), st.sampled_from([1e6, 1e300]), JUNK_FLOATS),
            "momentum": small_float,
            "betas": st.lists(small_float, max_size=3),
            "weight_decay": small_float,
            "convention": st.sampled_from(["torch", "keras"]),
            "learning_rate": st.floats(1e-4, 1.0),
        },
    ),
)
SPEC_SCHEDULE = st.one_of(
    st.none(),
    st.sampled_from(["constant", "step", "cosine", "exponential", "multistep"]),
    st.fixed_dictionaries(
        {"name": st.just("step")}, optional={"step_size": st.integers(0, 3), "gamma": small_float}
    ),
    st.fixed_dictionaries({"name": st.just("cosine")}, optional={"T_max": st.integers(0, 3)}),
    st.fixed_dictionaries(
        {"name": st.just("multistep")},
        optional={"milestones": st.lists(st.integers(-1, 3), max_size=3), "gamma": small_float},
    ),
)
TRAINING = section(
    {
        "epochs": st.integers(1, 2),
        "batch_size": st.one_of(st.integers(1, 64), st.just("full")),
        "shuffle": st.booleans(),
        "loss": st.sampled_from(
            ["auto", "mse", "mae", "huber", "bce", "log_loss", "cce", "sparse_cce", "hinge"]
        ),
        "optimizer": SPEC_OPTIMIZER,
        "schedule": SPEC_SCHEDULE,
        "l1": st.floats(0, 0.1),
        "l2": st.floats(0, 0.1),
        "clip_grad_norm": st.one_of(st.none(), st.floats(0.01, 10)),
        "clip_grad_value": st.one_of(st.none(), st.floats(0.01, 10)),
        "early_stopping": st.one_of(
            st.none(),
            section(
                {
                    "monitor": st.sampled_from(["val_loss", "train_loss", "val_acc", "train_acc", "loss"]),
                    "patience": st.integers(1, 3),
                    "min_delta": st.floats(0, 0.1),
                }
            ),
        ),
        "checkpoint_every": st.integers(0, 2),
    }
)
LOGGING = section({"grad_every": st.integers(1, 5)})
CONFIGS = section(
    {
        "name": st.sampled_from(["fuzz", "fuzz.run-1", "../escape", "a/b", "", ".hidden", "x" * 101]),
        "seed": st.integers(0, 2**32),
        "dtype": st.sampled_from(["float64", "float32", "float16"]),
        "data": DATA,
        "model": MODEL,
        "training": TRAINING,
        "logging": LOGGING,
    }
)
OVERRIDE_KEYS = [
    "training.epochs",
    "training.optimizer.lr",
    "training.batch_size",
    "model.hidden",
    "model.depth",
    "model.activation",
    "model.activation.negative_slope",
    "data.n_samples",
    "seed",
    "name",
    "training.schedule.gamma",
    "model.dropout.x",
    "junk.key",
    "training..x",
    "",
]
OVERRIDES = st.lists(
    st.tuples(
        st.sampled_from(OVERRIDE_KEYS),
        st.one_of(
            st.sampled_from(
                [
                    "1",
                    "2",
                    "0",
                    "-1",
                    "1e-3",
                    ".nan",
                    ".inf",
                    "[4, 4]",
                    "[4,",
                    "{a: 1}",
                    "full",
                    "relu",
                    "",
                    "&a [*a]",
                    "!!python/object:os.system x",
                ]
            ),
            st.text(max_size=6),
        ),
        st.booleans(),
    ).map(lambda t: f"{t[0]}={t[1]}" if t[2] else t[0]),
    max_size=2,
)

CSV = "x1,x2,label\n" + "".join(f"{i % 7 - 3},{(i * 5) % 11 / 3:.3f},{i % 2}\n" for i in range(40))
REGRESS_CSV = "x1,x2,y\n" + "".join(f"{i},{i % 5},{i * 0.37:.3f}\n" for i in range(40))


def keep_runs_tiny(config: dict) -> dict:
    """Fill absent size keys with tiny values: the defaults (1000 samples, [32, 32], 50 epochs) are slow.

    Drawn values are kept; valid ones are tiny by construction and junk is either tiny or refused.
    """
    tiny = {"data": {"n_samples": 40}, "model": {"hidden": [4]}, "training": {"epochs": 1}}
    for key, small in tiny.items():
        section = config.setdefault(key, {})
        if not isinstance(section, dict):
            continue
        for field, value in small.items():
            if field == "hidden" and "depth" in section:
                continue
            section.setdefault(field, value)
    return config


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(config=CONFIGS.map(keep_runs_tiny), overrides=OVERRIDES)
def test_any_config_runs_or_fails_in_one_line(cli, tmp_path, config, overrides):
    (tmp_path / "data.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "regress.csv").write_text(REGRESS_CSV, encoding="utf-8")
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    args = ["train", path, "--runs-dir", tmp_path / "runs", "--quiet"]
    for text in overrides:
        args += ["--set", text]
    result = cli(*args)
    described = f"config={config!r} overrides={overrides!r}\nstderr={result.stderr!r}"
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, described
    assert result.code in (0, 1, 2), described
    lines = result.stderr.splitlines()
    if result.code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), described
    elif result.code == 1:
        assert lines and lines[-1].startswith("diverged: "), described
    else:
        assert not any(line.startswith("error") for line in lines), described
