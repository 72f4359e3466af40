"""What training reads from the bank, as per-partition work plus a combine step, for every engine.

Training needs three things from the raw tables: the stacked monthly snapshots the models learn
from, the campaign rows the uplift models learn from, and the lineage of what was read (rows per
table and a content digest). A partition's work (`partition_rows`) computes all three from its
validated tables in one read; `training_rows` runs it on every partition through the runner that
`churn.engine.partition_runner` chose (`features.partition_work.gather`), and `combine` puts the
pieces together in the order the whole bank's would have. The whole bank in one process
(`rows_from_tables`: tests, benchmarks) is the same work on a single partition, so both give the
same rows (`features.partition_work`).

The dask engine keeps its snapshots on the cluster (`training.distributed`) and asks the
partitions for the rest only (`stacked=False`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.partition_work import bank_months, gather
from features.schema import GLOBAL_TABLES
from features.snapshots import build_training_set, snapshot_dates_between
from training.split import TimeSplit, out_of_time_split


@dataclass(frozen=True)
class TrainingRows:
    """The bank as training sees it."""

    split: TimeSplit
    # the snapshots of `split.train`, `split.validation` and `split.test`, indexed by (as_of,
    # customer_id); None on the dask engine
    parts: dict[str, pd.DataFrame] | None
    campaigns: pd.DataFrame  # campaign rows (`features.campaigns.campaign_rows`), empty without uplift
    counts: pd.DataFrame  # `table`, `rows`: validated rows per table
    digest: str  # content digest of the validated tables, the same however the bank is partitioned

    @property
    def lineage(self) -> tuple[pd.DataFrame, str]:
        return self.counts, self.digest


def training_split(months: tuple[pd.Timestamp, pd.Timestamp], config: AppConfig) -> TimeSplit:
    """The snapshot dates of a bank whose balances span `months`, split out of time."""
    dates = snapshot_dates_between(*months, config.labels, config.snapshots.count)
    return out_of_time_split(dates, config.labels.horizon_days, config.training.validation_snapshots)


def table_hashes(tables: Mapping[str, pd.DataFrame]) -> dict[str, tuple[int, int]]:
    """Rows and the wrapping sum of the row hashes of every table: a multiset hash, so the sums
    of a bank's partitions add up to the whole bank's whatever the partitions and row order."""
    out = {}
    for name, frame in tables.items():
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        out[name] = (len(frame), int(hashes.sum(dtype=np.uint64)))
    return out


def lineage_of(pieces: list[dict[str, tuple[int, int]]]) -> tuple[pd.DataFrame, str]:
    """Rows per table and the content digest of partitions' `table_hashes` put together. A table
    every partition holds whole (`GLOBAL_TABLES`) counts once."""
    total: dict[str, list[int]] = {}
    for k, piece in enumerate(pieces):
        for name, (rows, summed) in piece.items():
            if name in GLOBAL_TABLES and k > 0:
                continue
            entry = total.setdefault(name, [0, 0])
            entry[0] += rows
            entry[1] = (entry[1] + summed) % 2**64
    digest = hashlib.sha256()
    for name in sorted(total):
        digest.update(f"{name}:{total[name][0]}:{total[name][1]};".encode())
    counts = pd.DataFrame({"table": list(total), "rows": [v[0] for v in total.values()]})
    return counts, digest.hexdigest()[:20]


def partition_rows(
    tables: Mapping[str, pd.DataFrame],
    months: tuple[pd.Timestamp, pd.Timestamp],
    config: AppConfig,
    stacked: bool = True,
) -> dict:
    """One partition's (or the whole bank's) snapshots, campaign rows and table hashes; `months`
    is the whole bank's first and last month-end (`features.partition_work`)."""
    from features.campaigns import campaign_rows

    out: dict = {"hashes": table_hashes(tables), "stacked": None}
    if stacked:
        split = training_split(months, config)
        out["stacked"] = build_training_set(
            tables,
            [*split.train, *split.validation, split.test],
            config.features,
            config.labels,
            tuple(config.products),
            months,
        )
    uplift = config.uplift.enabled and config.playbook is not None
    out["campaigns"] = campaign_rows(tables, config, months=months) if uplift else pd.DataFrame()
    return out


def combine(split: TimeSplit, pieces: list[dict]) -> TrainingRows:
    """The partitions' pieces as the whole bank's rows: snapshots cut into the split's parts and
    ordered by (as_of, customer_id), campaign rows by month and customer, as `build_training_set`
    and `campaign_rows` order them. Each piece's snapshots are let go once cut, so the bank's
    snapshots are held about once, not twice."""
    from features.campaigns import combine_campaign_rows

    parts = None
    if pieces and pieces[0]["stacked"] is not None:
        dates = {"train": split.train, "validation": split.validation, "test": [split.test]}
        cut: dict[str, list[pd.DataFrame]] = {name: [] for name in dates}
        for piece in pieces:
            stacked = piece.pop("stacked")
            as_of = stacked.index.get_level_values("as_of")
            for name, when in dates.items():
                cut[name].append(stacked[as_of.isin(when)])
            del stacked, as_of
        parts = {}
        for name in dates:
            frames = cut.pop(name)
            parts[name] = frames[0] if len(frames) == 1 else pd.concat(frames).sort_index(kind="stable")
    counts, digest = lineage_of([p["hashes"] for p in pieces])
    return TrainingRows(split, parts, combine_campaign_rows([p["campaigns"] for p in pieces]), counts, digest)


def rows_from_tables(tables: Mapping[str, pd.DataFrame], config: AppConfig) -> TrainingRows:
    """The training rows of a whole bank held in this process: one partition."""
    months = bank_months(tables)
    return combine(training_split(months, config), [partition_rows(tables, months, config)])


def training_rows(config: AppConfig, runner, stacked: bool = True) -> TrainingRows:
    """The configured bank's training rows, partition by partition on `runner` (local or dask).
    Rejected rows are written and their shares checked as a whole-bank validation would."""
    parts, pieces, _ = gather(config, runner, partition_rows, stacked=stacked)
    return combine(training_split(parts.months, config), pieces)


__all__ = [
    "TrainingRows",
    "lineage_of",
    "rows_from_tables",
    "table_hashes",
    "training_rows",
    "training_split",
]
