"""The retention policy, table-driven: tiers, control group, playbook rules, contact decisions."""

import numpy as np
import pandas as pd
import pytest

from churn.config import ContactPolicyConfig, PlaybookConfig, load_config
from serving.policy import choose_actions, contact_decisions, contact_history, in_control_group, tiers

CONFIG = load_config(environ={})
POLICY = ContactPolicyConfig(
    min_days_between_contacts=30, max_contacts_per_quarter=2, control_group_share=0.1, control_group_key="k"
)


@pytest.mark.parametrize(
    ("p", "expected"), [(0.01, "low"), (0.05, "medium"), (0.149, "medium"), (0.15, "high"), (0.9, "high")]
)
def test_tiers__thresholds_are_inclusive(p, expected):
    assert tiers(np.array([p]), {"high": 0.15, "medium": 0.05})[0] == expected


def test_in_control_group__stable_keyed_and_about_the_configured_share():
    ids = np.arange(100_000, 120_000)
    first = in_control_group(ids, "key-a", 0.1)
    assert np.array_equal(first, in_control_group(ids, "key-a", 0.1)), "the same every day"
    assert 0.09 < first.mean() < 0.11
    other = in_control_group(ids, "key-b", 0.1)
    assert (first != other).mean() > 0.1, "a new key draws a new group"


@pytest.mark.parametrize(
    ("risk", "value", "kind", "reasons", "expected"),
    [
        ("high", "high", "natural", ["HARDSHIP"], "hardship_support"),
        ("high", "high", "natural", ["MOVED_AWAY", "COMPLAINT"], "keep_foothold"),
        ("high", "high", "service_failure", ["COMPLAINT"], "relationship_manager_visit"),
        ("medium", "low", "service_failure", ["COMPLAINT", "COMPETITOR_RATE"], "service_recovery_call"),
        ("high", "low", "service_failure", ["FEES"], "service_recovery_call"),
        ("medium", "low", "competitive", ["SALARY_MOVED"], "payroll_incentive"),
        ("medium", "low", "competitive", ["DEPOSIT_MATURED", "SALARY_MOVED"], "rate_offer"),
        ("high", "high", "competitive", ["COMPETITOR_RATE"], "relationship_manager_visit"),
        ("high", "high", "unclear", ["FEES"], "relationship_manager_visit"),
        ("medium", "medium", "unclear", [], "retention_call"),
        ("medium", "medium", None, [], "retention_call"),
    ],
)
def test_choose_actions__first_matching_playbook_rule(risk, value, kind, reasons, expected):
    by_rank = [np.array([code], dtype=object) for code in [*reasons, None, None, None][:3]]
    action = choose_actions(
        np.array([risk]),
        np.array([value]),
        np.array(["mass"]),
        by_rank,
        CONFIG.playbook,
        np.array([kind], dtype=object),
    )
    assert action[0] == expected


def test_choose_actions__a_service_failure_is_never_sent_a_rate_offer_and_natural_churn_gets_no_spend():
    rng = np.random.default_rng(3)
    n = 2000
    codes = np.array(
        ["COMPLAINT", "FEES", "SERVICE_INCIDENT", "COMPETITOR_RATE", "SALARY_MOVED", None], dtype=object
    )
    kinds = rng.choice(np.array(["service_failure", "competitive", "natural", "unclear"], dtype=object), n)
    action = choose_actions(
        rng.choice(np.array(["high", "medium", "low"]), n),
        rng.choice(np.array(["high", "medium", "low"]), n),
        np.full(n, "mass"),
        [rng.choice(codes, n) for _ in range(3)],
        CONFIG.playbook,
        kinds,
    )
    assert not ((kinds == "service_failure") & (action == "rate_offer")).any()
    spend = {a for a, k in zip(action, kinds, strict=True) if k == "natural"}
    assert spend <= {"keep_foothold", "hardship_support"}


def _candidate(**overrides):
    row = {
        "reportable": True,
        "do_not_contact": False,
        "control_group": False,
        "days_since_last_contact": np.nan,
        "contacts_last_quarter": 0,
        "expected_saving": 100.0,
        "owner": "call_centre",
        "branch_id": "BR001",
    }
    return row | overrides


@pytest.mark.parametrize(
    ("overrides", "contacted", "rule"),
    [
        ({}, True, "contact"),
        ({"reportable": False}, False, "low risk: below the reporting threshold"),
        ({"do_not_contact": True, "control_group": True}, False, "do-not-contact flag"),
        ({"control_group": True}, False, "control group: scored, never contacted"),
        ({"days_since_last_contact": 12.0}, False, "contacted 12 days ago (minimum gap 30)"),
        ({"days_since_last_contact": 30.0}, True, "contact"),
        (
            {"contacts_last_quarter": 2, "days_since_last_contact": 40.0},
            False,
            "reached the limit of 2 contacts per quarter",
        ),
        ({"expected_saving": -5.0}, False, "expected saving does not cover the contact cost"),
    ],
)
def test_contact_decisions__policy_cases(overrides, contacted, rule):
    decision = contact_decisions(pd.DataFrame([_candidate(**overrides)]), POLICY, CONFIG.playbook)
    assert bool(decision["contact"].iloc[0]) is contacted
    assert decision["contact_rule"].iloc[0] == rule


def test_contact_decisions__capacity_keeps_the_highest_savings_per_team_and_branch():
    playbook = PlaybookConfig.model_validate(
        CONFIG.playbook.model_dump()
        | {"capacity": CONFIG.playbook.capacity | {"call_centre": 2}, "per_branch": {"branch_managers": 1}}
    )
    rows = [_candidate(expected_saving=s) for s in (50.0, 300.0, 10.0, 200.0)]  # call centre: capacity 2
    rows += [
        _candidate(owner="branch_managers", branch_id=b, expected_saving=s)
        for b, s in (("A", 5.0), ("A", 90.0), ("B", 1.0))
    ]
    decision = contact_decisions(pd.DataFrame(rows), POLICY, playbook)
    assert decision["contact"].tolist() == [False, True, False, True, False, True, True]
    assert decision.loc[0, "contact_rule"] == "over the daily capacity of call_centre"
    assert decision.loc[4, "contact_rule"] == "over the daily capacity of branch_managers in branch A"
    assert decision["list_rank"].dropna().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert decision.loc[1, "list_rank"] == 1, "ranked by expected net saving, not probability"


def test_contact_history__control_records_are_not_contacts():
    contacts = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "ts": pd.to_datetime(["2025-06-20", "2025-05-01", "2025-01-01", "2025-06-25"]),
            "control_group": [False, False, False, True],
        }
    )
    history = contact_history(contacts, pd.Index([1, 2, 3]), pd.Timestamp("2025-07-01"))
    assert history.loc[1, "days_since_last_contact"] == 11
    assert history.loc[1, "contacts_last_quarter"] == 2
    assert (
        np.isnan(history.loc[2, "days_since_last_contact"]) and history.loc[2, "contacts_last_quarter"] == 0
    )
    assert history.loc[3, "contacts_last_quarter"] == 0


def test_in_control_group__text_ids_use_the_keyed_hash_too():
    ids = [f"CUST-{i:06d}" for i in range(20_000)]
    first = in_control_group(ids, "key-a", 0.1)
    assert np.array_equal(first, in_control_group(ids, "key-a", 0.1))
    assert 0.09 < first.mean() < 0.11
    assert (first != in_control_group(ids, "key-b", 0.1)).mean() > 0.1
