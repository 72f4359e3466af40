"""Trigger lists: the events retail banking acts on beside the risk ranking.

A trigger is a moment (a term deposit about to mature, a salary that stopped, a complaint left
open, an application) that calls for a contact whatever the modelled risk. Each list takes the
scored customers whose features meet its conditions (`triggers:` in the config), with the
trigger's action. The one contact budget holds across every list: a customer on today's risk
list is not called again for a trigger, and a customer who meets several triggers is on the
first list only (config order). The contact policy applies as on the risk list (do-not-contact,
the control group, the gap since the last contact, the quarterly limit) except the
expected-saving rule, since the event, not the risk, is the reason to call; within the teams'
capacity left after the risk list, the largest value at risk is called first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import AppConfig
from serving.policy import action_attributes, decide_contacts

TRIGGER_COLUMNS = [
    "customer_id",
    "trigger",
    "description",
    "action",
    "action_channel",
    "action_owner",
    "contact",
    "contact_rule",
    "list_rank",
    "churn_probability",
    "value_at_risk",
    "risk_tier",
    "churn_type",
    "reason_1_code",
    "branch_id",
    "segment",
    "region",
]
ON_RISK_LIST = "on today's risk list: one contact a day"


def trigger_candidates(features: pd.DataFrame, scored: pd.DataFrame, config: AppConfig) -> pd.DataFrame:
    """One row per scored customer who meets a trigger (the first trigger, in config order), with
    what the policy needs; `features` and `scored` are indexed by customer id."""
    taken = pd.Series(False, index=scored.index)
    parts = []
    for name, trigger in config.triggers.lists.items():
        hit = pd.Series(True, index=scored.index)
        for feature, bound in trigger.when.items():
            if feature not in features.columns:
                raise ValueError(f"triggers.lists.{name}.when: {feature!r} is not a feature")
            values = features[feature].reindex(scored.index).astype(float)
            if bound.below is not None:
                hit &= values < bound.below
            if bound.above is not None:
                hit &= values > bound.above
        hit &= ~taken
        taken |= hit
        part = scored[hit].copy()
        part["trigger"], part["description"], part["trigger_action"] = (
            name,
            trigger.description,
            trigger.action,
        )
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*TRIGGER_COLUMNS, "trigger_action"])
    return pd.concat(parts)


def decide_triggers(candidates: pd.DataFrame, risk_contacts: pd.DataFrame, config: AppConfig) -> pd.DataFrame:
    """The trigger lists with their contact decisions.

    Args:
        candidates: from `trigger_candidates` (several partitions' may be concatenated).
        risk_contacts: today's risk-list contacts (`action_owner`, `branch_id`): they use the
            teams' capacity first.
    """
    if candidates.empty:
        return pd.DataFrame(columns=TRIGGER_COLUMNS)
    playbook = config.playbook
    action = candidates["trigger_action"].to_numpy(dtype=object)
    attribute = action_attributes(action, playbook)
    value_at_risk = np.nan_to_num(candidates["value_at_risk"].to_numpy(dtype=float), nan=0.0)
    on_risk_list = candidates["contact"].fillna(False).to_numpy(dtype=bool)
    # the risk list's contacts go first in every team's capacity (a saving above any value at risk)
    first = np.full(len(risk_contacts), value_at_risk.max(initial=0.0) + 1.0)
    columns = {
        "reportable": np.r_[np.ones(len(risk_contacts), bool), np.ones(len(candidates), bool)],
        "do_not_contact": np.r_[
            np.zeros(len(risk_contacts), bool), candidates["do_not_contact"].to_numpy(bool)
        ],
        "control_group": np.r_[
            np.zeros(len(risk_contacts), bool), candidates["control_group"].to_numpy(bool)
        ],
        "days_since_last_contact": np.r_[
            np.full(len(risk_contacts), np.nan), candidates["days_since_last_contact"].to_numpy(float)
        ],
        "contacts_last_quarter": np.r_[
            np.zeros(len(risk_contacts)), candidates["contacts_last_quarter"].to_numpy(float)
        ],
        # not the saving rule: any positive number passes it, and the order is the value at risk
        "expected_saving": np.r_[first, np.maximum(value_at_risk, 1e-9)],
        "owner": np.r_[risk_contacts["action_owner"].to_numpy(object), attribute["owner"].astype(object)],
        "branch_id": np.r_[
            risk_contacts["branch_id"].to_numpy(object), candidates["branch_id"].to_numpy(object)
        ],
    }
    columns["reportable"][len(risk_contacts) :] = ~on_risk_list  # a contact today already
    decided = decide_contacts(columns, config.contact_policy, playbook)
    mine = slice(len(risk_contacts), None)
    rule = decided["contact_rule"][mine].astype(object)
    rule[on_risk_list] = ON_RISK_LIST
    out = pd.DataFrame(
        {
            "customer_id": candidates.index.to_numpy(),
            "trigger": candidates["trigger"].to_numpy(),
            "description": candidates["description"].to_numpy(),
            "action": action,
            "action_channel": attribute["channel"],
            "action_owner": attribute["owner"],
            "contact": decided["contact"][mine],
            "contact_rule": rule,
            "churn_probability": candidates["churn_probability"].to_numpy(float),
            "value_at_risk": candidates["value_at_risk"].to_numpy(float),
            "risk_tier": candidates["risk_tier"].to_numpy(object),
            "churn_type": candidates["churn_type"].to_numpy(object),
            "reason_1_code": candidates["reason_1_code"].to_numpy(object),
            "branch_id": candidates["branch_id"].to_numpy(object),
            "segment": candidates["segment"].to_numpy(object),
            "region": candidates["region"].to_numpy(object),
        }
    )
    contacted = out["contact"].to_numpy()
    rank = np.full(len(out), np.nan)
    chosen = np.flatnonzero(contacted)
    rank[chosen[np.argsort(-out["value_at_risk"].to_numpy()[chosen], kind="stable")]] = np.arange(
        1, len(chosen) + 1
    )
    out["list_rank"] = rank
    return out[TRIGGER_COLUMNS].sort_values(
        ["trigger", "list_rank", "customer_id"], na_position="last", ignore_index=True
    )
