"""The generator plants a cause and a kind of churn for every leaver, and the traces causes leave."""

from __future__ import annotations

import pandas as pd
import pytest

from features.causes import CAUSE_CODES, CAUSES
from features.generator import generate_bank


@pytest.fixture(scope="module")
def bank():
    return generate_bank(customers=6000, months=24, seed=31)


def _leavers(bank) -> pd.DataFrame:
    truth = bank.truth_customers
    return truth[truth["decided_to_leave"].notna()]


def test_truth__every_leaver_has_a_cause_of_the_product_vocabulary_and_its_kind(bank):
    leavers = _leavers(bank)
    stayers = bank.truth_customers[bank.truth_customers["decided_to_leave"].isna()]
    assert len(leavers) > 500
    assert leavers["cause_code"].notna().all() and set(leavers["cause_code"]) <= set(CAUSE_CODES)
    kinds = leavers["cause_code"].astype(str).map(lambda code: CAUSES[code][0])
    assert (kinds == leavers["churn_type"].astype(str)).all(), "the kind follows from the cause"
    assert stayers["cause_code"].isna().all() and stayers["churn_type"].isna().all()
    assert {"MOVED_AWAY", "RETIRED", "DECEASED", "HARDSHIP"} <= set(leavers["cause_code"]), (
        "natural churn exists"
    )


def test_truth__default_shares_follow_practice_service_failure_largest_competition_under_a_third(bank):
    shares = _leavers(bank)["churn_type"].value_counts(normalize=True)
    assert shares.idxmax() == "service_failure"
    assert shares["competitive"] < 1 / 3
    assert shares["natural"] > 0.15


def test_generate_bank__configured_shares_move_the_mix():
    natural_heavy = generate_bank(
        customers=6000, seed=31, type_shares={"service_failure": 0.2, "competitive": 0.2, "natural": 0.6}
    )
    shares = _leavers(natural_heavy)["churn_type"].value_counts(normalize=True)
    assert shares.idxmax() == "natural" and shares["natural"] > 0.45


@pytest.mark.parametrize(
    ("cause", "event", "table", "column", "value"),
    [
        ("MOVED_AWAY", "moved", "interactions", "type", "address_change"),
        ("RETIRED", "retired", "transactions", "category", "pension"),
        ("DECEASED", "died", "interactions", "type", "bereavement_notice"),
        ("HARDSHIP", "hardship", "interactions", "type", "missed_payment"),
    ],
)
def test_natural_churn__leaves_the_weak_trace_of_its_event(bank, cause, event, table, column, value):
    leavers = _leavers(bank)
    ids = leavers.loc[leavers["cause_code"] == cause, "customer_id"]
    rows = bank.tables[table]
    traced = rows.loc[rows[column] == value, "customer_id"].unique()
    share = ids.isin(traced).mean()
    assert share > 0.5, f"{cause}: only {share:.0%} of its leavers show a {value}"
    assert bank.truth_customers.loc[bank.truth_customers["customer_id"].isin(ids), event].notna().all()


def test_market__a_competitor_rate_per_region_and_month(bank):
    market = bank.tables["market"]
    assert len(market) == 6 * 24 and not market.duplicated(["region", "month"]).any()
    assert (market["month"].dt.day == 1).all() and market["competitor_rate_gap"].max() > 0.5


def test_contacts__campaigns_have_a_control_group_and_an_exploration_share_with_playbook_actions(bank):
    contacts = bank.tables["contacts"]
    targeted = contacts["campaign"].str.startswith("RET-")
    assert 0.15 < contacts.loc[targeted, "control_group"].mean() < 0.25, "a fifth of each campaign held back"
    assert 0.4 < contacts.loc[~targeted, "control_group"].mean() < 0.6, "half of the exploration held back"
    assert (contacts.loc[contacts["control_group"], "action"] == "none").all()
    assert contacts["campaign"].str.startswith("EXP-").any(), "randomised exploration across risk levels"
    assert contacts["action"].nunique() >= 7


def test_contacts__exploration_draws_across_risk_levels_the_riskier_more_often(bank):
    """The list works at the top of the risk, so that is where the exploration learns most; it still
    reaches the bottom half."""
    contacts = bank.tables["contacts"]
    hazard = bank.truth_hazard.assign(rank=lambda h: h.groupby("month_start")["hazard"].rank(pct=True))
    explored = contacts[contacts["campaign"].str.startswith("EXP-")]
    # the bank's view is the hazard of the month before the campaign
    month_before = explored["ts"].dt.to_period("M").dt.to_timestamp() - pd.DateOffset(months=1)
    ranks = explored.assign(month_start=month_before).merge(hazard, on=["customer_id", "month_start"])["rank"]
    assert len(ranks) > 0.9 * len(explored)
    assert ranks.mean() > 0.6, "riskier customers drawn more often than at random (0.5)"
    assert (ranks < 0.5).mean() > 0.05, "and every risk level drawn"
