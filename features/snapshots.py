"""Training sets: monthly as-of snapshots of features and labels, stacked for out-of-time splits."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from features.build import build_features
from features.labels import build_labels, churn_dates, confirmable_as_of
from features.settings import FeatureConfig, LabelConfig

# Features look back up to six month-ends and 365 days; earlier snapshots would see truncated history.
MIN_HISTORY_MONTHS = 6


def snapshot_dates(tables: Mapping[str, pd.DataFrame], rule: LabelConfig, count: int) -> list[pd.Timestamp]:
    """Up to `count` monthly as-of dates ending at the latest fully labelled month, oldest first.

    Raises:
        ValueError: when the data is too short for even one labelled snapshot with enough history.
    """
    month_end = tables["balances"]["month_end"]
    return snapshot_dates_between(month_end.min(), month_end.max(), rule, count)


def snapshot_dates_between(
    data_start: pd.Timestamp, data_end: pd.Timestamp, rule: LabelConfig, count: int
) -> list[pd.Timestamp]:
    """`snapshot_dates` from the first and last month-end of the data alone."""
    latest = confirmable_as_of(data_end, rule)
    earliest = (pd.Timestamp(data_start) + pd.offsets.MonthBegin(MIN_HISTORY_MONTHS)).normalize()
    dates = [latest - pd.offsets.MonthBegin(k) if k else latest for k in range(count)]
    dates = sorted(d for d in dates if d >= earliest)
    if not dates:
        raise ValueError(
            f"data from {earliest - pd.offsets.MonthBegin(MIN_HISTORY_MONTHS):%Y-%m} to "
            f"{pd.Timestamp(data_end):%Y-%m-%d} is too short: a snapshot needs "
            f"{MIN_HISTORY_MONTHS} months of history and a confirmed {rule.horizon_days}-day horizon"
        )
    return dates


def build_training_set(
    tables: Mapping[str, pd.DataFrame],
    as_of_dates: list[pd.Timestamp],
    features: FeatureConfig,
    rule: LabelConfig,
    products: tuple[str, ...],
    months: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """Stack features and labels for each as-of date (`months`: see `churn_dates`).

    Returns:
        One row per (as_of, customer_id) for customers active and not yet churned at that date,
        with the feature columns followed by `churn`, `churn_date` and `next_product`; indexed by
        (`as_of`, `customer_id`) so later work can split out of time on the first level.
    """
    dates = churn_dates(tables, rule, months)
    frames = []
    for as_of in as_of_dates:
        feature_rows = build_features(tables, as_of, features, products)
        labels = build_labels(tables, as_of, rule, products, churn_date=dates)
        # customers who had already churned have features but no label: they are not training rows
        snapshot = feature_rows.join(labels, how="inner")
        snapshot.insert(0, "as_of", pd.Timestamp(as_of))
        frames.append(snapshot.reset_index())
    stacked = pd.concat(frames, ignore_index=True)
    return stacked.set_index(["as_of", "customer_id"])
