"""The contract: a feature never reads data on or after as-of."""

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.labels import last_confirmable_as_of


def _corrupt_from(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Scramble or delete everything recorded on or after `as_of`."""
    t = {name: frame.copy() for name, frame in tables.items()}
    later = pd.Timedelta(days=1) * rng.integers(0, 400, 1)[0]

    tx = t["transactions"]
    future = tx["ts"] >= as_of
    tx.loc[future, "amount"] = rng.permutation(tx.loc[future, "amount"].to_numpy()) * 7
    tx.loc[future, "category"] = "transfer_out_external"
    tx.loc[future, "direction"] = "out"
    t["transactions"] = tx.drop(tx.index[future][::2])

    ix = t["interactions"]
    t["interactions"] = ix[ix["ts"] < as_of].copy()
    resolved_later = t["interactions"]["resolved_at"] >= as_of
    t["interactions"].loc[resolved_later, "resolved_at"] = as_of + later  # still unknown at as-of

    h = t["holdings"]
    h = h[h["opened"] < as_of].copy()
    closed_later = h["closed"] >= as_of
    h.loc[closed_later, "closed"] = pd.NaT  # not yet closed, as far as as-of knows
    t["holdings"] = h

    b = t["balances"]
    future = b["month_end"] >= as_of
    b.loc[future, ["deposits", "investments"]] = 0.0
    t["balances"] = b

    c = t["contacts"]
    t["contacts"] = c[c["ts"] < as_of]

    cu = t["customers"]
    joins_later = cu["join_date"] >= as_of
    cu.loc[joins_later, "segment"] = "private"
    return t


@pytest.mark.parametrize("months_back", [0, 5])
def test_build_features__identical_when_everything_after_as_of_is_corrupted(
    sample, config, products, months_back
):
    as_of = last_confirmable_as_of(sample.tables, config.labels) - pd.offsets.MonthBegin(months_back)
    if months_back == 0:
        as_of = pd.Timestamp(as_of)
    original = build_features(sample.tables, as_of, config.features, products)
    corrupted = build_features(
        _corrupt_from(sample.tables, as_of, np.random.default_rng(months_back)),
        as_of,
        config.features,
        products,
    )
    pd.testing.assert_frame_equal(original, corrupted)


def test_build_features__mid_month_as_of_ignores_the_same_day(sample, config, products):
    as_of = pd.Timestamp("2026-03-17")
    original = build_features(sample.tables, as_of, config.features, products)
    corrupted = build_features(
        _corrupt_from(sample.tables, as_of, np.random.default_rng(7)), as_of, config.features, products
    )
    pd.testing.assert_frame_equal(original, corrupted)
