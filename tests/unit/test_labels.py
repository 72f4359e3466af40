import pandas as pd
import pytest

from churn.config import LabelConfig
from features.labels import build_labels, churn_dates, last_confirmable_as_of
from tests.factories import PRODUCTS, bank

RULE = LabelConfig(horizon_days=90, drain_ratio=0.2, stay_months=2, min_reference_assets=500.0)
MONTHS = pd.date_range("2025-01-31", periods=12, freq="ME")


def _series(customer_id, assets):
    return [
        {"customer_id": customer_id, "month_end": d, "deposits": a, "investments": 0.0, "loans": 0.0}
        for d, a in zip(MONTHS, assets, strict=False)
    ]


def test_churn_dates__drain_that_stays_is_churn_at_that_month_end():
    tables = bank(
        balances=_series(1, [5000] * 5 + [500, 300, 200, 100, 100, 100, 100]) + _series(2, [5000] * 12)
    )
    dates = churn_dates(tables, RULE)
    assert dates[1] == pd.Timestamp("2025-06-01"), "dated at the start of the month in which assets fell"
    assert pd.isna(dates[2])


def test_churn_dates__drain_that_recovers_is_not_churn():
    tables = bank(balances=_series(1, [5000] * 5 + [500, 5000, 5000, 5000, 5000, 5000, 5000]))
    assert pd.isna(churn_dates(tables, RULE)[1])


def test_churn_dates__small_balances_cannot_drain():
    tables = bank(balances=_series(1, [300] * 5 + [10] * 7))
    assert pd.isna(churn_dates(tables, RULE)[1])


def test_churn_dates__closing_every_product_is_churn():
    tables = bank(balances=_series(1, [5000] * 12))
    tables["holdings"].loc[0, "closed"] = pd.Timestamp("2025-04-10")
    assert churn_dates(tables, RULE)[1] == pd.Timestamp("2025-04-10")


def test_build_labels__horizon_and_already_churned():
    tables = bank(balances=_series(1, [5000] * 5 + [500] + [100] * 6) + _series(2, [5000] * 12))
    at_april = build_labels(tables, "2025-04-01", RULE, PRODUCTS)
    assert at_april.loc[1, "churn"] == 1, "assets fell during June, within 90 days of April 1"
    assert at_april.loc[2, "churn"] == 0
    at_march = build_labels(tables, "2025-03-01", RULE, PRODUCTS)
    assert at_march.loc[1, "churn"] == 0, "June is beyond 90 days of March 1"
    at_august = build_labels(tables, "2025-08-01", RULE, PRODUCTS)
    assert 1 not in at_august.index, "customers who already churned are excluded"


@pytest.mark.parametrize(
    ("opened", "expected"),
    [
        ([("savings", "2025-04-10"), ("credit_card", "2025-04-05")], "credit_card"),
        ([("savings", "2025-04-10"), ("insurance", "2025-04-10")], "savings"),  # same day: catalogue order
        ([("current_account", "2025-04-10")], "none"),  # already held
        ([("mortgage", "2025-09-10")], "none"),  # after the horizon
    ],
)
def test_build_labels__next_product_is_first_new_product_within_horizon(opened, expected):
    tables = bank(holdings=[{"customer_id": 1, "product": p, "opened": d} for p, d in opened])
    assert build_labels(tables, "2025-04-01", RULE, PRODUCTS).loc[1, "next_product"] == expected


def test_last_confirmable_as_of__leaves_room_for_horizon_and_stay():
    tables = bank(balances=_series(1, [5000] * 12))  # data ends 2025-12-31
    # as-of 2025-08-01: the horizon's last day is 2025-10-29, so a drain in October shows at 2025-10-31
    # and is confirmed by 2025-12-31; as-of 2025-09-01 would need month-ends up to 2026-01-31
    assert last_confirmable_as_of(tables, RULE) == pd.Timestamp("2025-08-01")
