"""Where the step log's CSV text is made: here, or in a second process while training goes on.

Per-step logging ends in text: every logged number written in its shortest round-trip form, which
costs Python close to a microsecond a number (``benchmarks/loop_parts.py``: 0.82 µs for a W1 block);
on a small network (W1: 110 numbers a step) that is over a third of what logging a step costs. :class:`FormatProcess` sends each block of logged steps, as raw numbers, to a child
process (:mod:`dlexp.rundir.stepformat` run as a script: standard library only, no NumPy, started
in a fraction of a second) and takes the text back when the run writer needs it: before an epoch's
metrics row, before a checkpoint, at the end. On a machine with a free core the training loop no
longer waits for the text; the bytes are the same, made by the same function
(:func:`~dlexp.rundir.stepformat.block_text`).

The child never touches the run directory: the text comes back through a pipe and the parent writes
it with its own :class:`~dlexp.rundir.csvlog.CsvLog`, as before. At most one block is in flight, so
neither side can wait on the other's full pipe. If the child cannot start or dies, the blocks it
held are formatted here from the copies kept until their text arrives, and every later block too:
the run goes on, its files unchanged.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
from collections.abc import Callable

from dlexp.rundir import stepformat

PIPE_BYTES = 1 << 20  # a block's numbers (64 KiB) and its text fit in one pipe
START_VALUES = 20_000  # numbers logged before a child is worth starting (about 16 ms of formatting)
ENV = "DLEXP_FORMAT_PROCESS"  # "0": never a second process; "1": always, from the first block; unset: auto


def start_values(wanted: bool) -> int | None:
    """How many logged numbers start the child (None: format in this process): :data:`START_VALUES`
    where ``wanted``, unless the environment variable :data:`ENV` says ``0`` (never) or ``1`` (from
    the first block: the tests' way to exercise it on small runs)."""
    setting = os.environ.get(ENV, "").strip()
    if setting not in ("", "0", "1"):
        from dlexp.errors import DlexpError

        raise DlexpError(f"environment variable {ENV}={setting[:20]!r}: accepted values are 0 (format the step "
                         "log in this process), 1 (in a second process) or unset (a second process where a "
                         "core is free)")
    if setting:
        return 0 if setting == "1" else None
    return START_VALUES if wanted else None


class InlineText:
    """Step-log text made in this process, block by block, in order."""

    def __init__(self, layout: dict):
        self.layout = layout
        self._done: list[tuple[str, str]] = []

    def submit(self, message: bytes) -> None:
        """Format one block (:meth:`dlexp.rundir.steplog.StepLog.message`)."""
        self._done.append(stepformat.texts(message, self.layout))

    def take(self, wait: bool = True) -> list[tuple[str, str]]:
        """The (gradient, layer) texts of the blocks submitted since the last call, in order: all of
        them, or with ``wait=False`` those ready now (a block still being formatted comes later)."""
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        pass


class FormatProcess(InlineText):
    """Step-log text made in a child process (see the module's description).

    The child takes a moment to start (a fresh Python); blocks handed over meanwhile are formatted
    here, and the first block after it has said it is ready goes to it. Stopping it does not wait
    for it to exit: it ends at the end of its input and is reaped later (:func:`_reap`).

    Args:
        layout: :meth:`dlexp.rundir.steplog.StepLog.layout`.
        start_values: the child is started once this many numbers have been logged (short runs
            never start one).
        command: the child's command line (default: this Python running ``stepformat.py``).
    """

    def __init__(self, layout: dict, start_values: int = START_VALUES, command: list[str] | None = None):
        super().__init__(layout)
        self.start_values = start_values
        self.command = command or [sys.executable, "-I", "-S", stepformat.__file__]
        self._proc: subprocess.Popen | None = None
        self._ready = False  # the child has read the layout and said so
        self._in_flight: bytes | None = None  # the block sent and not yet answered
        self._given_up = False
        self._values = 0
        self.sent = 0  # blocks formatted by the child

    @property
    def running(self) -> bool:
        """A child is started (it may still be getting ready)."""
        return self._proc is not None

    def submit(self, message: bytes) -> None:
        self._collect()  # at most one block in flight
        _, n_grad, n_layer = stepformat.BLOCK.unpack_from(message)
        self._values += n_grad + n_layer
        if self._proc is None and not self._given_up and self._values >= self.start_values:
            self._start()
        if not (self._proc is not None and (self._ready or self._poll_ready())):
            super().submit(message)
            return
        self._in_flight = message
        self.sent += 1
        self._guard(lambda: _write_all(self._proc.stdin.fileno(), message))

    def take(self, wait: bool = True) -> list[tuple[str, str]]:
        if wait:
            self._collect()
        return super().take()

    def close(self) -> None:
        """Wait for the text in flight (kept for :meth:`take`) and stop the child."""
        self._collect()
        self._stop()

    # -- internals ----------------------------------------------------------------------------

    def _start(self) -> None:
        _reap()
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError):  # no process to spare, no Python to start: format here
            self._given_up = True
            return
        self._proc = proc
        for stream in (proc.stdin, proc.stdout):
            _grow_pipe(stream.fileno())
        layout = json.dumps(self.layout).encode("utf-8")
        self._guard(lambda: _write_all(proc.stdin.fileno(), stepformat.INIT.pack(len(layout)) + layout))

    def _poll_ready(self) -> bool:
        """Whether the child has said it is ready (reads its one-byte answer if it is there)."""
        def check() -> None:
            fd = self._proc.stdout.fileno()
            if _readable(fd):
                if _read_exactly(fd, len(stepformat.READY)) != stepformat.READY:
                    raise ValueError("the formatting process answered something else")
                self._ready = True

        self._guard(check)
        return self._ready

    def _collect(self) -> None:
        """Read the text of the block in flight (waiting for it)."""
        if self._in_flight is None:
            return

        def read() -> None:
            fd = self._proc.stdout.fileno()
            grad_size, layer_size = stepformat.REPLY.unpack(_read_exactly(fd, stepformat.REPLY.size))
            body = _read_exactly(fd, grad_size + layer_size)
            self._done.append((body[:grad_size].decode("utf-8"), body[grad_size:].decode("utf-8")))
            self._in_flight = None

        self._guard(read)

    def _guard(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the child's pipes; if the child is gone, format here from now on."""
        if self._proc is None:
            return
        try:
            action()
        except BaseException as exc:  # a broken pipe, the child's end of file, a torn reply, a signal
            # the pipes may hold half a message: never read them again
            self._stop(kill=True)
            self._given_up = True
            message, self._in_flight = self._in_flight, None
            if message is not None:
                super().submit(message)
            if not isinstance(exc, (OSError, EOFError, ValueError)):
                raise

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()  # the child reads the end of its input and exits
            except OSError:
                pass
        if kill:
            proc.kill()
        _EXITING.append(proc)
        _reap()


_EXITING: list[subprocess.Popen] = []  # stopped children not yet reaped


def _reap() -> None:
    """Collect the exit status of stopped children that have exited (never waits)."""
    for proc in list(_EXITING):
        if proc.poll() is not None:
            _EXITING.remove(proc)


@atexit.register
def _reap_at_exit() -> None:
    for proc in _EXITING:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _readable(fd: int) -> bool:
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):  # no select() on this kind of file here: wait for it instead
        return True


def _grow_pipe(fd: int) -> None:
    """Make a pipe hold :data:`PIPE_BYTES` where the OS allows it (Linux); else keep its size."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (ImportError, OSError):
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd: int, size: int) -> bytes:
    parts = []
    while size:
        chunk = os.read(fd, min(size, PIPE_BYTES))
        if not chunk:
            raise EOFError("the formatting process ended")
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)
