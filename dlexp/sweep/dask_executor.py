"""Run sweep specs as Dask tasks: on a LocalCluster started here, or on an existing scheduler.

Each run is one task that returns its result dict (summary and per-epoch history); the run
directory is written by the worker, on the worker's file system — a cluster needs ``--runs-dir``
on storage every worker and this machine share. ``dask.distributed`` is imported only here, when
the executor starts, so dlexp works without the ``dask`` extra.
"""

from __future__ import annotations

import logging
import uuid
from typing import Callable

from dlexp.errors import DlexpError
from dlexp.sweep.runner import BLAS_ENV, OnResult, Result, RunSpec, _result, run_one_single_thread

MISSING = "--executor dask needs dask.distributed, which is not installed; install it with pip install 'dlexp[dask]'"


class DaskExecutor:
    """Submit runs to Dask. Without ``scheduler``, start a LocalCluster of ``jobs`` single-threaded
    worker processes (no dashboard) and close it on exit; with one, connect to it.

    A task whose worker dies (the process crashed, or was killed) is recorded ``failed`` — on the
    LocalCluster it is not retried elsewhere (``allowed-failures: 0``), so a run that crashes its
    worker cannot take down others; an external scheduler applies its own retry setting.
    """

    name = "dask"

    def __init__(self, jobs: int = 1, scheduler: str | None = None,
                 task: Callable[[RunSpec], Result] = run_one_single_thread, connect_timeout: float = 10.0):
        self.jobs = max(1, int(jobs))
        self.scheduler = scheduler
        self.task = task
        self.connect_timeout = connect_timeout
        self.client = None
        self.cluster = None
        self.slots = self.jobs

    def __enter__(self) -> "DaskExecutor":
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
                raise DlexpError(f"--scheduler {self.scheduler}: cannot connect ({message}); "
                                 "expected the address of a running dask scheduler, e.g. tcp://HOST:8786") from None
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                            dashboard_address=None, env={v: "1" for v in BLAS_ENV})
                self.client = Client(self.cluster)
        self.slots = max(1, sum(self.client.nthreads().values()))
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def run(self, specs: list[RunSpec], on_result: OnResult | None = None) -> list[Result]:
        """Submit every spec; results in spec order. ``on_result`` is called as runs end."""
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        futures = [self.client.submit(self.task, spec, key=f"dlexp-run-{token}-{spec.index}", pure=False)
                   for spec in specs]
        where = {fut.key: k for k, fut in enumerate(futures)}
        results: list[Result | None] = [None] * len(specs)
        try:
            for fut in as_completed(futures):
                k = where[fut.key]
                results[k] = self._collect(fut, specs[k])
                if on_result:
                    on_result(results[k])
        except KeyboardInterrupt:
            self.client.cancel(futures)
            raise
        return results  # type: ignore[return-value]

    @staticmethod
    def _collect(fut, spec: RunSpec) -> Result:
        try:
            return fut.result()
        except Exception as exc:  # KilledWorker (the worker died), CancelledError, a lost connection
            kind = type(exc).__name__
            if kind == "KilledWorker":
                return _result(spec, "failed", "the worker process died during this run (KilledWorker)")
            return _result(spec, "failed", f"{kind}: {' '.join(str(exc).split())}")
