"""What promotion reads from the bank, as per-partition work plus a combine step, for every engine.

Promotion judges the challenger and the champion on the latest labelled snapshot (features and
labels of the customers active then), and compares their uplift models on the campaign months
the champion has not seen (`training.uplift_compare`). Both come from one read of each partition
(`partition_promotion_rows` through `features.partition_work.gather`); the whole bank in one
process (`promotion_rows_from_tables`) is the same work on a single partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from churn.config import AppConfig
from features.labels import confirmable_as_of
from features.partition_work import bank_months, gather


@dataclass(frozen=True)
class PromotionRows:
    features: pd.DataFrame  # the evaluation snapshot's features, labelled customers only
    labels: pd.DataFrame
    evaluated_on: str  # the snapshot's as-of date, or the held-out rows of a brought table
    campaigns: pd.DataFrame  # campaign rows of the months asked for (empty when none were)


def partition_promotion_rows(
    tables: Mapping[str, pd.DataFrame],
    months: tuple[pd.Timestamp, pd.Timestamp],
    config: AppConfig,
    campaign_months: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One partition's (or the whole bank's) labelled snapshot and campaign rows of
    `campaign_months`; `months` is the whole bank's first and last month-end."""
    from features.build import build_features
    from features.campaigns import campaign_rows
    from features.labels import build_labels, churn_dates

    products = tuple(config.products)
    as_of = confirmable_as_of(months[1], config.labels)
    dates = churn_dates(tables, config.labels, months)
    labels = build_labels(tables, as_of, config.labels, products, churn_date=dates)
    features = build_features(tables, as_of, config.features, products).loc[labels.index]
    campaigns = (
        campaign_rows(tables, config, only_months=list(campaign_months), months=months)
        if campaign_months
        else pd.DataFrame()
    )
    return features, labels, campaigns


def _combine(
    pieces: list[tuple], months: tuple[pd.Timestamp, pd.Timestamp], config: AppConfig
) -> PromotionRows:
    from features.campaigns import combine_campaign_rows

    features = pd.concat([p[0] for p in pieces])
    labels = pd.concat([p[1] for p in pieces])
    if len(pieces) > 1:  # ordered by customer, as the whole bank's snapshot is
        features, labels = features.sort_index(kind="stable"), labels.sort_index(kind="stable")
    as_of = confirmable_as_of(months[1], config.labels)
    campaigns = combine_campaign_rows([p[2] for p in pieces])
    return PromotionRows(features, labels, f"{as_of:%Y-%m-%d}", campaigns)


def promotion_rows(config: AppConfig, runner, campaign_months: Sequence[str] = ()) -> PromotionRows:
    """The configured bank's evaluation snapshot, at the latest as-of date whose labels the data
    confirms, and its campaign rows, partition by partition on `runner` (local or dask)."""
    parts, pieces, _ = gather(config, runner, partition_promotion_rows, campaign_months=list(campaign_months))
    return _combine(pieces, parts.months, config)


def promotion_rows_from_tables(
    tables: Mapping[str, pd.DataFrame], config: AppConfig, campaign_months: Sequence[str] = ()
) -> PromotionRows:
    """The same rows from a whole bank held in this process."""
    months = bank_months(tables)
    return _combine([partition_promotion_rows(tables, months, config, campaign_months)], months, config)


__all__ = ["PromotionRows", "promotion_rows", "promotion_rows_from_tables"]
