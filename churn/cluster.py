"""The Dask client of the `dask` engine: an existing cluster's scheduler, or a LocalCluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from churn.config import EngineConfig

log = logging.getLogger(__name__)

_active: list = []  # the client of an enclosing `dask_client`, shared by the steps inside it


@contextmanager
def dask_client(engine: EngineConfig) -> Iterator:
    """A `distributed.Client` for the job, closed (and a LocalCluster stopped) at the end.

    Inside another `dask_client` block, that block's client is reused (`churn run` starts one
    cluster for all its steps).

    With `engine.scheduler` set, connects to that cluster (on Kubernetes, YARN, SSH, ...): its
    workers need this package installed and the data and output paths visible under the same
    names. Otherwise starts a LocalCluster of `engine.workers` processes with
    `engine.threads_per_worker` threads and `engine.memory_limit` each.
    """
    if _active:
        yield _active[-1]
        return
    import dask
    from distributed import Client, LocalCluster

    from features.memory import ARROW_POOL_VARIABLE

    # text stays as pandas reads it (object/categorical), as on the local engine
    dask.config.set({"dataframe.convert-string": False})
    if engine.scheduler:
        client = Client(engine.scheduler)
        _active.append(client)
        try:
            log.info(
                "dask: connected to %s (%d workers)",
                engine.scheduler,
                len(client.scheduler_info()["workers"]),
            )
            yield client
        finally:
            _active.pop()
            client.close()
        return
    threads = str(engine.threads_per_worker)
    cluster = LocalCluster(
        n_workers=engine.workers,
        threads_per_worker=engine.threads_per_worker,
        memory_limit=engine.memory_limit,
        processes=True,
        dashboard_address=None,
        env={
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            # Arrow through the C library, as in this process (`features.memory`)
            ARROW_POOL_VARIABLE: os.environ.get(ARROW_POOL_VARIABLE, "system"),
        },
    )
    client = Client(cluster)
    _active.append(client)
    try:
        log.info(
            "dask: LocalCluster of %d workers x %d threads, memory limit %s",
            engine.workers,
            engine.threads_per_worker,
            engine.memory_limit,
        )
        yield client
    finally:
        _active.pop()
        client.close()
        cluster.close()
