"""Weight initializers: ``init(fan_in, fan_out, rng, dtype) -> (W, b)``.

``W`` has shape (fan_in, fan_out); ``b`` shape (fan_out,). Biases are zero unless the scheme
says otherwise (``torch_default``). Every draw comes from the passed ``numpy.random.Generator``:
W first, then b, so the same generator state gives bit-identical weights.

| name            | W distribution                                   |
|-----------------|--------------------------------------------------|
| xavier_uniform  | U(±gain·sqrt(6 / (fan_in + fan_out)))            |
| xavier_normal   | N(0, gain²·2 / (fan_in + fan_out))               |
| he_uniform      | U(±sqrt(6 / fan_in))     (kaiming_uniform_, relu) |
| he_normal       | N(0, 2 / fan_in)         (kaiming_normal_, relu)  |
| lecun_normal    | N(0, 1 / fan_in)                                  |
| normal          | N(0, std²)                                        |
| uniform         | U(±limit)                                         |
| torch_default   | W, b ~ U(±1/sqrt(fan_in))   (torch.nn.Linear)     |
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.registry import Registry

INITIALIZERS: Registry[Initializer] = Registry("init")


def _positive(name: str, value) -> float:
    if not isinstance(value, (int, float)) or not (value > 0) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
    return float(value)


class Initializer:
    name = "init"
    params: dict = {}  # noqa: RUF012 (instances assign their own dict; this one is never mutated)

    def weight(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def bias(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(fan_out)

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float64):
        W = self.weight(fan_in, fan_out, rng)
        b = self.bias(fan_in, fan_out, rng)
        return W.astype(dtype, copy=False), b.astype(dtype, copy=False)

    def spec(self) -> dict:
        return {"name": self.name, **self.params}


@INITIALIZERS.register("xavier_uniform", "glorot_uniform")
class XavierUniform(Initializer):
    name = "xavier_uniform"

    def __init__(self, gain: float = 1.0):
        self.gain = _positive("gain", gain)
        self.params = {"gain": self.gain}

    def weight(self, fan_in, fan_out, rng):
        limit = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


@INITIALIZERS.register("xavier_normal", "glorot_normal")
class XavierNormal(Initializer):
    name = "xavier_normal"

    def __init__(self, gain: float = 1.0):
        self.gain = _positive("gain", gain)
        self.params = {"gain": self.gain}

    def weight(self, fan_in, fan_out, rng):
        return rng.normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), size=(fan_in, fan_out))


@INITIALIZERS.register("he_uniform", "kaiming_uniform")
class HeUniform(Initializer):
    name = "he_uniform"

    def weight(self, fan_in, fan_out, rng):
        limit = math.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


@INITIALIZERS.register("he_normal", "kaiming_normal")
class HeNormal(Initializer):
    name = "he_normal"

    def weight(self, fan_in, fan_out, rng):
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(fan_in, fan_out))


@INITIALIZERS.register("lecun_normal")
class LecunNormal(Initializer):
    name = "lecun_normal"

    def weight(self, fan_in, fan_out, rng):
        return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=(fan_in, fan_out))


@INITIALIZERS.register("normal")
class Normal(Initializer):
    name = "normal"

    def __init__(self, std: float = 0.01):
        self.std = _positive("std", std)
        self.params = {"std": self.std}

    def weight(self, fan_in, fan_out, rng):
        return rng.normal(0.0, self.std, size=(fan_in, fan_out))


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    name = "uniform"

    def __init__(self, limit: float = 0.05):
        self.limit = _positive("limit", limit)
        self.params = {"limit": self.limit}

    def weight(self, fan_in, fan_out, rng):
        return rng.uniform(-self.limit, self.limit, size=(fan_in, fan_out))


@INITIALIZERS.register("torch_default")
class TorchDefault(Initializer):
    """torch.nn.Linear's reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(±1/sqrt(fan_in)), bias too."""

    name = "torch_default"

    def weight(self, fan_in, fan_out, rng):
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=(fan_in, fan_out))

    def bias(self, fan_in, fan_out, rng):
        bound = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=fan_out)


def make_initializer(spec) -> Initializer:
    return INITIALIZERS.build(spec)
