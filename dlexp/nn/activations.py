"""Activations: forward and derivative side by side (micrograd style).

Each activation works on a pre-activation array ``z`` of shape (batch, units) and its output
``a`` of the same shape. ``forward(z, out)`` writes ``a`` into ``out``; ``backward(z, a, grad_a, out)``
writes dL/dz = dL/da * f'(z) into ``out`` (``out`` may be ``grad_a``); ``derivative(z, a)`` returns
f'(z) (used for the saturated fraction). All are stable for |z| up to 1e3 in float64 and float32:
no overflow warnings, no NaN.

``max_derivative`` is sup f'(z): 0.25 for sigmoid, 1 for tanh. A unit is *saturated* where
f'(z) < 0.05 * max_derivative (sigmoid' < 0.0125, |tanh| > ~0.975).
"""

from __future__ import annotations

import math

import numpy as np

from dlexp.registry import Registry

SATURATION_LEVEL = 0.05

ACTIVATIONS: Registry[Activation] = Registry("activation")


class Activation:
    name = "activation"
    max_derivative = 1.0
    params: dict = {}  # noqa: RUF012 (instances assign their own dict; this one is never mutated)

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.multiply(grad_a, self.derivative(z, a), out=out)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: whether units can output exactly 0 for every input of a batch (dead ReLUs)
    can_die = False
    #: (low, high) when every output lies in a bounded interval (histogram bins span it), else None
    output_range: tuple[float, float] | None = None

    def saturated_mask(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """True where f'(z) < SATURATION_LEVEL · max_derivative (subclasses use cheaper equivalents)."""
        return self.derivative(z, a) < SATURATION_LEVEL * self.max_derivative

    def saturated_count(self, z: np.ndarray, a: np.ndarray) -> int:
        return int(np.count_nonzero(self.saturated_mask(z, a)))

    def spec(self) -> dict:
        return {"name": self.name, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.name}({args})"


@ACTIVATIONS.register("identity", "linear")
class Identity(Activation):
    """a = z;  a' = 1."""

    name = "identity"

    def forward(self, z, out):
        np.copyto(out, z)
        return out

    def backward(self, z, a, grad_a, out):
        if out is not grad_a:
            np.copyto(out, grad_a)
        return out

    def derivative(self, z, a):
        return np.ones_like(z)


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """a = 1 / (1 + exp(-z));  a' = a (1 - a) <= 0.25.

    Computed as torch does; exp(-z) may reach inf for z < -709 (float64), giving a = 0 exactly,
    so overflow is silenced rather than avoided.
    """

    name = "sigmoid"
    max_derivative = 0.25
    output_range = (0.0, 1.0)

    def forward(self, z, out):
        with np.errstate(over="ignore"):
            np.negative(z, out=out)
            np.exp(out, out=out)
        np.add(out, 1.0, out=out)
        np.reciprocal(out, out=out)
        return out

    def backward(self, z, a, grad_a, out):
        tmp = np.subtract(1.0, a)
        np.multiply(tmp, a, out=tmp)
        return np.multiply(grad_a, tmp, out=out)

    def derivative(self, z, a):
        return a * (1.0 - a)

    def saturated_mask(self, z, a):
        # a(1 − a) < c  ⇔  |a − ½| > sqrt(¼ − c)
        bound = np.sqrt(0.25 - SATURATION_LEVEL * self.max_derivative)
        return np.abs(a - 0.5) > bound


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """a = tanh(z);  a' = 1 - a^2 <= 1."""

    name = "tanh"
    output_range = (-1.0, 1.0)

    def forward(self, z, out):
        return np.tanh(z, out=out)

    def backward(self, z, a, grad_a, out):
        tmp = np.multiply(a, a)
        np.subtract(1.0, tmp, out=tmp)
        return np.multiply(grad_a, tmp, out=out)

    def derivative(self, z, a):
        return 1.0 - a * a

    def saturated_mask(self, z, a):
        # 1 − a² < c  ⇔  |a| > sqrt(1 − c)  (≈ 0.975 for c = 0.05)
        return np.abs(a) > np.sqrt(1.0 - SATURATION_LEVEL)


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """a = max(z, 0);  a' = 1 if z > 0 else 0 (0 at z = 0, as torch)."""

    name = "relu"

    def forward(self, z, out):
        return np.maximum(z, 0.0, out=out)

    def backward(self, z, a, grad_a, out):
        return np.multiply(grad_a, z > 0, out=out)

    def derivative(self, z, a):
        return (z > 0).astype(z.dtype)

    can_die = True

    def saturated_mask(self, z, a):
        return a == 0  # relu' = 0 exactly where a = 0


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    """a = z if z > 0 else negative_slope * z;  a' = 1 if z > 0 else negative_slope."""

    name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        if not (isinstance(negative_slope, (int, float)) and 0 <= negative_slope < 1):
            raise ValueError(f"negative_slope must be in [0, 1) (got {negative_slope!r})")
        self.negative_slope = float(negative_slope)
        self.params = {"negative_slope": self.negative_slope}

    def forward(self, z, out):
        np.multiply(z, self.negative_slope, out=out)
        return np.maximum(z, out, out=out)

    def backward(self, z, a, grad_a, out):
        return np.multiply(grad_a, self.derivative(z, a), out=out)

    def derivative(self, z, a):
        return np.where(z > 0, z.dtype.type(1.0), z.dtype.type(self.negative_slope))


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """a = z if z > 0 else alpha (exp(z) - 1);  a' = 1 if z > 0 else a + alpha."""

    name = "elu"

    def __init__(self, alpha: float = 1.0):
        if not (isinstance(alpha, (int, float)) and 0 < alpha <= 100):
            raise ValueError(f"alpha must be in (0, 100] (got {alpha!r})")
        self.alpha = float(alpha)
        self.params = {"alpha": self.alpha}
        self.max_derivative = max(1.0, self.alpha)

    def forward(self, z, out):
        np.minimum(z, 0.0, out=out)
        np.expm1(out, out=out)
        np.multiply(out, self.alpha, out=out)
        np.copyto(out, z, where=z > 0)
        return out

    def derivative(self, z, a):
        return np.where(z > 0, z.dtype.type(1.0), a + z.dtype.type(self.alpha))


@ACTIVATIONS.register("softplus")
class Softplus(Activation):
    """a = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|));  a' = sigmoid(z) < 1."""

    name = "softplus"

    def forward(self, z, out):
        np.abs(z, out=out)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
        return np.add(out, np.maximum(z, 0.0), out=out)

    def derivative(self, z, a):
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z))


@ACTIVATIONS.register("silu", "swish")
class SiLU(Activation):
    """a = z sigmoid(z);  a' = s (1 + z (1 - s)) with s = sigmoid(z); max a' ~ 1.0998 at z ~ 2.40."""

    name = "silu"
    max_derivative = 1.0998393194

    def forward(self, z, out):
        with np.errstate(over="ignore"):
            np.negative(z, out=out)
            np.exp(out, out=out)
        np.add(out, 1.0, out=out)
        np.divide(z, out, out=out)
        return out

    def derivative(self, z, a):
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 + z * (1.0 - s))


@ACTIVATIONS.register("selu")
class SELU(Activation):
    """a = λ z if z > 0 else λ α (exp(z) − 1);  a' = λ if z > 0 else a + λ α.

    α and λ are the fixed point of Klambauer et al. (2017), eq. 14, to torch's digits: with
    LeCun-normal weights, unit-variance inputs keep mean 0 and variance 1 from layer to layer.
    """

    name = "selu"
    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946
    max_derivative = SCALE * ALPHA  # ≈ 1.7581, the slope just left of 0

    def forward(self, z, out):
        np.minimum(z, 0.0, out=out)
        np.expm1(out, out=out)
        np.multiply(out, self.ALPHA, out=out)
        np.copyto(out, z, where=z > 0)
        return np.multiply(out, self.SCALE, out=out)

    def derivative(self, z, a):
        return np.where(z > 0, z.dtype.type(self.SCALE), a + z.dtype.type(self.SCALE * self.ALPHA))


_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


@ACTIVATIONS.register("gelu")
class GELU(Activation):
    """approximate "none": a = z Φ(z) = ½ z (1 + erf(z/√2));  a' = Φ(z) + z φ(z).

    approximate "tanh": a = ½ z (1 + t), t = tanh(√(2/π)(z + 0.044715 z³));
    a' = ½ (1 + t) + ½ z (1 − t²) √(2/π)(1 + 3·0.044715 z²).  Both as torch's ``GELU(approximate=...)``.
    NumPy has no erf, so the exact form calls ``math.erf`` element by element: exact to float64
    rounding but slower than the other activations (the tanh form is vectorised). sup a' is
    1.12890 (exact) and 1.12899 (tanh), near z = 1.5.
    """

    name = "gelu"

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' (the exact erf form) or 'tanh' (got {approximate!r})")
        self.approximate = approximate
        self.params = {"approximate": approximate} if approximate != "none" else {}
        self.max_derivative = 1.1289930687 if approximate == "tanh" else 1.1289041451

    def _cdf(self, z):
        """Φ(z) for the exact form, ½(1 + t) for the tanh form."""
        if self.approximate == "tanh":
            return 0.5 * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z**3)))
        return (0.5 * (1.0 + _erf(z * (1.0 / math.sqrt(2.0))).astype(z.dtype))).astype(z.dtype, copy=False)

    def forward(self, z, out):
        return np.multiply(z, self._cdf(z), out=out)

    def derivative(self, z, a):
        cdf = self._cdf(z)
        if self.approximate == "tanh":
            t = 2.0 * cdf - 1.0
            inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_CUBIC * z * z)
            return cdf + 0.5 * z * (1.0 - t * t) * inner
        with np.errstate(under="ignore"):
            pdf = np.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
        return (cdf + z * pdf).astype(z.dtype, copy=False)


def make_activation(spec) -> Activation:
    return ACTIVATIONS.build(spec)
