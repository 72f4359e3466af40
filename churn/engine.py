"""Where the engine is chosen: the one place a job learns whether its partitions run here or on Dask.

A job is written once as per-partition work plus a combine step (`features.partition_jobs`). It
asks `partition_runner(config)` for a runner and calls `runner.map(work, range(count), **shared)`:

- `LocalRunner` runs the partitions on this machine: in this process one at a time, or, with
  `engine.local_processes` above 1, in that many worker processes, each holding one partition at
  a time; the job's memory is bounded by a partition (times the processes), not by the bank;
- `DaskRunner` runs the same functions as tasks on a cluster (`churn.cluster`), one per partition.

Per-partition work writes its large outputs (feature rows, rejects) to files itself and returns
only small results (counts, digests, candidates), which `map` hands back in partition order.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from churn.config import AppConfig


class _Runner:
    """What both runners share: `map` is `imap` gathered."""

    def imap(self, work: Callable[..., Any], items: Iterable, broadcast=None, **shared: Any) -> Iterator:
        raise NotImplementedError

    def map(
        self,
        work: Callable[..., Any],
        items: Iterable,
        broadcast: dict[str, Any] | None = None,
        **shared: Any,
    ) -> list:
        """`work(item, **broadcast, **shared)` for every item, results in order. `broadcast` holds
        the large arguments (a model, a frame): sent once to every worker, not with every item."""
        return list(self.imap(work, items, broadcast, **shared))


class LocalRunner(_Runner):
    """Partitions run on this machine, results in order: in this process one at a time, or in a
    pool of worker processes (`pool`), one partition per process at a time.

    In a pool, `broadcast` (the large arguments: a model, a frame) is pickled once per `map` into
    `folder` and loaded once per worker, not sent with every partition."""

    kind = "local"

    def __init__(self, pool: ProcessPoolExecutor | None = None, folder: Path | None = None):
        self.pool = pool
        self.folder = folder

    def imap(
        self,
        work: Callable[..., Any],
        items: Iterable,
        broadcast: dict[str, Any] | None = None,
        **shared: Any,
    ) -> Iterator:
        """`map`'s results one at a time, in order, each as soon as it is done (in this process:
        each item is worked when the caller asks for its result)."""
        if self.pool is None:
            for item in items:
                yield work(item, **(broadcast or {}), **shared)
            return
        sent = None
        if broadcast:
            sent = str(self.folder / f"broadcast-{uuid.uuid4().hex}.pickle")
            Path(sent).write_bytes(pickle.dumps(broadcast, protocol=pickle.HIGHEST_PROTOCOL))
        futures: list[Future] = [self.pool.submit(_call, work, item, sent, shared) for item in items]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:  # after a failure: the partitions not started yet are not run
                future.cancel()
            if sent:
                Path(sent).unlink(missing_ok=True)


_loaded: dict[str, dict[str, Any]] = {}  # in a worker process: the current map's broadcast


def _call(work: Callable[..., Any], item: Any, sent: str | None, shared: dict[str, Any]) -> Any:
    """In a worker: one partition's work, with the map's broadcast read once per process."""
    broadcast: dict[str, Any] = {}
    if sent:
        if sent not in _loaded:
            _loaded.clear()  # the previous map's model or frame is no longer needed
            _loaded[sent] = pickle.loads(Path(sent).read_bytes())
        broadcast = _loaded[sent]
    return work(item, **broadcast, **shared)


def _start_worker(threads: int) -> None:
    """A worker's native thread pools sized to its share of the cores (lightgbm's OpenMP, Arrow),
    so that the processes do not oversubscribe the machine."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import pyarrow

    pyarrow.set_cpu_count(threads)


class DaskRunner(_Runner):
    """Partitions run as tasks on a Dask cluster, one per item."""

    kind = "dask"

    def __init__(self, client):
        self.client = client

    def imap(
        self,
        work: Callable[..., Any],
        items: Iterable,
        broadcast: dict[str, Any] | None = None,
        **shared: Any,
    ) -> Iterator:
        """`map`'s results one at a time, in order, each as soon as its task is done."""
        items = list(items)
        if not items:
            return
        sent = {name: self.client.scatter(value, broadcast=True) for name, value in (broadcast or {}).items()}
        futures = self.client.map(work, items, **sent, **shared, pure=False)
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:  # after a failure: the tasks not done yet are not run
                if not future.done():
                    future.cancel()


@contextmanager
def partition_runner(config: AppConfig) -> Iterator[LocalRunner | DaskRunner]:
    """The runner of `config.engine.kind`; a Dask client, or the local engine's worker processes,
    for the block."""
    if config.engine.kind == "dask":
        from churn.cluster import dask_client

        with dask_client(config.engine) as client:
            yield DaskRunner(client)
        return
    processes = config.engine.local_processes
    if processes == 1:
        yield LocalRunner()
        return
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // processes)
    with (
        tempfile.TemporaryDirectory(prefix="churn-broadcast-") as folder,
        ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),  # a fresh interpreter: no inherited threads
            initializer=_start_worker,
            initargs=(threads,),
        ) as pool,
    ):
        yield LocalRunner(pool, Path(folder))
