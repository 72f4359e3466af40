"""Where the engine is chosen: the one place a job learns whether its partitions run here or on Dask.

A job is written once as per-partition work plus a combine step (`features.partition_jobs`). It
asks `partition_runner(config)` for a runner and calls `runner.map(work, range(count), **shared)`:

- `LocalRunner` runs the partitions in this process, one at a time, so the job's memory is
  bounded by a partition, not by the bank;
- `DaskRunner` runs the same functions as tasks on a cluster (`churn.cluster`), one per partition.

Per-partition work writes its large outputs (feature rows, rejects) to files itself and returns
only small results (counts, digests, candidates), which `map` hands back in partition order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from churn.config import AppConfig


class LocalRunner:
    """Partitions run in this process, in order, one at a time."""

    kind = "local"

    def map(
        self,
        work: Callable[..., Any],
        items: Iterable,
        broadcast: dict[str, Any] | None = None,
        **shared: Any,
    ) -> list:
        """`work(item, **broadcast, **shared)` for every item, in order."""
        return [work(item, **(broadcast or {}), **shared) for item in items]


class DaskRunner:
    """Partitions run as tasks on a Dask cluster, one per item."""

    kind = "dask"

    def __init__(self, client):
        self.client = client

    def map(
        self,
        work: Callable[..., Any],
        items: Iterable,
        broadcast: dict[str, Any] | None = None,
        **shared: Any,
    ) -> list:
        """`work(item, **broadcast, **shared)` for every item, as tasks; results in order.
        `broadcast` holds the large arguments (a model, a frame): sent once to every worker."""
        items = list(items)
        if not items:
            return []
        sent = {name: self.client.scatter(value, broadcast=True) for name, value in (broadcast or {}).items()}
        return self.client.gather(self.client.map(work, items, **sent, **shared, pure=False))


@contextmanager
def partition_runner(config: AppConfig) -> Iterator[LocalRunner | DaskRunner]:
    """The runner of `config.engine.kind`; a Dask client for the block on the dask engine."""
    if config.engine.kind == "dask":
        from churn.cluster import dask_client

        with dask_client(config.engine) as client:
            yield DaskRunner(client)
        return
    yield LocalRunner()
