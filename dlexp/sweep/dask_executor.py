"""Run sweep specs as Dask tasks: on a LocalCluster started here, or on an existing scheduler.

Each run is one task that returns its result dict (summary and per-epoch history); the run
directory is written by the worker, on the worker's file system — a cluster needs ``--runs-dir``
on storage every worker and this machine share. ``dask.distributed`` is imported only here, when
the executor starts, so dlexp works without the ``dask`` extra.
"""

from __future__ import annotations

import logging
import signal
import tempfile
import uuid
from collections.abc import Callable

from dlexp.errors import ArgumentError, DlexpError
from dlexp.sweep.task import (
    BLAS_ENV,
    OnResult,
    Result,
    RunSpec,
    longest_first,
    not_run_result,
    run_one_single_thread,
)

CONNECT_TIMEOUT_S = 10.0
MISSING = ("--executor dask needs dask.distributed, which is not installed; "
           "install it with pip install 'dlexp[dask]'")


class DaskExecutor:
    """Submit runs to Dask. Without ``scheduler``, start a LocalCluster of ``jobs`` single-threaded
    worker processes (no dashboard) and close it on exit; with one, connect to it.

    A task whose worker dies (the process crashed, or was killed) is recorded ``failed``. Tasks are
    submitted one per worker thread at a time, so a dying worker holds no other run. On the
    LocalCluster the task is not retried (``allowed-failures: 0``); an external scheduler applies
    its own setting (dask's default retries it on up to 3 more workers before giving up).

    :meth:`cancel` (SIGINT or SIGTERM): the tasks are cancelled; runs in flight are recorded
    ``interrupted``, the others ``cancelled``, and leaving the executor closes the LocalCluster, which
    ends its worker processes (a run in flight is stopped where it is; its last checkpoint stays
    resumable). On an external scheduler, a task already running finishes on its worker: Dask cannot
    interrupt it.
    """

    name = "dask"

    def __init__(self, jobs: int = 1, scheduler: str | None = None,
                 task: Callable[[RunSpec], Result] = run_one_single_thread,
                 connect_timeout: float | None = None):
        self.jobs = max(1, int(jobs))
        self.scheduler = scheduler
        self.task = task
        self.connect_timeout = CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout
        self.client = None
        self.cluster = None
        self.scratch: tempfile.TemporaryDirectory | None = None  # the LocalCluster's worker files
        self.slots = self.jobs
        self.cancelled_by: int | None = None

    def cancel(self, signum: int) -> None:
        """Called from a signal handler in the main thread: the first signal stops the wait in
        :meth:`run` (or the cluster's start) with KeyboardInterrupt; later ones are ignored while
        the cluster closes."""
        if self.cancelled_by is None:
            self.cancelled_by = signum
            raise KeyboardInterrupt

    def __enter__(self) -> DaskExecutor:
        try:
            return self._start()
        except BaseException:  # a failed or interrupted start leaves no cluster behind
            self.__exit__()
            raise

    def _start(self) -> DaskExecutor:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise DlexpError(MISSING) from None
        logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO chatter on the terminal
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=f"{self.connect_timeout}s")
            except Exception as exc:  # OSError, TimeoutError, ValueError (bad address)
                message = " ".join(str(exc).split()) or type(exc).__name__
                raise ArgumentError("scheduler", self.scheduler, f"cannot connect ({message}); expected the "
                                    "address of a running dask scheduler, e.g. tcp://HOST:8786") from None
        else:
            # a run that crashes its worker is not retried on another one
            # its own scratch folder, removed on exit (dask would leave dask-scratch-space/ in the temp dir)
            self.scratch = tempfile.TemporaryDirectory(prefix="dlexp-dask-")
            with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                                  "temporary-directory": self.scratch.name}):
                self.cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                            dashboard_address=None, env={v: "1" for v in BLAS_ENV},
                                            local_directory=self.scratch.name)
                self.client = Client(self.cluster)
        self.slots = max(1, sum(self.client.nthreads().values()))
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.scratch is not None:
            self.scratch.cleanup()
        self.client = self.cluster = self.scratch = None

    def run(self, specs: list[RunSpec], on_result: OnResult | None = None) -> list[Result]:
        """Run every spec; results in spec order. ``on_result`` is called as runs end.

        At most one task per worker thread is submitted at a time: the scheduler would otherwise
        hand a worker several small tasks at once, and a worker that dies fails all it holds.
        """
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        results: list[Result | None] = [None] * len(specs)
        waiting = iter(longest_first(specs))
        running = as_completed()
        where: dict[str, int] = {}

        def submit_next() -> None:
            k = next(waiting, None)
            if k is not None:
                fut = self.client.submit(self.task, specs[k], key=f"dlexp-run-{token}-{k}", pure=False)
                where[fut.key] = k
                running.add(fut)

        try:
            for _ in range(self.slots):
                submit_next()
            for fut in running:
                k = where.pop(fut.key)
                results[k] = self._collect(fut, specs[k])
                fut.release()
                submit_next()
                if on_result:
                    on_result(results[k])
        except KeyboardInterrupt:
            self.cancelled_by = self.cancelled_by or signal.SIGINT
            self.client.cancel(list(running.futures))
            submitted = set(where.values())
            for k, result in enumerate(results):
                if result is None:
                    results[k] = (not_run_result(specs[k], "interrupted", "stopped by its sweep (Dask task cancelled)")
                                  if k in submitted else not_run_result(specs[k], "cancelled"))
        return results  # type: ignore[return-value]

    @staticmethod
    def _collect(fut, spec: RunSpec) -> Result:
        try:
            return fut.result()
        except Exception as exc:  # KilledWorker (the worker died), CancelledError, a lost connection
            kind = type(exc).__name__
            if kind == "KilledWorker":
                return not_run_result(spec, "failed",
                                      "the worker process died during this run (KilledWorker)")
            return not_run_result(spec, "failed", f"{kind}: {' '.join(str(exc).split())}")
