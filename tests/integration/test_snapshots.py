import pandas as pd
import pytest

from features.snapshots import build_training_set, snapshot_dates


def test_snapshot_dates__monthly_and_ending_at_latest_labelled_month(sample, config):
    dates = snapshot_dates(sample.tables, config.labels, 12)
    assert len(dates) == 12
    assert all(
        (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1 for a, b in zip(dates, dates[1:], strict=False)
    )
    assert dates[-1] == pd.Timestamp("2026-06-01")


def test_snapshot_dates__too_short_data_is_a_clear_error(sample, config):
    short = dict(sample.tables)
    short["balances"] = sample["balances"][sample["balances"]["month_end"] < "2025-04-01"]
    with pytest.raises(ValueError, match="too short"):
        snapshot_dates(short, config.labels, 3)


def test_build_training_set__stacks_snapshots_with_labels(sample, config, products):
    dates = snapshot_dates(sample.tables, config.labels, 3)
    stacked = build_training_set(sample.tables, dates, config.features, config.labels, products)
    assert stacked.index.names == ["as_of", "customer_id"]
    assert stacked.index.is_unique
    assert sorted(stacked.index.get_level_values("as_of").unique()) == dates
    assert {"churn", "next_product"} <= set(stacked.columns)
    per_snapshot_rate = stacked.groupby(level="as_of")["churn"].mean()
    assert per_snapshot_rate.between(0.005, 0.15).all(), per_snapshot_rate
