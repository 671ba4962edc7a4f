"""The CSV text of logged steps (``grad_norms.csv``, ``layer_stats.csv``), from plain numbers, and
the small program that makes it in a second process.

Standard library only: this file also runs on its own, ``python -I -S stepformat.py``, as the child
process of :class:`dlexp.rundir.formatproc.FormatProcess`, which hands it each block of logged steps
as raw numbers and writes the text it gets back. The parent's files, their locks and their
crash-safety stay with the parent (:class:`~dlexp.rundir.csvlog.CsvLog`); the child only turns
numbers into text, with the same function the parent uses when it formats a block itself, so the
bytes cannot depend on where they were made.

Numbers are written as :func:`dlexp.rundir.csvlog.format_value` writes them: Python's shortest
round-trip ``repr``, NaN as an empty field.

The protocol, little-endian, over the child's stdin and stdout:

- once: ``<Q`` length, then that many bytes of JSON: the layout of a block
  (:meth:`dlexp.rundir.steplog.StepLog.layout`: each row's constant middle, ``"layer,param,"`` and
  ``"layer,activation,"``, the numbers per row, and which layer column is written as a square root),
  answered with :data:`READY`;
- per block: ``<QQQ`` (steps, gradient values, layer values), then the steps and epochs (int64)
  and the gradient and layer values (float64), step-major; the reply is ``<QQ`` (bytes of gradient
  text, bytes of layer text) and the two UTF-8 texts.
"""

from __future__ import annotations

import json
import struct
import sys

INIT = struct.Struct("<Q")
READY = b"R"  # the child's answer to the layout
BLOCK = struct.Struct("<QQQ")
REPLY = struct.Struct("<QQ")


def block_text(steps: list[int], epochs: list[int], keys: list[str], values: list[float], n_stats: int,
               sqrt_column: int | None = None) -> str:
    """``step,epoch,<key><v1>,...,<vK>\\n`` for every step and key, step-major.

    ``values`` holds each step's rows one after the other, ``n_stats`` numbers per row (it is
    changed in place where ``sqrt_column`` is given: that column is replaced by its square root).
    """
    if not steps:
        return ""
    if sqrt_column is not None:
        values[sqrt_column::n_stats] = [v ** 0.5 for v in values[sqrt_column::n_stats]]
    text = list(map(repr, values))
    if "nan" in text:  # NaN is an empty field
        at = text.index("nan")
        try:
            while True:
                text[at] = ""
                at = text.index("nan", at + 1)
        except ValueError:
            pass
    rows = []
    for r, key in enumerate(keys):  # "{0},{1},<key>{2},{3},{4}\n": step, epoch, then this row's fields
        fields = ",".join(f"{{{2 + n_stats * r + k}}}" for k in range(n_stats))
        rows.append("{0},{1}," + key.replace("{", "{{").replace("}", "}}") + fields + "\n")
    template = "".join(rows).format
    width = n_stats * len(keys)
    return "".join([template(step, epoch, *text[width * i: width * (i + 1)])
                    for i, (step, epoch) in enumerate(zip(steps, epochs))])


def block_message(n: int, steps: bytes, epochs: bytes, grads: bytes, layers: bytes) -> bytes:
    """One block of ``n`` steps as the child reads it (arrays as raw little-endian bytes)."""
    return b"".join((BLOCK.pack(n, len(grads) // 8, len(layers) // 8), steps, epochs, grads, layers))


def texts(message: bytes | memoryview, layout: dict) -> tuple[str, str]:
    """The gradient and layer text of one :func:`block_message` laid out as ``layout`` says."""
    view = memoryview(message)
    n, n_grad, n_layer = BLOCK.unpack_from(view)
    at = BLOCK.size
    steps = view[at: at + 8 * n].cast("q").tolist()
    at += 8 * n
    epochs = view[at: at + 8 * n].cast("q").tolist()
    at += 8 * n
    grads = view[at: at + 8 * n_grad].cast("d").tolist()
    at += 8 * n_grad
    layers = view[at: at + 8 * n_layer].cast("d").tolist()
    return (block_text(steps, epochs, layout["grad_keys"], grads, layout["grad_stats"]),
            block_text(steps, epochs, layout["layer_keys"], layers, layout["layer_stats"], layout["layer_sqrt"]))


def _read_exactly(stream, size: int) -> bytes | None:
    """``size`` bytes, or None at the end of the stream (the parent closed it or exited)."""
    parts = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def serve(inp, out) -> None:
    """The child's loop: read blocks, write their texts, until the parent closes ``inp``."""
    head = _read_exactly(inp, INIT.size)
    if head is None:
        return
    layout = json.loads(_read_exactly(inp, INIT.unpack(head)[0]) or b"{}")
    out.write(READY)
    out.flush()
    while True:
        head = _read_exactly(inp, BLOCK.size)
        if head is None:
            return
        n, n_grad, n_layer = BLOCK.unpack(head)
        body = _read_exactly(inp, 8 * (2 * n + n_grad + n_layer))
        if body is None:
            return
        grad_text, layer_text = (t.encode("utf-8") for t in texts(head + body, layout))
        out.write(REPLY.pack(len(grad_text), len(layer_text)) + grad_text + layer_text)
        out.flush()


if __name__ == "__main__":
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop; it closes stdin
    try:  # a spare core is this process's to use, the training's core is not: where the OS puts both on
        os.nice(10)  # one core for a while, the training keeps about 90 % of it
    except (AttributeError, OSError):
        pass
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    serve(sys.stdin.buffer, sys.stdout.buffer)
