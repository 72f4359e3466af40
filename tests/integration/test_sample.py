"""The committed sample: reproducible from its seed, valid, and carrying the planted churn signal."""

import json

import numpy as np
import pandas as pd

from features.generator import generate_bank
from features.io import read_tables
from features.labels import build_labels, churn_dates, last_confirmable_as_of
from features.schema import TABLE_NAMES
from tests.conftest import SAMPLE


def test_generate_bank__config_seed_reproduces_the_committed_sample(config):
    g = config.generator
    regenerated = generate_bank(
        customers=g.customers,
        months=g.months,
        seed=g.seed,
        start=str(g.start),
        activity=g.activity,
        type_shares=g.churn_type_shares,
    )
    committed = read_tables(SAMPLE)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(regenerated.tables[name], committed[name], check_dtype=False, obj=name)


def test_generate_bank__different_seed_gives_a_different_bank():
    a = generate_bank(customers=200, months=8, seed=1)
    b = generate_bank(customers=200, months=8, seed=2)
    assert (
        not a.tables["transactions"]["amount"].head(100).equals(b.tables["transactions"]["amount"].head(100))
    )


def test_sample__is_small_valid_and_documented(sample):
    size = sum(f.stat().st_size for f in SAMPLE.glob("*.parquet"))
    assert size < 12 * 2**20, f"sample is {size / 2**20:.1f} MiB"
    assert all(count == 0 for count in sample.reject_counts.values()), sample.reject_counts
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    assert manifest["rows"]["transactions"] == len(sample["transactions"])


def test_sample__value_is_concentrated(sample):
    balances = sample["balances"]
    last = balances[balances["month_end"] == balances["month_end"].max()]
    assets = np.sort((last["deposits"] + last["investments"]).to_numpy())[::-1]
    top_fifth = assets[: len(assets) // 5].sum() / assets.sum()
    assert 0.65 < top_fifth < 0.9, f"top 20% hold {top_fifth:.0%} of assets"


def test_sample__churn_is_mostly_silent_and_follows_the_planted_drivers(sample, config):
    """Churners drained money before leaving, and unresolved complaints raise churn."""
    truth = pd.read_parquet(SAMPLE / "truth" / "customers.parquet").set_index("customer_id")
    leavers = truth["leave_mode"].dropna()
    assert (leavers == "silent").mean() > 0.2, "a good share of leavers keeps an empty account"
    as_of = last_confirmable_as_of(sample.tables, config.labels) - pd.offsets.MonthBegin(3)
    labels = build_labels(
        sample.tables, as_of, config.labels, tuple(config.products), churn_dates(sample.tables, config.labels)
    )
    complaints = sample["interactions"]
    open_at = complaints[
        (complaints["type"] == "complaint")
        & (complaints["ts"] < as_of)
        & ~(complaints["resolved_at"] < as_of)
    ]
    has_open = labels.index.isin(open_at["customer_id"])
    assert labels.loc[has_open, "churn"].mean() > 1.5 * labels.loc[~has_open, "churn"].mean()


def test_sample__truth_is_kept_apart_from_the_tables():
    assert (SAMPLE / "truth" / "customers.parquet").exists()
    assert not any(p.stem.startswith("truth") for p in SAMPLE.glob("*.parquet"))


def test_sample__every_planted_driver_raises_churn_in_the_features(sample, config, products):
    """Data check: each observable trace of a planted hazard driver carries churn signal."""
    from features.snapshots import build_training_set, snapshot_dates

    stacked = build_training_set(
        sample.tables,
        snapshot_dates(sample.tables, config.labels, 8),
        config.features,
        config.labels,
        products,
    )
    flags = {
        "unresolved complaint": stacked["unresolved_complaints"] > 0,
        "large external outflow": stacked["large_outflows_90d"] > 0,
        "salary stopped": stacked["salary_stopped"] == 1,
        "logins halved": stacked["login_trend"] < 0.5,
        "single product": stacked["product_count"] == 1,
    }
    for name, flagged in flags.items():
        with_flag, without = stacked.loc[flagged, "churn"].mean(), stacked.loc[~flagged, "churn"].mean()
        assert flagged.sum() >= 20, f"{name}: only {flagged.sum()} rows flagged"
        # a single product is the weakest planted driver (0.6 log-odds on every cause)
        factor = 1.25 if name == "single product" else 1.5
        assert with_flag > factor * without, f"{name}: churn {with_flag:.3f} with vs {without:.3f} without"
