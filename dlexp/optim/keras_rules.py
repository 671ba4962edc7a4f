"""Keras 3 convention: the update rules, argument names and defaults of ``keras.optimizers``.

Arguments use Keras' own names (``learning_rate``, ``beta_1``, ``epsilon``, ``rho`` ...), so a
Keras config can be copied as is; the torch names (``lr``, ``betas``, ``eps``) are refused with
the list of accepted ones. Formulas follow ``keras/src/optimizers/*.py`` operation by
operation. Two things differ from Keras itself: scalar coefficients are computed in float64
(Keras casts them to the variable dtype), and ``weight_decay`` defaults to 0.0 where Keras
uses ``None`` (``None`` is accepted and means 0.0).

Weight decay is decoupled in every Keras optimizer (``BaseOptimizer._apply_weight_decay``),
applied before the update with the current learning rate::

    p <- p - p * weight_decay * learning_rate

Notation: p params, g grads, t the step count after increment (Keras ``iterations + 1``).
State keys use Keras' variable names (``momentum``, ``velocity``, ...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlexp.optim.base import (
    Optimizer,
    State,
    advance_step,
    check_bool,
    check_nonnegative,
    check_positive,
    check_unit,
    decay_params_keras,
    preset,
)


def _weight_decay(value: Any) -> float:
    return 0.0 if value is None else check_nonnegative("weight_decay", value)


def _ema_toward(avg: np.ndarray, target: np.ndarray, weight: float) -> None:
    """Keras' ``avg += (target - avg) * weight``; ``target`` is overwritten."""
    target -= avg
    target *= weight
    avg += target



class KerasOptimizer(Optimizer):
    """Shared by the Keras rules: ``learning_rate`` and decoupled ``weight_decay`` bookkeeping."""

    convention = "keras"

    def __init__(self, learning_rate: float, weight_decay: float, hyperparams: dict, slots: tuple[str, ...]):
        self.weight_decay = weight_decay
        super().__init__(
            learning_rate,
            {"learning_rate": learning_rate, **hyperparams, "weight_decay": weight_decay},
            slots,
        )

    def _decay(self, p: np.ndarray, lr: float, scratch: np.ndarray) -> None:
        if self.weight_decay != 0.0:
            decay_params_keras(p, lr, self.weight_decay, scratch)

    def returns_delta(self) -> bool:
        return self.weight_decay == 0.0  # decoupled decay is a second change to p


class SGD(KerasOptimizer):
    """Gradient descent with Keras-form momentum (keras.optimizers.SGD).

    ::

        v <- momentum * v - learning_rate * g             (momentum != 0)
        p <- p + v                                         plain momentum
        p <- p + momentum * v - learning_rate * g          nesterov
        p <- p - learning_rate * g                         (momentum == 0)

    The velocity carries the learning rate (torch's buffer does not), so the two forms agree
    only while the learning rate is constant. No epsilon. State: ``momentum`` (the velocity v).
    """

    name = "sgd"

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.momentum = check_unit("momentum", momentum, include_one=True)
        self.nesterov = check_bool("nesterov", nesterov)
        hyper = {"momentum": self.momentum, "nesterov": self.nesterov}
        slots = ("momentum",) if self.momentum != 0.0 else ()
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, slots)

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        (tmp,) = scratch
        self._decay(p, lr, tmp)
        g *= lr
        if self.momentum == 0.0:
            p -= g
            return g
        v = state["momentum"]
        v *= self.momentum
        v -= g
        if self.nesterov:
            np.multiply(v, self.momentum, out=tmp)
            tmp -= g
            p += tmp
            return tmp
        p += v
        return v


class Adam(KerasOptimizer):
    """Adam with the "epsilon hat" form (keras.optimizers.Adam).

    ::

        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g^2 - v) * (1 - beta_2)
        v_hat <- max(v_hat, v)                 (amsgrad; then v_hat replaces v below)
        alpha <- learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        p <- p - m * alpha / (sqrt(v) + epsilon)

    epsilon is added to the *uncorrected* ``sqrt(v)`` (Kingma & Ba's epsilon-hat), so it
    weighs ``1/sqrt(1 - beta_2^t)`` times less than torch's eps early on.
    State: ``momentum`` (m), ``velocity`` (v), ``velocity_hat`` (amsgrad).
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.beta_1 = check_unit("beta_1", beta_1, include_one=False)
        self.beta_2 = check_unit("beta_2", beta_2, include_one=False)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.amsgrad = check_bool("amsgrad", amsgrad)
        hyper = {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }
        slots = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, slots)

    def _advance(self, state: State, lr: float) -> tuple:
        t = float(advance_step(state))
        alpha = lr * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        return lr, alpha

    def _update(self, p, g, state, scratch, coef):
        lr, alpha = coef
        (tmp,) = scratch
        self._decay(p, lr, tmp)
        m, v = state["momentum"], state["velocity"]
        np.multiply(g, g, out=tmp)
        _ema_toward(v, tmp, 1 - self.beta_2)
        _ema_toward(m, g, 1 - self.beta_1)
        if self.amsgrad:
            v = np.maximum(state["velocity_hat"], v, out=state["velocity_hat"])
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.multiply(m, alpha, out=g)
        g /= tmp
        p -= g
        return g


class AdamW(Adam):
    """AdamW (keras.optimizers.AdamW): :class:`Adam` with weight_decay defaulting to 0.004.

    ::

        p <- p - p * weight_decay * learning_rate        then the Adam update

    ``weight_decay: null`` is refused, as Keras refuses it, rather than silently training plain Adam.
    """

    name = "adamw"

    def __init__(
        self,
        learning_rate: float = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ):
        if weight_decay is None:
            raise ValueError("weight_decay must be a number (got None); AdamW without weight decay is adam")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, check_nonnegative("weight_decay", weight_decay))


class Adamax(KerasOptimizer):
    """Adamax (keras.optimizers.Adamax).

    ::

        m <- m + (g - m) * (1 - beta_1)
        u <- max(beta_2 * u, |g|)
        p <- p - learning_rate * m / ((1 - beta_1^t) * (u + epsilon))

    epsilon is added to ``u`` after the max (torch puts it inside the max, on ``|g|``).
    State: ``momentum`` (m), ``norm`` (u).
    """

    name = "adamax"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.beta_1 = check_unit("beta_1", beta_1, include_one=False)
        self.beta_2 = check_unit("beta_2", beta_2, include_one=False)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        hyper = {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, ("momentum", "norm"))

    def _advance(self, state: State, lr: float) -> tuple:
        t = float(advance_step(state))
        return lr, 1 - self.beta_1**t

    def _update(self, p, g, state, scratch, coef):
        lr, bias_correction1 = coef
        (tmp,) = scratch
        self._decay(p, lr, tmp)
        m, u = state["momentum"], state["norm"]
        u *= self.beta_2
        np.abs(g, out=tmp)
        np.maximum(u, tmp, out=u)
        _ema_toward(m, g, 1 - self.beta_1)
        np.add(u, self.epsilon, out=tmp)
        tmp *= bias_correction1
        np.multiply(m, lr, out=g)
        g /= tmp
        p -= g
        return g


class Adadelta(KerasOptimizer):
    """Adadelta (keras.optimizers.Adadelta).

    ::

        a_g <- rho * a_g + (1 - rho) * g^2
        d <- -sqrt(a_d + epsilon) * g / sqrt(a_g + epsilon)
        a_d <- rho * a_d + (1 - rho) * d^2
        p <- p + learning_rate * d

    epsilon sits inside both square roots (as in torch). Defaults differ from torch:
    learning_rate 0.001 (torch 1.0), rho 0.95 (0.9), epsilon 1e-7 (1e-6).
    State: ``accumulated_grad`` (a_g), ``accumulated_delta_var`` (a_d).
    """

    name = "adadelta"

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.rho = check_unit("rho", rho, include_one=True)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        hyper = {"rho": self.rho, "epsilon": self.epsilon}
        super().__init__(
            learning_rate, _weight_decay(weight_decay), hyper, ("accumulated_grad", "accumulated_delta_var")
        )

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        (delta,) = scratch
        self._decay(p, lr, delta)
        rho = self.rho
        acc_g, acc_d = state["accumulated_grad"], state["accumulated_delta_var"]
        acc_g *= rho
        np.multiply(g, g, out=delta)
        delta *= 1 - rho
        acc_g += delta
        # delta holds -d = sqrt(a_d + eps) * g / sqrt(a_g + eps); negation is exact.
        np.add(acc_d, self.epsilon, out=delta)
        np.sqrt(delta, out=delta)
        delta *= g
        np.add(acc_g, self.epsilon, out=g)
        np.sqrt(g, out=g)
        delta /= g
        acc_d *= rho
        np.multiply(delta, delta, out=g)
        g *= 1 - rho
        acc_d += g
        delta *= lr
        p -= delta
        return delta


class RMSprop(KerasOptimizer):
    """RMSprop (keras.optimizers.RMSprop), optionally centered and with momentum.

    ::

        v <- rho * v + (1 - rho) * g^2
        c <- rho * c + (1 - rho) * g                       (centered)
        step <- learning_rate * g / sqrt(v - c^2 + epsilon) (centered)
        step <- learning_rate * g / sqrt(v + epsilon)       (otherwise)
        b <- momentum * b + step;  p <- p - b              (momentum > 0)
        p <- p - step                                      (otherwise)

    epsilon sits inside the square root (torch: outside). The momentum buffer carries the
    learning rate (torch's does not). State: ``velocity`` (v), ``average_gradient`` (c,
    centered), ``momentum`` (b, momentum > 0).
    """

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.rho = check_unit("rho", rho, include_one=True)
        self.momentum = check_unit("momentum", momentum, include_one=True)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        self.centered = check_bool("centered", centered)
        hyper = {
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }
        slots = ("velocity",) + (("average_gradient",) if self.centered else ())
        slots += ("momentum",) if self.momentum > 0.0 else ()
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, slots)

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        (denom,) = scratch
        self._decay(p, lr, denom)
        rho = self.rho
        v = state["velocity"]
        v *= rho
        np.multiply(g, g, out=denom)
        denom *= 1 - rho
        v += denom
        if self.centered:
            c = state["average_gradient"]
            c *= rho
            np.multiply(g, 1 - rho, out=denom)
            c += denom
            np.multiply(c, c, out=denom)
            np.subtract(v, denom, out=denom)
            denom += self.epsilon
        else:
            np.add(v, self.epsilon, out=denom)
        np.sqrt(denom, out=denom)
        g *= lr
        g /= denom
        if self.momentum > 0.0:
            b = state["momentum"]
            b *= self.momentum
            b += g
            p -= b
            return b
        p -= g
        return g


class Adagrad(KerasOptimizer):
    """Adagrad (keras.optimizers.Adagrad).

    ::

        a <- a + g^2                            (a starts at initial_accumulator_value)
        p <- p - learning_rate * g / sqrt(a + epsilon)

    epsilon sits inside the square root (torch: outside). Defaults differ from torch:
    learning_rate 0.001 (0.01), initial_accumulator_value 0.1 (0), epsilon 1e-7 (1e-10).
    No ``lr_decay``. State: ``accumulator``.
    """

    name = "adagrad"

    def __init__(
        self,
        learning_rate: float = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.initial_accumulator_value = check_nonnegative(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.epsilon = check_nonnegative("epsilon", epsilon)
        hyper = {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, ("accumulator",))

    def _slot_initial_value(self, slot: str) -> float:
        return self.initial_accumulator_value

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        (tmp,) = scratch
        self._decay(p, lr, tmp)
        a = state["accumulator"]
        np.multiply(g, g, out=tmp)
        a += tmp
        np.add(a, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        g *= lr
        g /= tmp
        p -= g
        return g


class Nadam(KerasOptimizer):
    """Nadam (keras.optimizers.Nadam), Keras 3's momentum schedule.

    ::

        u_t     <- beta_1 * (1 - 0.5 * 0.96^t)
        u_{t+1} <- beta_1 * (1 - 0.5 * 0.96^(t + 1))
        P <- P * u_t                            (running product, state "u_product")
        m <- m + (g - m) * (1 - beta_1)
        v <- v + (g^2 - v) * (1 - beta_2)
        m_hat <- u_{t+1} * m / (1 - P * u_{t+1}) + (1 - u_t) * g / (1 - P)
        v_hat <- v / (1 - beta_2^t)
        p <- p - m_hat * learning_rate / (sqrt(v_hat) + epsilon)

    epsilon sits outside the square root of the bias-corrected ``v`` (as in torch). Keras 3
    decays by ``0.96^t``, not torch's ``0.96^(t * momentum_decay)`` with momentum_decay
    0.004 (nor tf.keras 2's ``0.96^(0.004 t)``), so u_t climbs from 0.47 to beta_1 within
    ~100 steps. State: ``momentum`` (m), ``velocity`` (v), 0-d float64 ``u_product`` (P).
    """

    name = "nadam"

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.0,
    ):
        learning_rate = check_positive("learning_rate", learning_rate)
        self.beta_1 = check_unit("beta_1", beta_1, include_one=False)
        self.beta_2 = check_unit("beta_2", beta_2, include_one=False)
        self.epsilon = check_nonnegative("epsilon", epsilon)
        hyper = {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}
        super().__init__(learning_rate, _weight_decay(weight_decay), hyper, ("momentum", "velocity"))

    def _scalar_state(self) -> State:
        return {"u_product": np.ones((), dtype=np.float64)}

    def _advance(self, state: State, lr: float) -> tuple:
        t = float(advance_step(state))
        beta_1 = self.beta_1
        u_t = beta_1 * (1.0 - 0.5 * 0.96**t)
        u_t_1 = beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        # Keras updates the product as (P * beta_1) * (1 - 0.5 * 0.96^t); keep its rounding.
        u_product = float(state["u_product"]) * beta_1 * (1.0 - 0.5 * 0.96**t)
        state["u_product"][()] = u_product
        u_product_next = u_product * u_t_1
        return lr, u_t, u_t_1, u_product, u_product_next, 1 - self.beta_2**t

    def _update(self, p, g, state, scratch, coef):
        lr, u_t, u_t_1, u_product, u_product_next, bias_correction2 = coef
        (tmp,) = scratch
        self._decay(p, lr, tmp)
        m, v = state["momentum"], state["velocity"]
        np.multiply(g, g, out=tmp)
        _ema_toward(v, tmp, 1 - self.beta_2)
        np.subtract(g, m, out=tmp)
        tmp *= 1 - self.beta_1
        m += tmp
        # m_hat into tmp, then the denominator into g (g is not needed after this).
        np.multiply(m, u_t_1, out=tmp)
        tmp /= 1 - u_product_next
        g *= 1 - u_t
        g /= 1 - u_product
        tmp += g
        tmp *= lr
        np.divide(v, bias_correction2, out=g)
        np.sqrt(g, out=g)
        g += self.epsilon
        tmp /= g
        p -= tmp
        return tmp


momentum = preset(SGD, "momentum", "Preset ``momentum``: :class:`SGD` with momentum 0.9.", momentum=0.9)
nesterov = preset(SGD, "nesterov", "Preset ``nesterov``: :class:`SGD` with momentum 0.9 and Nesterov's look-ahead.",
                  momentum=0.9, nesterov=True)

OPTIMIZERS = (SGD, momentum, nesterov, Adam, AdamW, Adamax, Adadelta, RMSprop, Adagrad, Nadam)
