"""Per-partition work over the configured bank, with its small results gathered: how training,
promotion and the monitoring jobs read the bank, on every engine.

`gather(config, runner, work, ...)` opens the bank's partitions (`open_partitions`), runs
`work(tables, months, config=config, **shared)` on each partition's validated tables through
the runner that `churn.engine.partition_runner` chose (in this process, in worker processes, or
as Dask tasks),
checks the share of rejected rows on the whole bank, and returns the results in partition order
for the job's combine step. `months` is the whole bank's first and last month-end, the one fact
a partition cannot know alone. The work runs on a whole bank held in this process the same way:
`work(tables, (first, last month-end), config=config)` once.

The feature stage and the daily list, whose outputs are as large as the bank, write them per
partition instead (`features.partition_jobs`, `serving.list_job`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from churn.config import AppConfig
from features.memory import release_memory
from features.partition_jobs import Partitions, check_reject_shares, open_partitions, validated_partition
from features.schema import GLOBAL_TABLES

Work = Callable[..., Any]  # work(tables, months, config=config, **shared) -> a small result


def on_partition(k: int, parts: Partitions, task: Work, shared: dict[str, Any], **broadcast: Any) -> Any:
    """`task` on partition k, read and validated (its rejects written as parts)."""
    tables = validated_partition(parts, k).tables
    out = task(tables, parts.months, **broadcast, **shared)
    del tables
    release_memory()
    return out


class Gathered(NamedTuple):
    parts: Partitions  # the bank's partitions, with its first and last month-end
    pieces: list  # the work's result on each partition, in order
    rejects: dict[str, int]  # rows rejected per table over the whole bank


def gather(
    config: AppConfig,
    runner,
    work: Work,
    broadcast: dict[str, Any] | None = None,
    **shared: Any,
) -> Gathered:
    """`work`'s result on each of the bank's partitions, in order. `broadcast` holds the large
    arguments (a model), sent once to every worker."""
    parts = open_partitions(config, runner)
    shared = {"config": config, **shared}
    pieces = runner.map(on_partition, range(parts.count), broadcast, parts=parts, task=work, shared=shared)
    return Gathered(parts, pieces, check_reject_shares(parts, config.data.max_reject_share))


def valid_rows(tables: Mapping[str, pd.DataFrame], months, config: AppConfig) -> dict[str, int]:
    """A partition's valid rows per table (`churn validate`)."""
    return {name: len(frame) for name, frame in tables.items()}


def total_valid_rows(pieces: list[dict[str, int]]) -> dict[str, int]:
    """The partitions' valid rows added up; a table every partition holds whole, once."""
    return {
        name: pieces[0][name] if name in GLOBAL_TABLES else sum(p[name] for p in pieces) for name in pieces[0]
    }


def bank_months(tables: Mapping[str, pd.DataFrame]) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last month-end of a whole bank's balances: the `months` its work is given."""
    month_end = tables["balances"]["month_end"]
    return month_end.min(), month_end.max()


def gather_configured(
    config: AppConfig, work: Work, broadcast: dict[str, Any] | None = None, **shared: Any
) -> Gathered:
    """`gather` on the runner of the configured engine, opened and closed for this one job."""
    from churn.engine import partition_runner

    with partition_runner(config) as runner:
        return gather(config, runner, work, broadcast, **shared)


__all__ = [
    "Gathered",
    "bank_months",
    "gather",
    "gather_configured",
    "on_partition",
    "total_valid_rows",
    "valid_rows",
]
