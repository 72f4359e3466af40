"""The dask engine's dataframes over the customer partitions: training snapshots and promotion's set.

The partitions and their validation are the engine-agnostic `features.partition_jobs`; here they
become Dask dataframes (`dd.from_map`, one partition per customer partition) for the jobs that
still work on a lazy frame (training on the cluster, promotion's evaluation set).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.catalog import feature_catalog
from features.partition_jobs import Partitions, check_reject_shares, open_partitions, validated_partition

LABEL_COLUMNS = ("churn", "churn_date", "next_product")

__all__ = ["Partitions", "open_partitions", "validated_partition", "check_reject_shares"]


def features_meta(config: AppConfig) -> pd.DataFrame:
    """The zero-row frame `build_features` returns, for Dask's metadata."""
    catalog = feature_catalog(config.features, tuple(config.products))
    columns = {}
    for spec in catalog:
        if spec.dtype == "category":
            columns[spec.name] = pd.Categorical([], categories=spec.categories)
        else:
            columns[spec.name] = np.array([], dtype=np.int64 if spec.dtype == "int" else np.float64)
    return pd.DataFrame(columns, index=pd.Index([], dtype=np.int64, name="customer_id"))


def snapshot_meta(config: AppConfig) -> pd.DataFrame:
    return features_meta(config).assign(
        churn=pd.Series([], dtype=np.float64),
        churn_date=pd.Series([], dtype="datetime64[ns]"),
        next_product=pd.Series([], dtype=object),
        labelled=pd.Series([], dtype=bool),
    )


def snapshot_partition(k: int, parts: Partitions, as_of: pd.Timestamp, config: AppConfig) -> pd.DataFrame:
    """Features of partition k's active customers at `as_of`, with their labels where they have
    one (`labelled`; customers who had already churned have features but no label)."""
    from features.build import build_features
    from features.labels import build_labels, churn_dates

    tables = validated_partition(parts, k).tables
    products = tuple(config.products)
    features = build_features(tables, as_of, config.features, products)
    dates = churn_dates(tables, config.labels, parts.months)
    labels = build_labels(tables, as_of, config.labels, products, churn_date=dates)
    frame = features.join(labels, how="left")
    frame["churn"] = frame["churn"].astype(np.float64)
    frame["labelled"] = frame.index.isin(labels.index)
    return frame


def snapshot_frame(parts: Partitions, as_of: pd.Timestamp, config: AppConfig):
    """`snapshot_partition` over every partition, as one Dask dataframe indexed by customer id."""
    import dask.dataframe as dd

    return dd.from_map(
        snapshot_partition,
        range(parts.count),
        parts=parts,
        as_of=pd.Timestamp(as_of),
        config=config,
        meta=snapshot_meta(config),
        divisions=parts.divisions,
        label="snapshot",
    )


def split_snapshot(frame, config: AppConfig):
    """(features, labels) of a snapshot frame, with the local engine's columns and types."""
    names = list(features_meta(config).columns)
    labelled = frame[frame["labelled"]]
    labels = labelled[list(LABEL_COLUMNS)].astype({"churn": np.int64})
    return frame[names], labels


def labelled_snapshot(config: AppConfig, client) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The latest labelled snapshot, built on the cluster and gathered to the client: what
    promotion judges both models on (`training.promote.evaluation_set` on the local engine)."""
    from churn.engine import DaskRunner
    from features.labels import confirmable_as_of

    parts = open_partitions(config, DaskRunner(client))
    as_of = confirmable_as_of(parts.months[1], config.labels)
    frame = snapshot_frame(parts, as_of, config)
    labelled = frame[frame["labelled"]].compute()  # one pass over the partitions
    check_reject_shares(parts, config.data.max_reject_share)
    features, labels = split_snapshot(labelled, config)
    return features, labels, f"{as_of:%Y-%m-%d}"
