"""The scoring core: one pure function from (bundle, feature rows, today's context) to decisions.

The daily risk-list job and the API both call `score_customers`, so the same customer gets the
same numbers from both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import AppConfig
from serving.actions import choose, uplift_candidates
from serving.model_bundle import ModelBundle
from serving.policy import (
    action_attributes,
    choose_actions,
    contact_history,
    decide_contacts,
    in_control_group,
    tiers,
)
from serving.settings import ScoringConfig

TOP = 3


@dataclass(frozen=True)
class ScoringContext:
    """What scoring needs besides the features.

    Attributes:
        as_of: the scoring date (contact gaps are counted up to it).
        customers: indexed by customer id, with `do_not_contact`, `branch_id`, `segment`, `region`.
        contacts: past retention contacts: `customer_id`, `ts`, `control_group`.
    """

    as_of: pd.Timestamp
    customers: pd.DataFrame
    contacts: pd.DataFrame


def score_customers(
    bundle: ModelBundle,
    features: pd.DataFrame,
    context: ScoringContext,
    config: AppConfig,
    seconds: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Score, explain and decide for every row of `features` (indexed by customer id).

    Returns one row per input row, same index: probability, risk tier, value, value at risk,
    value tier, top reasons (code, text, contribution) for customers at or above the reporting
    threshold, top next-best products with propensities, the playbook action with channel and
    owner, its expected net saving, control-group membership, and the contact decision with the
    rule that decided and the rank in today's list.

    Raises:
        FeatureSchemaError: the rows do not match the bundle's feature schema.
        ValueError: a customer id missing from `context.customers`.
    """
    ids = features.index
    missing = ids.difference(context.customers.index)
    if len(missing):
        raise ValueError(
            f"customer_id: {len(missing)} scored customer(s) missing from the customer table, e.g. {missing[0]}"
        )
    customers = context.customers.loc[ids]
    x = bundle.matrix(bundle.prepare(features))
    history = contact_history(context.contacts, ids, context.as_of)
    out = decide(
        bundle,
        x,
        ids.to_numpy(),
        {column: customers[column].to_numpy() for column in CUSTOMER_COLUMNS},
        {column: history[column].to_numpy() for column in history.columns},
        config,
        seconds,
    )
    return pd.DataFrame(out, index=ids)


CUSTOMER_COLUMNS = ("do_not_contact", "branch_id", "segment", "region")


def decide(
    bundle: ModelBundle,
    x: np.ndarray,
    ids: np.ndarray,
    customers: Mapping[str, np.ndarray],
    history: Mapping[str, np.ndarray],
    config: AppConfig,
    seconds: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """The scoring core on arrays: what `score_customers` returns, as columns.

    Args:
        x: the rows' feature matrix (`bundle.matrix` of prepared rows).
        ids: customer ids, one per row (for the control group).
        customers: `CUSTOMER_COLUMNS`, one value per row.
        history: `days_since_last_contact` and `contacts_last_quarter` per row (`contact_history`).
    """
    if config.playbook is None:
        raise ValueError("playbook: no retention playbook configured")
    probability = bundle.churn_probability(x)
    value = bundle.value(x)
    scoring = config.scoring
    risk_tier = tiers(probability, scoring.tiers)
    value_tier = tiers(np.nan_to_num(value, nan=0.0), scoring.value_tiers)
    reportable = probability >= scoring.reporting_threshold
    # uplift mode also lists customers below the threshold whose best action saves enough
    candidate = reportable | uplift_candidates(bundle, x, probability, value, reportable, config)
    segment = customers["segment"]
    branch_id = customers["branch_id"]
    out: dict[str, np.ndarray] = {
        "churn_probability": probability,
        "risk_tier": risk_tier,
        "value": value,
        "value_at_risk": probability * value,
        "value_tier": value_tier,
        "segment": segment,
        "region": customers["region"],
        "branch_id": branch_id,
    }

    # exact SHAP is the expensive step: explain only who can make the list or is reported on
    explaining = time.perf_counter()
    diagnosis = diagnosed(bundle, x, candidate, scoring)
    code = [diagnosis[f"reason_{k + 1}_code"] for k in range(TOP)]
    churn_type = diagnosis["churn_type"]
    out |= diagnosis
    if seconds is not None:
        seconds["explain"] = seconds.get("explain", 0.0) + time.perf_counter() - explaining

    codes, propensities = bundle.next_product_arrays(x, top=TOP)
    for k in range(TOP):
        out[f"next_product_{k + 1}"] = codes[:, k]
        out[f"next_product_{k + 1}_propensity"] = propensities[:, k]

    playbook = config.playbook
    rule_action = choose_actions(risk_tier, value_tier, segment, code, playbook, churn_type)
    # value unknown (a bank's own table without balances): no saving can be claimed
    chosen = choose(bundle, x, probability, value, rule_action, churn_type, candidate, config)
    action = chosen["action"]
    attribute = action_attributes(action, playbook)
    out["action"] = action
    out["action_channel"] = attribute["channel"]
    out["action_owner"] = attribute["owner"]
    out["action_description"] = attribute["description"]
    out["uplift"] = chosen["uplift"]
    out["action_why"] = chosen["action_why"]
    saving = chosen["expected_saving"]
    out["expected_saving"] = saving

    policy = config.contact_policy
    control = in_control_group(ids, policy.control_group_key, policy.control_group_share)
    out["control_group"] = control
    out["do_not_contact"] = np.asarray(customers["do_not_contact"], dtype=bool)
    out["days_since_last_contact"] = history["days_since_last_contact"]
    out["contacts_last_quarter"] = history["contacts_last_quarter"]
    candidates = {
        "reportable": candidate,
        "do_not_contact": np.asarray(customers["do_not_contact"], dtype=bool),
        "control_group": control,
        "days_since_last_contact": history["days_since_last_contact"],
        "contacts_last_quarter": history["contacts_last_quarter"],
        "expected_saving": np.nan_to_num(saving, nan=0.0),
        "sleeping_dog": chosen["sleeping_dog"],
        "unlikely_to_respond": chosen["unlikely_to_respond"],
        "owner": np.where(attribute["owner"] == None, "", attribute["owner"]),  # noqa: E711
        "branch_id": branch_id,
    }
    out |= decide_contacts(candidates, policy, playbook)
    return out


def diagnosed(
    bundle: ModelBundle, x: np.ndarray, rows: np.ndarray, scoring: ScoringConfig
) -> dict[str, np.ndarray]:
    """The top reasons (`reason_k_code`, `_text`, `_contribution`), `evidence`, `churn_type` and
    `churn_type_confidence` of the rows where `rows` (a boolean mask) is set, by exact SHAP; None
    (NaN) for the others."""
    n = len(x)
    code = [np.full(n, None, dtype=object) for _ in range(TOP)]
    text = [np.full(n, None, dtype=object) for _ in range(TOP)]
    contribution = [np.full(n, np.nan) for _ in range(TOP)]
    evidence = np.full(n, None, dtype=object)
    churn_type = np.full(n, None, dtype=object)
    confidence = np.full(n, np.nan)
    explain = np.flatnonzero(rows)
    if explain.size:
        subset = x[explain]
        diagnoses = bundle.diagnose(
            subset, bundle.contributions_array(subset), TOP, scoring.min_type_share, scoring.min_driver_logit
        )
        for row, diagnosis in zip(explain, diagnoses, strict=True):
            for k, reason in enumerate(diagnosis.reasons):
                code[k][row] = reason.code
                text[k][row] = reason.text
                contribution[k][row] = reason.contribution
            evidence[row] = "; ".join(diagnosis.evidence) or None
            churn_type[row] = diagnosis.churn_type
            confidence[row] = diagnosis.churn_type_confidence
    out: dict[str, np.ndarray] = {}
    for k in range(TOP):
        out[f"reason_{k + 1}_code"] = code[k]
        out[f"reason_{k + 1}_text"] = text[k]
        out[f"reason_{k + 1}_contribution"] = contribution[k]
    return out | {"evidence": evidence, "churn_type": churn_type, "churn_type_confidence": confidence}


def playbook_choice(bundle: ModelBundle, x: np.ndarray, segment: np.ndarray, config: AppConfig) -> np.ndarray:
    """The playbook's action for every row of `x` (None where no rule applies), decided as the
    list decides it (risk and value tier, segment, reasons, kind of churn), with no reporting
    threshold: what the playbook would have chosen for a customer on the date of their features.
    The learned uplift of the playbook's action is fitted on these (`training.uplift`)."""
    scoring = config.scoring
    probability = bundle.churn_probability(x)
    value = np.nan_to_num(bundle.value(x), nan=0.0)
    diagnosis = diagnosed(bundle, x, np.ones(len(x), dtype=bool), scoring)
    return choose_actions(
        tiers(probability, scoring.tiers),
        tiers(value, scoring.value_tiers),
        np.asarray(segment, dtype=object),
        [diagnosis[f"reason_{k + 1}_code"] for k in range(TOP)],
        config.playbook,
        diagnosis["churn_type"],
    )
