"""SIGINT and SIGTERM during a run: the first asks the trainer to stop after its step (the run ends
``interrupted``, resumable); a second stops the step at once, except while a file is being written.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlexp.trainer import Trainer

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class SignalStop:
    """What :func:`stop_on_signals` saw. The first signal asks the trainer to stop after its step and
    decides the exit code; a second one stops a step at once, except while :meth:`held` (a checkpoint
    or the summary is being written), where it is only noted: a file is never cut by a signal."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.holding = False

    @contextmanager
    def held(self):
        before, self.holding = self.holding, True
        try:
            yield self
        finally:
            self.holding = before


@contextmanager
def stop_on_signals(trainer: Trainer, ignore_after_stop: bool = False):
    """SIGINT/SIGTERM ask the trainer to stop after the current step (main thread only).

    ``ignore_after_stop``: for a caller that exits as soon as the run returns (the CLI). Once a signal
    has stopped the run, further ones are ignored to the end of the process instead of meeting the
    old handlers, so a late one can neither kill the process before it reports nor change its exit code.
    """
    stop = SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame):
        if stop.signal is None:
            stop.signal = signum
            trainer.request_stop("interrupted")
        elif not stop.holding:
            raise KeyboardInterrupt  # a second signal: stop now; the last checkpoint stays the one to resume

    old = {s: signal.signal(s, handler) for s in SIGNAL_EXIT}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, signal.SIG_IGN if ignore_after_stop and stop.signal is not None else h)
