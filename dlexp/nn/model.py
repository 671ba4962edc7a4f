"""The multilayer perceptron: Dense → [BatchNorm | LayerNorm] → activation → [Dropout], repeated, then Dense,
with optional identity skips around blocks of hidden layers (residual connections).

Parameters live in one flat contiguous array (``model.params``) and gradients in another
(``model.grads``) so an optimizer step is a handful of NumPy calls whatever the depth. Every
parameter is also reachable by name as a shaped view: ``model.param("layers.0.W")``. All weight
matrices come first in the flat array, so the L1/L2 penalty touches one contiguous slice.

Names (shared by parameters, gradients, optimizer state, checkpoints and CSV rows), with ``i``
counting Dense layers from 0 at the input side:
``layers.{i}.W`` (fan_in, fan_out), ``layers.{i}.b`` (fan_out,), ``layers.{i}.gamma``,
``layers.{i}.beta``, and buffers ``layers.{i}.running_mean``, ``layers.{i}.running_var``.
A hidden layer with BatchNorm has no Dense bias: ``beta`` plays its part. LayerNorm normalises
each sample over its units, which does not cancel a per-unit bias, so its layers keep ``b`` (as a
torch ``Linear`` followed by ``LayerNorm``).

Dropout (rate p) follows each hidden activation, in one of the modes of :mod:`dlexp.nn.dropout`
(``inverted``, ``scale_at_inference``, ``alpha``); masks come from the generator passed to ``forward``.
Each Dense layer's forward and backward are :mod:`dlexp.nn.dense`'s.

Residual connections (``residual = k > 0``): hidden layer 0 maps the inputs to the first width;
the hidden layers after it form blocks of ``k`` layers, and each block's output is its input plus
what the block computes, h ← h + f(h) (He et al. 2016), the skip added after the block's last
activation and dropout. Every layer of a block and the layer before it must have one width.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlexp.nn import batchnorm as bn
from dlexp.nn import layernorm as ln
from dlexp.nn import stats
from dlexp.nn.activations import Activation, make_activation
from dlexp.nn.dense import dense_backward, dense_forward
from dlexp.nn.dropout import ALPHA_DROPOUT_VALUE, DROPOUT_MODES, dropout_backward, dropout_forward  # noqa: F401
from dlexp.nn.initializers import make_initializer
from dlexp.nn.workspace import Workspace, build_workspace
from dlexp.rundir.files import save_npz_atomic
from dlexp.rundir.schema import ARCHITECTURE

NORMS = ("none", "batchnorm", "layernorm")


def residual_blocks(hidden: list[int], every: int) -> list[tuple[int, int]]:
    """(first, last) hidden-layer index of each residual block of ``every`` layers; [] when ``every`` is 0.

    Raises ValueError, naming the layers and widths, when the hidden layers do not split into such
    blocks of one width.
    """
    if every == 0:
        return []
    n = len(hidden)
    if n < 1 + every or (n - 1) % every:
        fits = 1 + every * max(1, (n - 1) // every)
        raise ValueError(f"residual: skips go around blocks of {every} hidden layer{'s' * (every > 1)} after "
                         f"the first, so the number of hidden layers must be 1 + a multiple of {every} (got {n}; "
                         f"e.g. {fits})")
    blocks = [(start, start + every - 1) for start in range(1, n, every)]
    for start, last in blocks:
        widths = hidden[start - 1 : last + 1]
        if len(set(widths)) > 1:
            layers = f"layers {start}-{last}" if last > start else f"layer {start}"
            raise ValueError(f"residual: the skip around hidden {layers} adds layer {start - 1}'s "
                             f"output to layer {last}'s, so their widths must be equal (got {widths}); give "
                             "those layers one width")
    return blocks


class MLP:
    """A multilayer perceptron with hand-written backward passes.

    Args:
        n_inputs: number of input features.
        hidden: widths of the hidden layers (``[]`` gives a linear/logistic model).
        n_outputs: width of the output layer.
        activation: hidden activation spec, e.g. ``"relu"`` or ``{"name": "leaky_relu", "negative_slope": 0.1}``.
        init: initializer spec for every Dense layer.
        dropout: rate p in [0, 1) after each hidden activation.
        dropout_mode: ``"inverted"``, ``"scale_at_inference"`` or ``"alpha"``.
        batchnorm: BatchNorm1d between each hidden Dense and its activation (same as ``norm="batchnorm"``).
        norm: ``"none"``, ``"batchnorm"`` or ``"layernorm"`` between each hidden Dense and its activation.
        residual: 0 (none), or k: an identity skip around each block of k hidden layers after the first.
        output_activation: ``"identity"``, ``"sigmoid"`` or ``"softmax"`` (applied for predictions;
            a fused loss takes the logits instead).
        dtype: ``"float64"`` or ``"float32"``.
        rng: generator for the initial weights (drawn layer by layer, W then b).
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: list[int],
        n_outputs: int,
        *,
        activation="relu",
        init="xavier_uniform",
        dropout: float = 0.0,
        dropout_mode: str = "inverted",
        batchnorm: bool = False,
        norm: str = "none",
        residual: int = 0,
        output_activation: str = "identity",
        dtype: str = "float64",
        rng: np.random.Generator | None = None,
    ):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        if dropout_mode not in DROPOUT_MODES:
            raise ValueError(f"dropout_mode must be one of {', '.join(DROPOUT_MODES)} (got {dropout_mode!r})")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)} (got {norm!r})")
        if batchnorm and norm not in ("none", "batchnorm"):
            raise ValueError(f"batchnorm=True and norm={norm!r} contradict each other; give one normalisation")
        if not (isinstance(residual, int) and 0 <= residual):
            raise ValueError(f"residual must be a block length >= 1, or 0 for none (got {residual!r})")
        if output_activation not in ("identity", "sigmoid", "softmax"):
            raise ValueError(f"output_activation must be identity, sigmoid or softmax (got {output_activation!r})")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32 (got {dtype})")
        self.sizes = [int(n_inputs), *map(int, hidden), int(n_outputs)]
        self.n_layers = len(self.sizes) - 1
        self.activation: Activation = make_activation(activation)
        self.initializer = make_initializer(init)
        self.dropout = float(dropout)
        self.dropout_mode = dropout_mode
        self.norm = "batchnorm" if batchnorm else norm
        self.batchnorm = self.norm == "batchnorm"
        self.residual = int(residual)
        self.blocks = residual_blocks(self.sizes[1:-1], self.residual)
        self._block_start = {last: start for start, last in self.blocks}  # last layer -> first
        self._block_last = {start: last for start, last in self.blocks}
        self._hidden_widths = np.array(self.sizes[1:-1], dtype=np.int64)
        self.output_activation = output_activation
        self.architecture = {
            "n_inputs": self.sizes[0],
            "hidden": self.sizes[1:-1],
            "n_outputs": self.sizes[-1],
            "activation": self.activation.spec(),
            "init": self.initializer.spec(),
            "dropout": self.dropout,
            "dropout_mode": self.dropout_mode,
            "batchnorm": self.batchnorm,
            "output_activation": self.output_activation,
            "dtype": self.dtype.name,
        }
        # written only when used, so the checkpoints of models without them keep their bytes
        if self.norm == "layernorm":
            self.architecture["norm"] = self.norm
        if self.residual:
            self.architecture["residual"] = self.residual
        self._layout()
        self.buffers: dict[str, np.ndarray] = {}
        for i in self.bn_layers:
            width = self.sizes[i + 1]
            self.buffers[f"layers.{i}.running_mean"] = np.zeros(width, dtype=self.dtype)
            self.buffers[f"layers.{i}.running_var"] = np.ones(width, dtype=self.dtype)
        self._workspaces: dict[int, Workspace] = {}
        self._last_training = False
        self.reset_parameters(rng if rng is not None else np.random.default_rng(0))

    # -- layout ---------------------------------------------------------------------------

    def is_hidden(self, i: int) -> bool:
        return i < self.n_layers - 1

    @property
    def bn_layers(self) -> list[int]:
        return [i for i in range(self.n_layers - 1)] if self.batchnorm else []

    def _layout(self) -> None:
        shapes: dict[str, tuple[int, ...]] = {}
        order: list[str] = []  # logical order: layer by layer
        for i in range(self.n_layers):
            fan_in, fan_out = self.sizes[i], self.sizes[i + 1]
            shapes[f"layers.{i}.W"] = (fan_in, fan_out)
            order.append(f"layers.{i}.W")
            if not (self.batchnorm and self.is_hidden(i)):
                shapes[f"layers.{i}.b"] = (fan_out,)
                order.append(f"layers.{i}.b")
            if self.norm != "none" and self.is_hidden(i):
                for name in ("gamma", "beta"):
                    shapes[f"layers.{i}.{name}"] = (fan_out,)
                    order.append(f"layers.{i}.{name}")
        # memory order: every W first (one slice for penalties), then the rest
        memory = [n for n in order if n.endswith(".W")] + [n for n in order if not n.endswith(".W")]
        self.param_names = order
        self.memory_order = memory
        self.shapes = shapes
        self.offsets: dict[str, int] = {}
        offset = 0
        for name in memory:
            self.offsets[name] = offset
            offset += int(np.prod(shapes[name]))
        self.n_params = offset
        self.n_weights = sum(int(np.prod(shapes[n])) for n in memory if n.endswith(".W"))
        self.segment_starts = np.array([self.offsets[n] for n in memory], dtype=np.intp)
        self._segment_ends = [int(a) for a in self.segment_starts[1:]] + [self.n_params]
        self.params = np.zeros(self.n_params, dtype=self.dtype)
        self.grads = np.zeros(self.n_params, dtype=self.dtype)
        self._p = {n: self._view(self.params, n) for n in order}
        self._g = {n: self._view(self.grads, n) for n in order}

    def _view(self, flat: np.ndarray, name: str) -> np.ndarray:
        start = self.offsets[name]
        size = int(np.prod(self.shapes[name]))
        return flat[start : start + size].reshape(self.shapes[name])

    def param(self, name: str) -> np.ndarray:
        """Shaped view of a parameter (writes go to the flat buffer)."""
        return self._p[name]

    def grad(self, name: str) -> np.ndarray:
        return self._g[name]

    def view_of(self, flat: np.ndarray, name: str) -> np.ndarray:
        """Shaped view of ``name`` in any flat array laid out like ``params`` (e.g. optimizer state)."""
        return self._view(flat, name)

    def reset_parameters(self, rng: np.random.Generator) -> None:
        for i in range(self.n_layers):
            W, b = self.initializer(self.sizes[i], self.sizes[i + 1], rng, self.dtype)
            self._p[f"layers.{i}.W"][...] = W
            if f"layers.{i}.b" in self._p:
                self._p[f"layers.{i}.b"][...] = b
            if f"layers.{i}.gamma" in self._p:
                self._p[f"layers.{i}.gamma"][...] = 1.0
                self._p[f"layers.{i}.beta"][...] = 0.0
        for name, buf in self.buffers.items():
            buf[...] = 0.0 if name.endswith("running_mean") else 1.0

    # -- workspaces -----------------------------------------------------------------------

    def _workspace(self, n: int) -> Workspace:
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) > 8:  # bounded: train batch, last batch, eval chunks
                self._workspaces.clear()
            ws = self._workspaces[n] = build_workspace(self, n)
        return ws

    # -- forward / backward -----------------------------------------------------------------

    def forward(self, X: np.ndarray, *, training: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
        """Logits (n, n_outputs) for inputs X (n, n_inputs). The returned array is reused by the next call.

        ``training`` uses batch statistics and draws dropout masks from ``rng`` (required when
        training with dropout > 0).
        """
        if X.dtype != self.dtype:
            X = X.astype(self.dtype)
        n = X.shape[0]
        ws = self._workspace(n)
        self._last_training = training
        self._last_ws = ws
        a = X
        for i in range(self.n_layers):
            ws.inputs[i] = a
            z = dense_forward(a, self._p[f"layers.{i}.W"], self._p.get(f"layers.{i}.b"), ws.z[i])
            if not self.is_hidden(i):
                return z
            u = z
            if self.batchnorm:
                args = (z, self._p[f"layers.{i}.gamma"], self._p[f"layers.{i}.beta"],
                        self.buffers[f"layers.{i}.running_mean"], self.buffers[f"layers.{i}.running_var"],
                        ws.xhat[i], ws.u[i])
                if training:
                    if n < 2:
                        raise ValueError("BatchNorm needs at least 2 samples per training batch")
                    ws.inv_std[i] = bn.batchnorm_forward_train(*args, ws.ones)
                else:
                    ws.inv_std[i] = bn.batchnorm_forward_eval(*args)
                u = ws.u[i]
            elif self.norm == "layernorm":
                ws.inv_std[i] = ln.layernorm_forward(z, self._p[f"layers.{i}.gamma"], self._p[f"layers.{i}.beta"],
                                                     ws.xhat[i], ws.u[i])
                u = ws.u[i]
            a = self.activation.forward(u, ws.a[i])
            if self.dropout > 0:
                a = dropout_forward(a, self.dropout, self.dropout_mode, training, rng, ws.uniform[i], ws.mask[i],
                                    ws.drop_out[i])
            if i in self._block_start:  # h + f(h): the input of the block's first Dense is h
                a = np.add(a, ws.inputs[self._block_start[i]], out=ws.residual_out[i])
        raise AssertionError("unreachable")

    def _dropout_forward(self, i, a, ws, training, rng):
        return dropout_forward(a, self.dropout, self.dropout_mode, training, rng, ws.uniform[i], ws.mask[i],
                               ws.drop_out[i])

    def backward(self, grad_logits: np.ndarray) -> None:
        """Fill ``self.grads`` with dL/dθ given dL/d(logits) (n, n_outputs) from the last ``forward``."""
        ws = self._last_ws
        training = self._last_training
        g = grad_logits
        for i in range(self.n_layers - 1, -1, -1):
            j = i - 1  # the hidden layer feeding Dense i (-1: the inputs, whose gradient is not needed)
            da = ws.grad_a[j] if i else None
            dense_backward(ws.inputs[i], self._p[f"layers.{i}.W"], g, self._g[f"layers.{i}.W"],
                           self._g.get(f"layers.{i}.b"), ws.ones, da)
            if i == 0:
                return
            if i in self._block_last:  # h feeds the block starting at Dense i and, by the skip, its output
                da += ws.skip_grad[self._block_last[i]]
            if j in self._block_start:
                np.copyto(ws.skip_grad[j], da)
            if self.dropout > 0:
                dropout_backward(da, self.dropout, self.dropout_mode, training, ws.mask[j])
            dz = ws.grad_z[j]
            self.activation.backward(ws.u[j], ws.a[j], da, out=dz if self.norm == "none" else da)
            if self.batchnorm:
                bn.batchnorm_backward(
                    da, ws.xhat[j], ws.inv_std[j], self._p[f"layers.{j}.gamma"],
                    self._g[f"layers.{j}.gamma"], self._g[f"layers.{j}.beta"], dz, ws.ones, training,
                )
            elif self.norm == "layernorm":
                ln.layernorm_backward(da, ws.xhat[j], ws.inv_std[j], self._p[f"layers.{j}.gamma"],
                                      self._g[f"layers.{j}.gamma"], self._g[f"layers.{j}.beta"], dz, ws.ones)
            g = dz

    def output(self, logits: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply the output activation to logits (probabilities for classification)."""
        if out is None:
            out = np.empty_like(logits)
        if self.output_activation == "sigmoid":
            with np.errstate(over="ignore"):
                np.exp(np.negative(logits, out=out), out=out)
            out += 1.0
            return np.reciprocal(out, out=out)
        if self.output_activation == "softmax":
            np.subtract(logits, logits.max(axis=1, keepdims=True), out=out)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
            return out
        np.copyto(out, logits)
        return out

    def _output_backward(self, out: np.ndarray, grad_out: np.ndarray) -> np.ndarray:
        """dL/d(logits) from dL/d(output) for a non-fused loss, in place on grad_out."""
        if self.output_activation == "sigmoid":
            grad_out *= out * (1.0 - out)
        elif self.output_activation == "softmax":
            inner = (grad_out * out).sum(axis=1, keepdims=True)
            grad_out -= inner
            grad_out *= out
        return grad_out

    def loss_and_grads(self, X, targets, loss, *, training: bool = True, rng=None) -> float:
        """Forward, loss and backward in one call: fills ``self.grads``, returns the mean data loss."""
        value, out = self._forward_loss(X, targets, loss, training, rng)
        ws = self._last_ws
        self.backward(ws.grad_out if out is None else self._output_backward(out, ws.grad_out))
        return value

    def loss_value(self, X, targets, loss, *, training: bool = True, rng=None) -> float:
        """The mean data loss ``loss_and_grads`` returns, bit for bit, without the backward pass (what a
        finite difference needs)."""
        return self._forward_loss(X, targets, loss, training, rng)[0]

    def _forward_loss(self, X, targets, loss, training: bool, rng) -> tuple[float, np.ndarray | None]:
        """Forward and loss; the loss's gradient is left in the workspace's ``grad_out``. Returns the loss
        and the output activation's values (None when the loss takes the logits)."""
        logits = self.forward(X, training=training, rng=rng)
        ws = self._last_ws
        if loss.fused or self.output_activation == "identity":
            return loss.value_and_grad(logits, targets, ws.grad_out), None
        out = self.output(logits, ws.output)
        return loss.value_and_grad(out, targets, ws.grad_out), out

    # -- penalties ------------------------------------------------------------------------

    def penalty(self, l1: float, l2: float) -> float:
        """l1·Σ|W| + l2·ΣW² over every weight matrix (biases, gamma, beta excluded)."""
        w = self.params[: self.n_weights]
        value = 0.0
        if l1:
            value += l1 * float(np.abs(w).sum())
        if l2:
            value += l2 * float(np.dot(w, w))
        return value

    def add_penalty_grad(self, l1: float, l2: float) -> None:
        """grads[W] += l1·sign(W) + 2·l2·W."""
        w = self.params[: self.n_weights]
        gw = self.grads[: self.n_weights]
        if l1:
            gw += l1 * np.sign(w)
        if l2:
            gw += (2.0 * l2) * w

    # -- inference ------------------------------------------------------------------------

    def predict_proba(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Model outputs after the output activation, evaluation mode, in chunks of ``chunk`` rows."""
        parts = []
        for start in range(0, len(X), chunk):
            logits = self.forward(X[start : start + chunk], training=False)
            parts.append(self.output(logits))
        if not parts:
            return np.empty((0, self.sizes[-1]), dtype=self.dtype)
        return np.concatenate(parts)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class indices for classification outputs (sigmoid: p ≥ 0.5; softmax: argmax), else outputs."""
        proba = self.predict_proba(X)
        if self.output_activation == "sigmoid" and proba.shape[1] == 1:
            return (proba[:, 0] >= 0.5).astype(np.int64)
        if self.output_activation in ("sigmoid", "softmax"):
            return proba.argmax(axis=1)
        return proba

    def logits(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        parts = [self.forward(X[s : s + chunk], training=False).copy() for s in range(0, len(X), chunk)]
        return np.concatenate(parts) if parts else np.empty((0, self.sizes[-1]), dtype=self.dtype)

    # -- statistics (dlexp.nn.stats) ---------------------------------------------------------

    def segment_squares(self, flat: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Squared L2 norm of each parameter's segment of ``flat`` (see :func:`dlexp.nn.stats.segment_squares`)."""
        return stats.segment_squares(self, flat, scratch)

    def layer_stats(self) -> list[dict]:
        """Per-layer activation statistics of the last forward pass (see :func:`dlexp.nn.stats.layer_stats`)."""
        return stats.layer_stats(self)

    def layer_statistics(self, out: np.ndarray | None = None) -> np.ndarray:
        """The same as an array (see :func:`dlexp.nn.stats.layer_statistics`)."""
        return stats.layer_statistics(self, out)

    # -- persistence ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Named copies of parameters and buffers."""
        state = {name: self._p[name].copy() for name in self.param_names}
        state.update({name: buf.copy() for name, buf in self.buffers.items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        expected = set(self.param_names) | set(self.buffers)
        missing = expected - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}")
        expected_shapes = {**self.shapes, **{name: buf.shape for name, buf in self.buffers.items()}}
        for name, shape in expected_shapes.items():  # all checked before any is copied
            arr = state[name]
            if arr.shape != shape or arr.dtype != self.dtype:
                raise ValueError(f"{name}: {arr.dtype}{list(arr.shape)}, expected {self.dtype}{list(shape)}")
        for name in self.param_names:
            self._p[name][...] = state[name]
        for name, buf in self.buffers.items():
            buf[...] = state[name]

    def save(self, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> None:
        """Write parameters, buffers and the architecture to ``.npz`` atomically (tmp file + rename)."""
        arrays = self.state_dict()
        arrays[ARCHITECTURE] = np.array(json.dumps(self.architecture, sort_keys=True))
        if extra:
            arrays.update(extra)
        save_npz_atomic(path, arrays)

    @classmethod
    def load(cls, path: str | Path) -> MLP:
        with np.load(path, allow_pickle=False) as data:
            arch = json.loads(str(data[ARCHITECTURE]))
            model = cls(arch["n_inputs"], arch["hidden"], arch["n_outputs"],
                        activation=arch["activation"], init=arch["init"], dropout=arch["dropout"],
                        dropout_mode=arch["dropout_mode"], batchnorm=arch["batchnorm"],
                        norm=arch.get("norm", "none"), residual=arch.get("residual", 0),
                        output_activation=arch["output_activation"], dtype=arch["dtype"])
            model.load_state_dict({k: data[k] for k in data.files})
        return model

    def __repr__(self) -> str:
        return (f"MLP({' → '.join(map(str, self.sizes))}, activation={self.activation!r}, "
                f"norm={self.norm}, residual={self.residual}, dropout={self.dropout}, params={self.n_params:,}, "
                f"{self.dtype.name})")
