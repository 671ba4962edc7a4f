"""torch.optim convention: the update rules, argument names and defaults of PyTorch 2.13.

Each rule mirrors ``torch.optim._single_tensor_*`` operation by operation (same order of
rounding where NumPy allows). torch's CPU kernels fuse some multiply-adds, so results agree
to float64 rounding, not bit for bit: after 50 steps within rtol 1e-12 per coordinate and
1e-14 for the whole vector (``tests/test_optim_torch.py``). ``maximize``, ``foreach``,
``fused``, ``capturable`` and ``differentiable`` do not apply here and are not accepted.

Notation: p params, g grads, t the step count after increment (1 on the first step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlexp.optim.base import (
    Optimizer,
    State,
    advance_step,
    check_betas,
    check_bool,
    check_nonnegative,
    check_positive,
    check_unit,
    decay_params_torch,
    l2_into_grad,
    preset,
)


def _lerp(avg: np.ndarray, target: np.ndarray, weight: float, scratch: np.ndarray) -> None:
    """torch's ``avg.lerp_(target, weight)`` for weight < 0.5: ``avg + weight * (target - avg)``."""
    np.subtract(target, avg, out=scratch)
    scratch *= weight
    avg += scratch


def _ema_square(avg_sq: np.ndarray, g: np.ndarray, decay: float, scratch: np.ndarray) -> None:
    """torch's ``avg_sq.mul_(decay).addcmul_(g, g, value=1 - decay)``."""
    avg_sq *= decay
    np.multiply(g, 1.0 - decay, out=scratch)
    scratch *= g
    avg_sq += scratch



class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (torch.optim.SGD).

    ::

        g <- g + weight_decay * p                         (if weight_decay != 0)
        if momentum != 0:
            b <- g                                        first step (state step == 0)
            b <- momentum * b + (1 - dampening) * g       later steps
            g <- g + momentum * b   if nesterov   else   b
        p <- p - lr * g

    No eps. State: ``momentum_buffer`` when momentum != 0. Nesterov needs momentum > 0 and
    dampening == 0 (as in torch).
    """

    name = "sgd"
    convention = "torch"

    def __init__(
        self,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        lr = check_positive("lr", lr)
        self.momentum = check_nonnegative("momentum", momentum)
        self.dampening = check_unit("dampening", dampening, include_one=True)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.nesterov = check_bool("nesterov", nesterov)
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"nesterov=True needs momentum > 0 and dampening == 0 "
                f"(got momentum={self.momentum}, dampening={self.dampening})"
            )
        hyper = {
            "lr": lr,
            "momentum": self.momentum,
            "dampening": self.dampening,
            "weight_decay": self.weight_decay,
            "nesterov": self.nesterov,
        }
        super().__init__(lr, hyper, ("momentum_buffer",) if self.momentum != 0.0 else ())

    def _advance(self, state: State, lr: float) -> tuple:
        first = int(state["step"]) == 0
        advance_step(state)
        return lr, first

    def _update(self, p, g, state, scratch, coef):
        lr, first = coef
        (tmp,) = scratch
        if self.weight_decay != 0.0:
            l2_into_grad(g, p, self.weight_decay, tmp)
        if self.momentum != 0.0:
            buf = state["momentum_buffer"]
            if first:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                if self.dampening != 0.0:
                    np.multiply(g, 1.0 - self.dampening, out=tmp)
                    buf += tmp
                else:
                    buf += g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=tmp)
                g += tmp
            else:
                g = buf
        np.multiply(g, -lr, out=tmp)
        p += tmp
        return tmp


class Adam(Optimizer):
    """Adam (torch.optim.Adam); AMSGrad and decoupled (AdamW) weight decay optional.

    ::

        t <- t + 1
        p <- p * (1 - lr * weight_decay)       if decoupled_weight_decay
        g <- g + weight_decay * p              otherwise (L2, if weight_decay != 0)
        m <- m + (1 - beta1) * (g - m)
        v <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                 (amsgrad; then v_max replaces v below)
        denom <- sqrt(v) / sqrt(1 - beta2^t) + eps
        p <- p - lr / (1 - beta1^t) * m / denom

    eps is added to the bias-corrected ``sqrt(v_hat)``, outside the square root (torch form;
    Keras adds it to the *uncorrected* ``sqrt(v)``). State: ``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq`` (amsgrad).
    """

    name = "adam"
    convention = "torch"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        lr = check_positive("lr", lr)
        self.betas = check_betas("betas", betas)
        self.eps = check_nonnegative("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.amsgrad = check_bool("amsgrad", amsgrad)
        self.decoupled = check_bool("decoupled_weight_decay", decoupled_weight_decay)
        hyper = {
            "lr": lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "amsgrad": self.amsgrad,
        }
        hyper.update(self._extra_hyperparams())
        slots = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(lr, hyper, slots)

    def _extra_hyperparams(self) -> dict:
        return {"decoupled_weight_decay": self.decoupled}

    def returns_delta(self) -> bool:
        return not (self.decoupled and self.weight_decay != 0.0)

    def _advance(self, state: State, lr: float) -> tuple:
        t = advance_step(state)
        beta1, beta2 = self.betas
        step_size = lr / (1 - beta1**t)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        return lr, step_size, bias_correction2_sqrt

    def _update(self, p, g, state, scratch, coef):
        lr, step_size, bias_correction2_sqrt = coef
        (tmp,) = scratch
        beta1, beta2 = self.betas
        if self.weight_decay != 0.0:
            if self.decoupled:
                decay_params_torch(p, lr, self.weight_decay)
            else:
                l2_into_grad(g, p, self.weight_decay, tmp)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp(m, g, 1.0 - beta1, tmp)
        _ema_square(v, g, beta2, tmp)
        if self.amsgrad:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        np.multiply(m, -step_size, out=g)
        g /= tmp
        p += g
        return g


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): :class:`Adam` with decoupled weight decay, default 0.01.

    ::

        p <- p * (1 - lr * weight_decay)        then the Adam update without L2 term
    """

    name = "adamw"

    def __init__(
        self,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, decoupled_weight_decay=True)

    def _extra_hyperparams(self) -> dict:
        return {}


class Adamax(Optimizer):
    """Adamax, Adam with the infinity norm (torch.optim.Adamax).

    ::

        t <- t + 1
        g <- g + weight_decay * p               (if weight_decay != 0)
        m <- m + (1 - beta1) * (g - m)
        u <- max(beta2 * u, |g| + eps)
        p <- p - lr / (1 - beta1^t) * m / u

    eps sits inside the max, added to ``|g|`` (Keras adds it to ``u`` outside the max).
    State: ``exp_avg``, ``exp_inf``.
    """

    name = "adamax"
    convention = "torch"

    def __init__(
        self,
        lr: float = 2e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        lr = check_positive("lr", lr)
        self.betas = check_betas("betas", betas)
        self.eps = check_nonnegative("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        hyper = {"lr": lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}
        super().__init__(lr, hyper, ("exp_avg", "exp_inf"))

    def _advance(self, state: State, lr: float) -> tuple:
        t = advance_step(state)
        return (lr / (1 - self.betas[0] ** t),)

    def _update(self, p, g, state, scratch, coef):
        (clr,) = coef
        (tmp,) = scratch
        if self.weight_decay != 0.0:
            l2_into_grad(g, p, self.weight_decay, tmp)
        m, u = state["exp_avg"], state["exp_inf"]
        _lerp(m, g, 1.0 - self.betas[0], tmp)
        u *= self.betas[1]
        np.abs(g, out=tmp)
        tmp += self.eps
        np.maximum(u, tmp, out=u)
        np.multiply(m, -clr, out=g)
        g /= u
        p += g
        return g


class Adadelta(Optimizer):
    """Adadelta (torch.optim.Adadelta).

    ::

        g <- g + weight_decay * p               (if weight_decay != 0)
        v <- rho * v + (1 - rho) * g^2
        d <- sqrt(a + eps) / sqrt(v + eps) * g
        a <- rho * a + (1 - rho) * d^2
        p <- p - lr * d

    eps sits inside both square roots. State: ``square_avg`` (v), ``acc_delta`` (a).
    """

    name = "adadelta"
    convention = "torch"
    n_scratch = 2

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0):
        lr = check_positive("lr", lr)
        self.rho = check_unit("rho", rho, include_one=True)
        self.eps = check_nonnegative("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        hyper = {"lr": lr, "rho": self.rho, "eps": self.eps, "weight_decay": self.weight_decay}
        super().__init__(lr, hyper, ("square_avg", "acc_delta"))

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        std, delta = scratch
        if self.weight_decay != 0.0:
            l2_into_grad(g, p, self.weight_decay, std)
        v, a = state["square_avg"], state["acc_delta"]
        _ema_square(v, g, self.rho, std)
        np.add(v, self.eps, out=std)
        np.sqrt(std, out=std)
        np.add(a, self.eps, out=delta)
        np.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        _ema_square(a, delta, self.rho, std)
        np.multiply(delta, -lr, out=delta)
        p += delta
        return delta


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop), optionally centered and with momentum.

    ::

        g <- g + weight_decay * p               (if weight_decay != 0)
        v <- alpha * v + (1 - alpha) * g^2
        c <- c + (1 - alpha) * (g - c)          (centered)
        denom <- sqrt(v - c^2) + eps            (centered)   else   sqrt(v) + eps
        b <- momentum * b + g / denom;  p <- p - lr * b      (momentum > 0)
        p <- p - lr * g / denom                              (otherwise)

    eps sits outside the square root (Keras: inside). State: ``square_avg``, ``grad_avg``
    (centered), ``momentum_buffer`` (momentum > 0). ``alpha`` is checked to lie in [0, 1]
    (torch only requires >= 0; alpha > 1 makes ``v`` negative).
    """

    name = "rmsprop"
    convention = "torch"

    def __init__(
        self,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        lr = check_positive("lr", lr)
        self.alpha = check_unit("alpha", alpha, include_one=True)
        self.eps = check_nonnegative("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.momentum = check_nonnegative("momentum", momentum)
        self.centered = check_bool("centered", centered)
        hyper = {
            "lr": lr,
            "alpha": self.alpha,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
            "centered": self.centered,
        }
        slots = ("square_avg",) + (("grad_avg",) if self.centered else ())
        slots += ("momentum_buffer",) if self.momentum > 0.0 else ()
        super().__init__(lr, hyper, slots)

    def _update(self, p, g, state, scratch, coef):
        (lr,) = coef
        (denom,) = scratch
        if self.weight_decay != 0.0:
            l2_into_grad(g, p, self.weight_decay, denom)
        v = state["square_avg"]
        _ema_square(v, g, self.alpha, denom)
        if self.centered:
            c = state["grad_avg"]
            _lerp(c, g, 1.0 - self.alpha, denom)
            np.multiply(c, c, out=denom)
            np.subtract(v, denom, out=denom)
            np.sqrt(denom, out=denom)
        else:
            np.sqrt(v, out=denom)
        denom += self.eps
        if self.momentum > 0.0:
            buf = state["momentum_buffer"]
            buf *= self.momentum
            g /= denom
            buf += g
            np.multiply(buf, -lr, out=g)
        else:
            g *= -lr
            g /= denom
        p += g
        return g


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad).

    ::

        t <- t + 1
        g <- g + weight_decay * p               (if weight_decay != 0)
        clr <- lr / (1 + (t - 1) * lr_decay)
        s <- s + g^2                            (s starts at initial_accumulator_value)
        p <- p - clr * g / (sqrt(s) + eps)

    eps sits outside the square root (Keras: inside). State: ``sum``.
    """

    name = "adagrad"
    convention = "torch"

    def __init__(
        self,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        lr = check_positive("lr", lr)
        self.lr_decay = check_nonnegative("lr_decay", lr_decay)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.initial_accumulator_value = check_nonnegative(
            "initial_accumulator_value", initial_accumulator_value
        )
        self.eps = check_nonnegative("eps", eps)
        hyper = {
            "lr": lr,
            "lr_decay": self.lr_decay,
            "weight_decay": self.weight_decay,
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.eps,
        }
        super().__init__(lr, hyper, ("sum",))

    def _slot_initial_value(self, slot: str) -> float:
        return self.initial_accumulator_value

    def _advance(self, state: State, lr: float) -> tuple:
        t = advance_step(state)
        return (lr / (1 + (t - 1) * self.lr_decay),)

    def _update(self, p, g, state, scratch, coef):
        (clr,) = coef
        (std,) = scratch
        if self.weight_decay != 0.0:
            l2_into_grad(g, p, self.weight_decay, std)
        s = state["sum"]
        np.multiply(g, g, out=std)
        s += std
        np.sqrt(s, out=std)
        std += self.eps
        g *= -clr
        g /= std
        p += g
        return g


class NAdam(Optimizer):
    """NAdam, Adam with Nesterov momentum and a momentum schedule (torch.optim.NAdam).

    ::

        t <- t + 1
        p <- p * (1 - lr * weight_decay)        if decoupled_weight_decay
        g <- g + weight_decay * p               otherwise (L2, if weight_decay != 0)
        mu_t     <- beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        mu_{t+1} <- beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay))
        P <- P * mu_t                           (running product, state "mu_product")
        m <- m + (1 - beta1) * (g - m)
        v <- beta2 * v + (1 - beta2) * g^2
        denom <- sqrt(v / (1 - beta2^t)) + eps
        p <- p - lr * (1 - mu_t) / (1 - P) * g / denom
        p <- p - lr * mu_{t+1} / (1 - P * mu_{t+1}) * m / denom

    eps sits outside the square root of the bias-corrected ``v``. State: ``exp_avg``,
    ``exp_avg_sq``, 0-d float64 ``mu_product`` (torch keeps it in the default dtype: float32
    unless ``torch.set_default_dtype(torch.float64)``; here it is always float64).
    """

    name = "nadam"
    convention = "torch"

    def __init__(
        self,
        lr: float = 2e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
    ):
        lr = check_positive("lr", lr)
        self.betas = check_betas("betas", betas)
        self.eps = check_nonnegative("eps", eps)
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.momentum_decay = check_nonnegative("momentum_decay", momentum_decay)
        self.decoupled = check_bool("decoupled_weight_decay", decoupled_weight_decay)
        hyper = {
            "lr": lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "momentum_decay": self.momentum_decay,
            "decoupled_weight_decay": self.decoupled,
        }
        super().__init__(lr, hyper, ("exp_avg", "exp_avg_sq"))

    def returns_delta(self) -> bool:
        return False  # the step is added in two parts (gradient, then momentum)

    def _scalar_state(self) -> State:
        return {"mu_product": np.ones((), dtype=np.float64)}

    def _advance(self, state: State, lr: float) -> tuple:
        t = float(advance_step(state))
        beta1, beta2 = self.betas
        bias_correction2 = 1 - beta2**t
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (t * self.momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((t + 1) * self.momentum_decay)))
        mu_product = float(state["mu_product"]) * mu
        state["mu_product"][()] = mu_product
        mu_product_next = mu_product * mu_next
        grad_coef = -lr * (1.0 - mu) / (1.0 - mu_product)
        avg_coef = (-lr * mu_next) / (1.0 - mu_product_next)
        return lr, bias_correction2, grad_coef, avg_coef

    def _update(self, p, g, state, scratch, coef):
        lr, bias_correction2, grad_coef, avg_coef = coef
        (denom,) = scratch
        beta1, beta2 = self.betas
        if self.weight_decay != 0.0:
            if self.decoupled:
                decay_params_torch(p, lr, self.weight_decay)
            else:
                l2_into_grad(g, p, self.weight_decay, denom)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        _lerp(m, g, 1.0 - beta1, denom)
        _ema_square(v, g, beta2, denom)
        np.divide(v, bias_correction2, out=denom)
        np.sqrt(denom, out=denom)
        denom += self.eps
        g *= grad_coef
        g /= denom
        p += g
        np.multiply(m, avg_coef, out=g)
        g /= denom
        p += g


momentum = preset(SGD, "momentum", "Preset ``momentum``: :class:`SGD` with momentum 0.9.", momentum=0.9)
nesterov = preset(SGD, "nesterov", "Preset ``nesterov``: :class:`SGD` with momentum 0.9 and Nesterov's look-ahead.",
                  momentum=0.9, nesterov=True)

OPTIMIZERS = (SGD, momentum, nesterov, Adam, AdamW, Adamax, Adadelta, RMSprop, Adagrad, NAdam)
