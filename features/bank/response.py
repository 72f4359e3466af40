"""How a customer responds to a retention contact: by the action, the cause and the customer.

A contact that reached the customer changes the log-odds of their cause hazards for the three
months after it. The change is the action's effect on the kind of churn behind each cause
(`ACTION_EFFECT`), scaled by the customer's hidden response type (`RESPONSE_SCALE`):

- a *persuadable* customer gets the action's full effect: a service-recovery call saves a
  service-failure leaver and does little for a competitive one, a rate offer the reverse;
- a *sure thing* or a *lost cause* is not moved by any contact;
- a *sleeping dog* is pushed away by any contact, whatever the action (`SLEEPING_DOG_EFFECT`).

A customer who has already decided to leave and is moving their money out can still be won
back while they drain: a contact that reaches them in their draining months reverses the
decision with probability `WIN_BACK_SHARE x (1 - exp(effect))`, the effect being the same
log-odds change of the cause behind their decision (so only persuadable customers, and only by
an action that fits their cause). The money already moved stays moved.

Nothing saves natural churn: a move, a retirement, a death or hardship is not changed by a call.
The response type leans on what the bank can observe (tenure, segment, digital use, age; see
`population._uplift_types`), with noise, so who responds to which action can be learned. All of
it is written to `truth/` and never read by the product.
"""

from __future__ import annotations

import numpy as np

from features.causes import CAUSE_CODES, CAUSES

# log-odds change of a persuadable customer's hazards, by action and kind of churn
ACTION_EFFECT: dict[str, dict[str, float]] = {
    "relationship_manager_visit": {"service_failure": -1.6, "competitive": -1.3},
    "service_recovery_call": {"service_failure": -2.0, "competitive": -0.2},
    "rate_offer": {"service_failure": -0.1, "competitive": -1.8},
    "payroll_incentive": {"service_failure": 0.0, "competitive": -0.9},
    "digital_reengagement": {"service_failure": -0.3, "competitive": -0.2},
    "retention_call": {"service_failure": -0.7, "competitive": -0.6},
    "keep_foothold": {"service_failure": -0.1, "competitive": -0.1},
    "hardship_support": {"service_failure": -0.1, "competitive": 0.0},
}
# a payroll incentive is aimed at one competitive cause: the salary that moved
CAUSE_OVERRIDES: dict[tuple[str, str], float] = {("payroll_incentive", "SALARY_MOVED"): -2.0}
RESPONSE_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
RESPONSE_SCALE = np.array([1.0, 0.0, 0.0, 0.0])
SLEEPING_DOG_EFFECT = 0.9  # any contact: log-odds added to every cause a contact can touch
ACTIONS = tuple(ACTION_EFFECT)
EFFECT_MONTHS = 3  # a contact works in its month and the two after it (a 90-day horizon)
WIN_BACK_SHARE = 0.6  # of a draining customer's decision a fitting action can reverse


def _effect_matrix() -> np.ndarray:
    """(actions, causes) log-odds change for a persuadable customer; natural causes 0."""
    out = np.zeros((len(ACTIONS), len(CAUSE_CODES)))
    for a, action in enumerate(ACTIONS):
        for c, code in enumerate(CAUSE_CODES):
            kind = CAUSES[code][0]
            out[a, c] = CAUSE_OVERRIDES.get((action, code), ACTION_EFFECT[action].get(kind, 0.0))
    return out


EFFECT = _effect_matrix()
TOUCHABLE = np.array([CAUSES[code][0] != "natural" for code in CAUSE_CODES])


def contact_effect(response_type: np.ndarray, action: np.ndarray, in_effect: np.ndarray) -> np.ndarray:
    """Log-odds change of every cause hazard, shape (customers, causes).

    Args:
        response_type: index into RESPONSE_TYPES per customer.
        action: index into ACTIONS of the customer's last contact, -1 for none.
        in_effect: the last contact reached the customer and is within its effect window.
    """
    n = len(response_type)
    out = np.zeros((n, len(CAUSE_CODES)))
    active = in_effect & (action >= 0)
    idx = np.flatnonzero(active)
    out[idx] = EFFECT[action[idx]] * RESPONSE_SCALE[response_type[idx]][:, None]
    dogs = idx[response_type[idx] == RESPONSE_TYPES.index("sleeping_dog")]
    out[np.ix_(dogs, np.flatnonzero(TOUCHABLE))] = SLEEPING_DOG_EFFECT
    return out


def win_back_probability(response_type: np.ndarray, action: np.ndarray, cause: np.ndarray) -> np.ndarray:
    """Chance that a contact reaching a draining customer reverses their decision to leave.

    Args:
        response_type: index into RESPONSE_TYPES per customer.
        action: index into ACTIONS of the contact, -1 for none.
        cause: index into CAUSE_CODES of the cause behind the decision, -1 for none.
    """
    out = np.zeros(len(response_type))
    ok = (action >= 0) & (cause >= 0)
    effect = EFFECT[action[ok], cause[ok]] * RESPONSE_SCALE[response_type[ok]]
    out[ok] = WIN_BACK_SHARE * np.clip(1.0 - np.exp(effect), 0.0, 1.0)
    return out


def truth_table() -> dict:
    """The response model as written to `truth/drivers.json`."""
    return {
        "action_effect_logit_persuadable": ACTION_EFFECT,
        "cause_overrides": {f"{a}:{c}": v for (a, c), v in CAUSE_OVERRIDES.items()},
        "response_scale": dict(zip(RESPONSE_TYPES, RESPONSE_SCALE.tolist(), strict=True)),
        "sleeping_dog_effect_logit": SLEEPING_DOG_EFFECT,
        "effect_months": EFFECT_MONTHS,
        "win_back": "a draining customer reached by a contact is won back with probability "
        f"{WIN_BACK_SHARE} x (1 - exp(the action's log-odds effect on their cause, scaled by their type))",
        "natural_churn": "no contact changes it",
    }


__all__ = [
    "ACTIONS",
    "EFFECT_MONTHS",
    "RESPONSE_TYPES",
    "contact_effect",
    "truth_table",
    "win_back_probability",
]
