"""Why simulated customers decide to leave: one hazard per cause, competing each month.

Each cause of `features.causes.CAUSES` has a monthly log-odds hazard: a baseline, the signal that
drives it (unresolved service complaints, fee disputes, incidents, a competitor's rate gap felt
through the customer's hidden rate sensitivity, a term deposit that lapsed, a salary that moved,
a move, retirement, hardship), the loyalty of the relationship (few products and a short tenure
make every cause likelier, many products less) and noise. A customer decides to leave with the
probability that any cause fires, and the cause is drawn in proportion to the hazards: the
planted `cause_code`. Death is an event of its own (DECEASED): the estate closes the accounts.

`type_shares` rescales the hazards of each kind of churn so that the shares of leavers come out
near the given ones (the defaults follow retail-banking practice: service failure the largest,
competitive under a third).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.causes import CAUSE_CODES, CAUSES, CHURN_TYPES

# Log-odds weights of the monthly cause hazards (written to truth/drivers.json).
WEIGHTS = {
    # without its signal a cause almost never fires: leaving has reasons the data shows
    "baseline": {
        "COMPLAINT": -9.0,
        "FEES": -9.6,
        "SERVICE_INCIDENT": -9.6,
        "COMPETITOR_RATE": -9.3,
        "DEPOSIT_MATURED": -9.8,
        "SALARY_MOVED": -9.8,
        "MOVED_AWAY": -10.0,
        "RETIRED": -10.5,
        "HARDSHIP": -10.0,
    },
    "unresolved_service_complaints": 3.1,  # per open complaint not about fees, at most 3
    "recent_service_complaints": 1.3,  # per such complaint filed in the last 90 days, at most 3
    "unresolved_fee_complaints": 3.5,
    "recent_fee_complaints": 1.5,
    "fees_charged": 0.002,  # per unit of fees charged in the last 90 days, at most 150
    "recent_incidents": 3.0,  # per service incident in the last 90 days, at most 4
    "competitor_gap": 6.2,  # rate sensitivity x regional gap (percentage points)
    "maturity_not_renewed": 6.6,  # a term deposit lapsed in the last 3 months
    "salary_moved": 5.6,  # the salary switched to another bank in the last 6 months
    "moved_away": 7.0,  # moved in the last 3 months (more for branch customers)
    "moved_away_branch_customer": 1.0,
    "retired": 6.5,  # retired in the last 9 months
    "hardship": 6.8,  # hardship began in the last 6 months
    "single_product": 0.6,
    "short_tenure": 0.5,
    "extra_products": -0.25,  # per product beyond two
    "noise_sd": 0.35,
}
# Leavers by kind with the weights above (measured on generated banks; what `type_shares` scales).
DEFAULT_TYPE_SHARES = {"service_failure": 0.42, "competitive": 0.26, "natural": 0.32}
CAUSE_INDEX = {code: k for k, code in enumerate(CAUSE_CODES)}
NO_CAUSE = -1


@dataclass
class Signals:
    """What drives the cause hazards this month, per customer."""

    unresolved_service: np.ndarray
    recent_service: np.ndarray
    unresolved_fee: np.ndarray
    recent_fee: np.ndarray
    fees_charged_90d: np.ndarray
    incidents_90d: np.ndarray
    competitor_pressure: np.ndarray  # rate sensitivity x the region's gap
    lapsed_recently: np.ndarray
    salary_moved_recently: np.ndarray
    moved_recently: np.ndarray
    branch_customer: np.ndarray
    retired_recently: np.ndarray
    hardship_recently: np.ndarray
    products_held: np.ndarray
    short_tenure: np.ndarray
    contact_effect: (
        np.ndarray
    )  # (customers, causes) log-odds a recent contact adds (`response.contact_effect`)


@dataclass
class CauseModel:
    """The cause hazards, rescaled so leavers split by kind near `type_shares`."""

    type_shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TYPE_SHARES))

    def __post_init__(self) -> None:
        unknown = set(self.type_shares) - set(CHURN_TYPES)
        if unknown or any(v < 0 for v in self.type_shares.values()) or not sum(self.type_shares.values()):
            raise ValueError(f"type_shares: shares of {', '.join(CHURN_TYPES)}, not negative, not all zero")
        total = sum(self.type_shares.values())
        shares = {t: self.type_shares.get(t, 0.0) / total for t in CHURN_TYPES}
        self.scale = {t: shares[t] / DEFAULT_TYPE_SHARES[t] for t in CHURN_TYPES}

    def hazards(self, s: Signals, noise: np.ndarray) -> np.ndarray:
        """Monthly probability of each cause firing, shape (n, causes); DECEASED is left at 0."""
        w = WEIGHTS
        loyalty = (
            w["single_product"] * (s.products_held <= 1)
            + w["short_tenure"] * s.short_tenure
            + w["extra_products"] * np.maximum(s.products_held - 2, 0)
            + noise
        )
        signal = {
            "COMPLAINT": w["unresolved_service_complaints"] * np.minimum(s.unresolved_service, 3)
            + w["recent_service_complaints"] * np.minimum(s.recent_service, 3),
            "FEES": w["unresolved_fee_complaints"] * np.minimum(s.unresolved_fee, 3)
            + w["recent_fee_complaints"] * np.minimum(s.recent_fee, 3)
            + w["fees_charged"] * np.minimum(s.fees_charged_90d, 150),
            "SERVICE_INCIDENT": w["recent_incidents"] * np.minimum(s.incidents_90d, 4),
            "COMPETITOR_RATE": w["competitor_gap"] * s.competitor_pressure,
            "DEPOSIT_MATURED": w["maturity_not_renewed"] * s.lapsed_recently,
            "SALARY_MOVED": w["salary_moved"] * s.salary_moved_recently,
            "MOVED_AWAY": (w["moved_away"] + w["moved_away_branch_customer"] * s.branch_customer)
            * s.moved_recently,
            "RETIRED": w["retired"] * s.retired_recently,
            "HARDSHIP": w["hardship"] * s.hardship_recently,
        }
        # a circumstance is a cause only once it has happened
        happened = {
            "MOVED_AWAY": s.moved_recently,
            "RETIRED": s.retired_recently,
            "HARDSHIP": s.hardship_recently,
        }
        out = np.zeros((len(noise), len(CAUSE_CODES)))
        for code, value in signal.items():
            kind = CAUSES[code][0]
            logit = w["baseline"][code] + value + loyalty + s.contact_effect[:, CAUSE_INDEX[code]]
            probability = self.scale[kind] / (1.0 + np.exp(-logit))
            out[:, CAUSE_INDEX[code]] = probability * happened[code] if code in happened else probability
        return np.clip(out, 0.0, 0.5)

    def decide(
        self, rng: np.random.Generator, hazards: np.ndarray, eligible: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Who decides to leave this month, and for which cause (index into CAUSE_CODES)."""
        any_cause = 1.0 - np.prod(1.0 - hazards, axis=1)
        draws = rng.random((2, len(any_cause)))
        decides = eligible & (draws[0] < any_cause)
        cumulative = np.cumsum(hazards, axis=1)
        pick = (cumulative < (draws[1] * cumulative[:, -1])[:, None]).sum(axis=1)
        cause = np.where(decides, np.minimum(pick, len(CAUSE_CODES) - 1), NO_CAUSE)
        return decides, cause


def death_probability(age: np.ndarray) -> np.ndarray:
    """Monthly probability of dying at this age (a Gompertz curve: about 5% a year at 80)."""
    return np.minimum(np.exp(-10.2 + 0.09 * age) / 12.0, 0.05)
