"""One behaviour per feature family, on hand-built two-customer banks (as-of 2025-07-01)."""

import numpy as np
import pandas as pd
import pytest

from churn.config import FeatureConfig
from features.build import build_features
from features.catalog import RECENCY_CAP_DAYS, catalog_markdown, feature_catalog
from tests.factories import AS_OF, PRODUCTS, bank

CONFIG = FeatureConfig()


def features(tables, as_of=AS_OF):
    return build_features(tables, as_of, CONFIG, PRODUCTS)


def test_build_features__one_row_per_active_customer_in_catalogue_order():
    result = features(bank())
    assert result.index.tolist() == [1, 2]
    assert result.columns.tolist() == [s.name for s in feature_catalog(CONFIG, PRODUCTS)]
    assert isinstance(result["segment"].dtype, pd.CategoricalDtype)


def test_build_features__customer_who_closed_everything_or_joined_later_is_not_active():
    tables = bank(holdings=[])
    tables["holdings"].loc[1, "closed"] = pd.Timestamp("2025-03-01")
    tables["customers"].loc[0, "join_date"] = pd.Timestamp("2025-08-01")
    assert features(tables).index.tolist() == []


def test_profile_features__tenure_and_age_at_as_of():
    result = features(bank())
    assert result.loc[1, "tenure_days"] == (AS_OF - pd.Timestamp("2020-01-15")).days
    assert result.loc[1, "age"] == 2025 - 1980
    assert result.loc[1, "declared_payroll"] == 1


def test_rfm_features__windows_count_and_sum_by_direction():
    tables = bank(
        transactions=[
            {
                "customer_id": 1,
                "ts": "2025-06-25",
                "amount": 100.0,
                "direction": "in",
                "category": "transfer_in",
            },
            {"customer_id": 1, "ts": "2025-05-01", "amount": 40.0},
            {"customer_id": 1, "ts": "2025-02-01", "amount": 7.0},
            {"customer_id": 1, "ts": "2025-07-01", "amount": 999.0},  # on as-of: not yet known
        ]
    )
    row = features(tables).loc[1]
    assert (row["txn_count_30d"], row["txn_count_90d"], row["txn_count_180d"]) == (1, 2, 3)
    assert row["inflow_30d"] == 100.0
    assert row["outflow_90d"] == 40.0
    assert row["outflow_180d"] == 47.0
    assert row["days_since_last_txn"] == 6
    assert features(tables).loc[2, "days_since_last_txn"] == RECENCY_CAP_DAYS


def _balances(customer_id, assets_by_month_end):
    return [
        {"customer_id": customer_id, "month_end": d, "deposits": a, "investments": 0.0, "loans": 0.0}
        for d, a in assets_by_month_end
    ]


def test_balance_features__changes_slope_and_drawdown():
    months = pd.date_range("2024-12-31", periods=7, freq="ME")  # last is 2025-06-30
    assets = [1000, 1000, 1000, 1000, 1000, 800, 400]
    row = features(bank(balances=_balances(1, zip(months, assets, strict=True)))).loc[1]
    assert row["assets_latest"] == 400
    assert row["assets_change_1m"] == pytest.approx((400 - 800) / 800)
    assert row["assets_change_3m"] == pytest.approx((400 - 1000) / 1000)
    assert row["assets_change_6m"] == pytest.approx(-0.6)
    assert row["assets_drawdown_6m"] == pytest.approx(0.6)
    assert row["assets_slope_6m"] < 0


def test_balance_features__missing_history_is_nan_not_zero():
    row = features(bank(balances=_balances(1, [("2025-06-30", 500.0)]))).loc[1]
    assert row["assets_latest"] == 500
    assert np.isnan(row["assets_change_1m"])
    assert np.isnan(features(bank()).loc[2, "assets_latest"])


def test_outflow_features__external_share_large_transfers_and_trend():
    months = pd.date_range("2024-12-31", periods=7, freq="ME")
    tables = bank(
        balances=_balances(1, zip(months, [10_000] * 7, strict=True)),
        transactions=[
            {
                "customer_id": 1,
                "ts": "2025-06-20",
                "amount": 4000.0,
                "category": "transfer_out_external",
                "channel": "online",
            },
            {"customer_id": 1, "ts": "2025-06-21", "amount": 1000.0},
            {
                "customer_id": 1,
                "ts": "2025-05-10",
                "amount": 500.0,
                "category": "transfer_out_external",
                "channel": "online",
            },
        ],
    )
    row = features(tables).loc[1]
    assert row["external_out_30d"] == 4000
    assert row["external_out_90d"] == 4500
    assert row["external_out_share_90d"] == pytest.approx(4500 / 5500)
    assert row["large_outflows_90d"] == 1, "only the 4,000 transfer exceeds 25% of 10,000"
    assert row["external_out_trend"] > 0, "more went out in the last 30 days than before"


def _salary(customer_id, *dates):
    return [
        {
            "customer_id": customer_id,
            "ts": d,
            "amount": 3000.0,
            "direction": "in",
            "category": "salary",
            "channel": "online",
        }
        for d in dates
    ]


def test_salary_features__stopped_when_none_in_the_gap():
    tables = bank(
        transactions=_salary(1, "2025-02-25", "2025-03-25", "2025-04-25")
        + _salary(2, "2025-05-25", "2025-06-25")
    )
    result = features(tables)
    assert result.loc[1, "salary_stopped"] == 1
    assert result.loc[1, "days_since_last_salary"] == 67
    assert result.loc[2, "salary_stopped"] == 0
    assert result.loc[2, "salary_amount_90d"] == 6000


def test_engagement_features__logins_and_trend():
    logins = [
        {"customer_id": 1, "ts": d, "type": "login"}
        for d in ["2025-04-10", "2025-04-20", "2025-05-05", "2025-06-28"]
    ]
    row = features(bank(interactions=logins)).loc[1]
    assert row["logins_30d"] == 1
    assert row["logins_90d"] == 4
    assert row["login_trend"] == pytest.approx((1 + 1) / (3 / 3 + 1))
    assert row["days_since_last_login"] == 3


def test_complaint_features__resolved_only_if_resolved_before_as_of():
    complaints = [
        {
            "customer_id": 1,
            "ts": "2025-06-01",
            "type": "complaint",
            "category": "fees",
            "resolved_at": "2025-06-10",
        },
        {
            "customer_id": 1,
            "ts": "2025-06-15",
            "type": "complaint",
            "category": "service",
            "resolved_at": "2025-07-20",
        },
        {"customer_id": 1, "ts": "2024-09-01", "type": "complaint", "category": "app"},
        {"customer_id": 1, "ts": "2025-06-16", "type": "service_call", "channel": "phone"},
    ]
    row = features(bank(interactions=complaints)).loc[1]
    assert row["complaints_90d"] == 1, "complaints about the service; the fee dispute is its own family"
    assert row["complaints_365d"] == 2
    assert row["unresolved_complaints"] == 2, "resolved after as-of was still open at as-of"
    assert row["oldest_unresolved_complaint_days"] == 303
    assert row["service_calls_90d"] == 1
    assert row["days_since_last_complaint"] == 16
    assert (row["fee_complaints_365d"], row["unresolved_fee_complaints"]) == (1, 0)


def test_product_features__held_opened_and_closed():
    tables = bank(
        holdings=[
            {"customer_id": 1, "product": "savings", "opened": "2025-03-01"},
            {"customer_id": 1, "product": "credit_card", "opened": "2019-01-01", "closed": "2025-05-01"},
            {"customer_id": 1, "product": "mortgage", "opened": "2025-08-01"},  # after as-of
        ]
    )
    row = features(tables).loc[1]
    assert row["product_count"] == 2
    assert (row["has_savings"], row["has_credit_card"], row["has_mortgage"]) == (1, 0, 0)
    assert row["products_opened_180d"] == 1
    assert row["products_closed_180d"] == 1


def test_product_features__closing_after_as_of_is_not_known():
    tables = bank(
        holdings=[{"customer_id": 1, "product": "savings", "opened": "2024-01-01", "closed": "2025-08-01"}]
    )
    assert features(tables).loc[1, "has_savings"] == 1


def test_maturity_features__matured_without_renewal_and_maturing_soon():
    tables = bank(
        holdings=[
            {
                "customer_id": 1,
                "product": "term_deposit",
                "opened": "2024-06-10",
                "closed": "2025-06-10",
                "maturity_date": "2025-06-10",
            },
            {
                "customer_id": 2,
                "product": "term_deposit",
                "opened": "2024-06-10",
                "closed": "2025-06-10",
                "maturity_date": "2025-06-10",
            },
            {
                "customer_id": 2,
                "product": "term_deposit",
                "opened": "2025-06-10",
                "maturity_date": "2026-06-10",
            },
            {
                "customer_id": 1,
                "product": "term_deposit",
                "opened": "2024-08-01",
                "maturity_date": "2025-08-01",
            },
        ]
    )
    result = features(tables)
    assert result.loc[1, "maturities_last_60d"] == 1
    assert result.loc[1, "matured_not_renewed_60d"] == 1
    assert result.loc[2, "matured_not_renewed_60d"] == 0, "customer 2 renewed"
    assert result.loc[1, "maturing_next_60d"] == 1


def test_application_features__credit_needs():
    apps = [
        {"customer_id": 1, "ts": "2025-06-01", "type": "product_application", "category": "credit_card"},
        {"customer_id": 1, "ts": "2025-06-02", "type": "product_application", "category": "mortgage"},
        {"customer_id": 1, "ts": "2025-01-02", "type": "product_application", "category": "personal_loan"},
    ]
    row = features(bank(interactions=apps)).loc[1]
    assert (row["cc_applications_90d"], row["loan_applications_90d"]) == (1, 1)


def test_contact_features__control_group_is_not_a_contact():
    contacts = [
        {"customer_id": 1, "ts": "2025-06-01", "outcome": "accepted"},
        {"customer_id": 1, "ts": "2025-06-20", "control_group": True, "offer": "none", "outcome": "control"},
        {"customer_id": 1, "ts": "2024-12-01", "outcome": "declined"},
    ]
    row = features(bank(contacts=contacts)).loc[1]
    assert (row["contacts_90d"], row["contacts_365d"]) == (1, 2)
    assert row["days_since_last_contact"] == 30
    assert row["last_contact_accepted"] == 1


def test_contact_features__offers_answered_count_accepted_and_declined_not_unreached_or_controls():
    contacts = [
        {"customer_id": 1, "ts": "2025-06-01", "outcome": "accepted"},
        {"customer_id": 1, "ts": "2025-03-01", "outcome": "declined"},
        {"customer_id": 1, "ts": "2025-01-10", "outcome": "declined"},
        {"customer_id": 1, "ts": "2024-12-01", "outcome": "not_reached"},
        {"customer_id": 1, "ts": "2025-06-20", "control_group": True, "offer": "none", "outcome": "control"},
        {"customer_id": 1, "ts": "2024-03-01", "outcome": "accepted"},  # before the year
        {"customer_id": 2, "ts": "2025-05-01", "outcome": "declined"},
    ]
    rows = features(bank(contacts=contacts))
    assert (rows.loc[1, "offers_accepted_365d"], rows.loc[1, "offers_declined_365d"]) == (1, 2)
    assert rows.loc[1, "contacts_365d"] == 4
    assert (rows.loc[2, "offers_accepted_365d"], rows.loc[2, "offers_declined_365d"]) == (0, 1)
    assert rows.loc[2, "last_contact_accepted"] == 0


def test_build_features__does_not_mutate_inputs():
    tables = bank(transactions=_salary(1, "2025-06-25"))
    before = {name: frame.copy() for name, frame in tables.items()}
    features(tables)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, before[name])


def test_catalog_markdown__committed_doc_is_up_to_date(config):
    from tests.conftest import ROOT

    expected = catalog_markdown(config.features, tuple(config.products))
    assert (ROOT / "docs" / "features.md").read_text() == expected, (
        "run: churn features --doc docs/features.md"
    )
