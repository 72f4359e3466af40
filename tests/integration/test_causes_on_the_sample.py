"""Causes on the sample: the daily list's reasons against the generator's truth, the trigger lists,
and the churn report (the champion and the 2026-11-01 list of the API tests' workspace)."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from benchmarks.reasons import evaluate
from churn.cli import main
from features.causes import CAUSE_CODES
from tests.conftest import SAMPLE

AS_OF = pd.Timestamp("2026-11-01")


@pytest.fixture(scope="module")
def listed(api_env):
    folder = api_env / "out" / "risk_lists" / "2026-11-01"
    return pd.read_parquet(folder / "risk_list.parquet").set_index("customer_id"), folder


def test_reasons__name_the_planted_causes_of_recent_leavers(listed):
    """A weaker floor than `make bench-reasons` checks on a fresh 50,000-customer bank (the
    sample has 27 leavers in the 90 days before the list, a dozen of them still scored, and a
    model trained on 2,500 customers)."""
    rows, _ = listed
    figures = evaluate(rows, pd.read_parquet(SAMPLE / "truth" / "customers.parquet"), AS_OF)
    assert figures["scored"] >= 10
    assert figures["reason_1"] >= 0.5, figures["per_cause"]
    assert figures["top_3"] >= 0.7
    assert figures["churn_type"] >= 0.5, figures["confusion"]


def test_reasons__are_causes_never_symptoms_or_the_banks_own_past_contacts(listed):
    rows, _ = listed
    codes = set(pd.unique(rows[["reason_1_code", "reason_2_code", "reason_3_code"]].to_numpy().ravel()))
    codes.discard(None)
    assert codes <= set(CAUSE_CODES), codes - set(CAUSE_CODES)
    explained = rows[rows["reason_1_code"].notna()]
    assert explained["churn_type"].notna().all() and explained["evidence"].str.contains("nan").eq(False).all()


def test_actions__follow_the_kind_of_churn(listed):
    rows, _ = listed
    scored = rows[rows["status"] == "scored"]
    assert not ((scored["churn_type"] == "service_failure") & (scored["action"] == "rate_offer")).any()
    natural = scored[scored["churn_type"] == "natural"]
    assert set(natural["action"].dropna()) <= {"keep_foothold", "hardship_support"}, "no retention spend"


def test_trigger_lists__one_contact_per_customer_across_every_list_in_files_and_database(listed, api_env):
    rows, folder = listed
    triggers = pd.read_parquet(folder / "triggers.parquet")
    assert len(triggers) and triggers["customer_id"].is_unique, "one list per customer"
    on_risk_list = set(rows.index[rows["contact"] == 1])
    called = set(triggers.loc[triggers["contact"], "customer_id"])
    assert not on_risk_list & called, "no customer is called twice the same day"
    with sa.create_engine(f"sqlite:///{api_env / 'out' / 'churn.db'}").connect() as connection:
        stored = pd.read_sql("SELECT * FROM trigger_list WHERE as_of = '2026-11-01'", connection)
    assert len(stored) == len(triggers) and set(stored["trigger"]) <= {
        "deposit_maturing",
        "salary_stopped",
        "complaint_open",
        "application",
    }


def test_churn_report__churn_by_kind_and_month_with_the_share_that_is_our_own_fault(api_env, capsys):
    assert main(["report", "--months", "6"]) == 0
    out = capsys.readouterr().out
    assert "our own fault" in out and "of the churn with a known kind is service failure" in out
    report = next((api_env / "out" / "reports").iterdir())
    monthly = pd.read_csv(report / "monthly.csv", index_col=0)
    assert len(monthly) == 6 and (monthly["net"] == monthly["gained"] - monthly["lost"]).all()
    by_kind = pd.read_csv(report / "by_month_and_kind.csv", index_col=0)
    assert by_kind.to_numpy().sum() <= monthly["lost"].sum(), "the diagnosed churners are among those lost"
    for name in (
        "churn_report.html",
        "churn_by_type.svg",
        "churn_by_type.png",
        "accounts.svg",
        "by_cause.csv",
    ):
        assert (report / name).exists(), name
    page = (report / "churn_report.html").read_text()
    assert "our own fault" in page and "<img" in page


def test_churn_impact__campaigns_against_their_controls_with_the_outcomes_crm_recorded(api_env, capsys):
    from monitoring.impact_job import recorded_outcomes

    contacts = pd.read_parquet(SAMPLE / "contacts.parquet")
    treated = contacts[~contacts["control_group"] & (contacts["ts"] < "2026-03-01")].iloc[0]
    url = f"sqlite:///{api_env / 'out' / 'churn.db'}"
    with sa.create_engine(url).begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO contact_history (event_id, customer_id, contacted_at, source, channel, action, "
                "control_group, reached, offer_accepted, customer_status, recorded_at) VALUES "
                "(:e, :c, :t, 'api', 'phone', :a, 0, 1, 1, 'stayed', :t)"
            ),
            {
                "e": "impact-test-1",
                "c": int(treated["customer_id"]),
                "t": treated["ts"].to_pydatetime(),
                "a": treated["action"],
            },
        )
    recorded = recorded_outcomes(url)
    assert recorded.set_index("customer_id").loc[int(treated["customer_id"]), "outcome"] == "accepted"
    assert main(["impact"]) == 0
    out = capsys.readouterr().out
    assert "campaigns judged" in out and "contacted" in out
    folder = next((api_env / "out" / "impact").iterdir())
    overall = pd.read_csv(folder / "overall.csv", index_col=0).iloc[0]
    assert overall["controls"] > 50 and overall["contacted"] > overall["controls"]
    assert (
        pd.read_csv(folder / "action.csv", index_col=0).index.isin(list(pd.unique(contacts["action"]))).all()
    )
    outcomes = pd.read_csv(folder / "outcomes.csv", index_col=0)
    assert {"accepted", "declined", "not_reached"} <= set(outcomes.index)
    # the day's page shows the latest impact figures beside the list
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    page = (api_env / "out" / "risk_lists" / "2026-11-01" / "summary.html").read_text()
    assert f"campaigns to {folder.name}" in page and "all campaigns" in page and "verdict" in page
