"""Diagnoses from family contributions: drivers as reasons, symptoms as evidence, the kind of churn."""

from __future__ import annotations

import numpy as np
import pytest

from serving.reasons import FamilySpec, diagnose

SPECS = [
    FamilySpec(
        "complaints",
        "driver",
        ({"code": "COMPLAINT", "text": "{unresolved_complaints:.0f} open complaint(s)"},),
    ),
    FamilySpec(
        "salary",
        "driver",
        (
            {"code": "RETIRED", "when": "pension_payments_90d", "text": "Salary replaced by a pension"},
            {"code": "SALARY_MOVED", "text": "Salary moved to another bank"},
        ),
    ),
    FamilySpec(
        "competition", "driver", ({"code": "COMPETITOR_RATE", "text": "Rival rate {gap:.1f} points up"},)
    ),
    FamilySpec("balance", "symptom", ({"text": "balances {change:+.0%} in 3 months"},)),
    FamilySpec("contacts", "context", ({"text": "{contacts:.0f} retention contacts"},)),
]
COLUMNS = {
    "unresolved_complaints": np.array([2.0, 0.0, 1.0, 0.0]),
    "pension_payments_90d": np.array([0.0, 3.0, 0.0, 0.0]),
    "gap": np.array([0.5, 0.5, 2.0, 0.0]),
    "change": np.array([-0.6, np.nan, -0.2, 0.0]),
    "contacts": np.array([1.0, 1.0, 1.0, 1.0]),
}


def _diagnose(by_family, **kwargs):
    return diagnose(COLUMNS, np.array(by_family, dtype=float), SPECS, top=3, **kwargs)


def test_diagnose__drivers_are_the_reasons_by_contribution_symptoms_the_evidence_context_neither():
    d = _diagnose([[0.9, 0.0, 0.2, 2.5, 3.0], [0] * 5, [0] * 5, [0] * 5])[0]
    assert [r.code for r in d.reasons] == ["COMPLAINT", "COMPETITOR_RATE"], (
        "balances and contacts are never reasons"
    )
    assert d.reasons[0].text == "2 open complaint(s)"
    assert d.evidence == ["balances -60% in 3 months"]
    assert (d.churn_type, d.churn_type_confidence) == ("service_failure", pytest.approx(0.9 / 1.1, abs=1e-4))


def test_diagnose__a_family_names_the_cause_its_wording_chooses():
    diagnoses = _diagnose([[0, 0.8, 0, 0, 0], [0, 0.8, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    assert diagnoses[0].reasons[0].code == "SALARY_MOVED" and diagnoses[0].churn_type == "competitive"
    assert diagnoses[1].reasons[0].code == "RETIRED" and diagnoses[1].churn_type == "natural", (
        "a pension came in"
    )


@pytest.mark.parametrize(
    ("by_family", "expected"),
    [
        ([0.3, 0.0, 0.3, 1.0, 0.0], "unclear"),  # service failure and competition weigh the same
        ([0.05, 0.0, 0.0, 4.0, 0.0], "unclear"),  # the risk rests on symptoms: the drivers add up to little
        ([0.0, 0.0, 0.0, 0.0, 2.0], "unclear"),  # context only
        ([0.2, 0.0, 0.6, 1.0, 0.0], "competitive"),
    ],
)
def test_diagnose__the_kind_is_unclear_when_no_kind_holds_most_of_enough_driver_contribution(
    by_family, expected
):
    rows = [by_family, [0] * 5, [0] * 5, [0] * 5]
    assert _diagnose(rows, min_type_share=0.55, min_driver_logit=0.1)[0].churn_type == expected


def test_diagnose__evidence_never_shows_nan_a_missing_value_gets_its_own_wording():
    d = _diagnose([[0, 0, 0, 0, 0], [0.0, 0.5, 0.0, 1.0, 0.0], [0] * 5, [0] * 5])[1]
    assert d.evidence == ["Balance: not enough data for this customer to describe it"]
