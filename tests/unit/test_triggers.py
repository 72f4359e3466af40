"""Trigger lists: who each takes, and one contact budget per customer across every list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import load_config
from serving.triggers import ON_RISK_LIST, decide_triggers, trigger_candidates

CONFIG = load_config(environ={})


def _scored(**overrides) -> pd.DataFrame:
    n = 6
    frame = pd.DataFrame(
        {
            "contact": [False] * n,
            "churn_probability": [0.2] * n,
            "value_at_risk": [100.0, 500.0, 300.0, 200.0, 50.0, 400.0],
            "risk_tier": ["high"] * n,
            "churn_type": ["competitive"] * n,
            "reason_1_code": ["DEPOSIT_MATURED"] * n,
            "branch_id": ["BR001"] * n,
            "segment": ["mass"] * n,
            "region": ["North"] * n,
            "do_not_contact": [False] * n,
            "control_group": [False] * n,
            "days_since_last_contact": [np.nan] * n,
            "contacts_last_quarter": [0] * n,
            "action_owner": [None] * n,
        },
        index=pd.Index(range(1, n + 1), name="customer_id"),
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def _features(**columns) -> pd.DataFrame:
    base = {
        "days_to_next_maturity": [5.0, 10.0, 100.0, 3.0, 365.0, 7.0],
        "salary_stopped": [0, 0, 1, 0, 0, 0],
        "days_since_last_salary": [10.0, 10.0, 40.0, 10.0, 10.0, 10.0],
        "oldest_unresolved_complaint_days": [0.0, 45.0, 0.0, 0.0, 60.0, 0.0],
        "days_since_last_application": [365.0] * 6,
    }
    return pd.DataFrame(base | columns, index=pd.Index(range(1, 7), name="customer_id"))


def test_trigger_candidates__each_customer_on_the_first_list_whose_conditions_hold():
    candidates = trigger_candidates(_features(), _scored(), CONFIG)
    assert candidates["trigger"].to_dict() == {
        1: "deposit_maturing",
        2: "deposit_maturing",  # maturing and a complaint open 45 days: the first list only
        4: "deposit_maturing",
        6: "deposit_maturing",
        3: "salary_stopped",
        5: "complaint_open",
    }


def test_decide_triggers__the_risk_list_first_then_the_contact_policy_then_value_at_risk():
    scored = _scored(
        contact=[True, False, False, False, False, False],
        action_owner=["savings_desk", None, None, None, None, None],
        do_not_contact=[False, False, False, True, False, False],
        days_since_last_contact=[np.nan, np.nan, np.nan, np.nan, np.nan, 5.0],
    )
    decided = decide_triggers(
        trigger_candidates(_features(), scored, CONFIG), scored[scored["contact"]], CONFIG
    )
    rules = decided.set_index("customer_id")["contact_rule"].to_dict()
    assert rules[1] == ON_RISK_LIST, "one contact a day across every list"
    assert rules[4] == "do-not-contact flag"
    assert rules[6].startswith("contacted 5 days ago")
    assert rules[2] == rules[3] == rules[5] == "contact"
    maturing = decided[(decided["trigger"] == "deposit_maturing") & decided["contact"]]
    assert maturing["action"].tolist() == ["rate_offer"] and maturing["action_owner"].tolist() == [
        "savings_desk"
    ]


def test_decide_triggers__the_teams_capacity_is_shared_with_the_risk_list():
    capacity = CONFIG.playbook.capacity["savings_desk"]
    n = capacity + 5
    index = pd.Index(range(1, n + 1), name="customer_id")
    scored = pd.DataFrame(
        {
            "contact": False,
            "churn_probability": 0.2,
            "value_at_risk": np.arange(n, dtype=float),
            "risk_tier": "high",
            "churn_type": "competitive",
            "reason_1_code": "DEPOSIT_MATURED",
            "branch_id": "BR001",
            "segment": "mass",
            "region": "North",
            "do_not_contact": False,
            "control_group": False,
            "days_since_last_contact": np.nan,
            "contacts_last_quarter": 0,
            "action_owner": None,
        },
        index=index,
    )
    features = pd.DataFrame(
        {
            "days_to_next_maturity": 5.0,
            "salary_stopped": 0,
            "days_since_last_salary": 10.0,
            "oldest_unresolved_complaint_days": 0.0,
            "days_since_last_application": 365.0,
        },
        index=index,
    )
    risk_contacts = pd.DataFrame({"action_owner": ["savings_desk"] * 10, "branch_id": ["BR001"] * 10})
    decided = decide_triggers(trigger_candidates(features, scored, CONFIG), risk_contacts, CONFIG)
    assert decided["contact"].sum() == capacity - 10, "the risk list's ten calls came first"
    called = decided.loc[decided["contact"], "value_at_risk"]
    assert called.min() > decided.loc[~decided["contact"], "value_at_risk"].max(), (
        "largest value at risk first"
    )
