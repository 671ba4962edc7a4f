"""The arrays a network's forward and backward passes write into, allocated once per batch size.

Every hidden layer's pre-activation and activation also live in one flat block each, so per-layer
statistics are a few ``reduceat`` calls instead of a loop of small calls (:mod:`dlexp.nn.stats`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Workspace:
    """Preallocated arrays for one batch size: every forward and backward pass writes into these (``out=``)."""

    n: int
    ones: np.ndarray
    inputs: list = field(default_factory=list)  # input to Dense i (n, fan_in)
    z: list = field(default_factory=list)  # Dense i output (n, fan_out)
    u: list = field(default_factory=list)  # pre-activation (BN output, or z)
    xhat: list = field(default_factory=list)
    inv_std: list = field(default_factory=list)
    a: list = field(default_factory=list)  # activation output
    drop_out: list = field(default_factory=list)  # after dropout
    mask: list = field(default_factory=list)  # keep-mask times scale
    uniform: list = field(default_factory=list)  # scratch for mask draws
    grad_a: list = field(default_factory=list)  # dL/d(input to Dense i+1)
    grad_z: list = field(default_factory=list)
    residual_out: dict = field(default_factory=dict)  # block's last layer -> h + f(h)
    skip_grad: dict = field(default_factory=dict)  # block's last layer -> dL/d(block output)
    grad_out: np.ndarray | None = None
    output: np.ndarray | None = None
    # every hidden layer's pre-activation and activation also live in one flat block each, so
    # per-layer statistics are a few reduceat calls instead of a loop of small calls
    u_flat: np.ndarray | None = None
    a_flat: np.ndarray | None = None
    starts: np.ndarray | None = None


def build_workspace(model, n: int) -> Workspace:
    """The workspace of ``model`` (an :class:`~dlexp.nn.model.MLP`) for batches of ``n`` rows."""
    dt = model.dtype
    ws = Workspace(n=n, ones=np.ones(n, dtype=dt))
    hidden_sizes = [n * w for w in model.sizes[1:-1]]
    ws.starts = np.cumsum([0, *hidden_sizes[:-1]]).astype(np.intp)
    total = sum(hidden_sizes)
    ws.u_flat, ws.a_flat = np.empty(total, dt), np.empty(total, dt)
    z_flat = np.empty(total, dt) if model.norm != "none" else ws.u_flat
    for i in range(model.n_layers):
        width = model.sizes[i + 1]
        hidden = model.is_hidden(i)
        if hidden:
            block = slice(ws.starts[i], ws.starts[i] + n * width)
            ws.z.append(z_flat[block].reshape(n, width))
            ws.u.append(ws.u_flat[block].reshape(n, width))
            ws.a.append(ws.a_flat[block].reshape(n, width))
        else:
            ws.z.append(np.empty((n, width), dt))
            ws.u.append(ws.z[i])
            ws.a.append(None)
        use_norm = hidden and model.norm != "none"
        ws.xhat.append(np.empty((n, width), dt) if use_norm else None)
        ws.inv_std.append(None)
        use_drop = hidden and model.dropout > 0
        ws.drop_out.append(np.empty((n, width), dt) if use_drop else None)
        ws.mask.append(np.empty((n, width), dt) if use_drop else None)
        ws.uniform.append(np.empty((n, width), dt) if use_drop else None)
        ws.grad_a.append(np.empty((n, width), dt) if hidden else None)
        ws.grad_z.append(np.empty((n, width), dt))
        if i in model._block_start:
            ws.residual_out[i] = np.empty((n, width), dt)
            ws.skip_grad[i] = np.empty((n, width), dt)
    ws.grad_out = np.empty((n, model.sizes[-1]), dt)
    ws.output = np.empty((n, model.sizes[-1]), dt)
    ws.inputs = [None] * model.n_layers
    return ws
