"""Why customers leave: the cause codes and the three kinds of churn, one vocabulary for all.

The generator plants a cause from this list for every customer who decides to leave
(`truth/customers.parquet`), the product names its reasons with the same codes, and the
playbook chooses actions by them, so a list can be checked against the truth without a mapping.

- natural: the customer's own circumstances; little can be done, and spending on them is waste;
- competitive: a rival's better rate or offer; a matching rate or renewal offer can work;
- service failure: the bank's own mistakes; service recovery works, a rate offer does not.
"""

from __future__ import annotations

from typing import Literal

ChurnType = Literal["natural", "competitive", "service_failure"]
CHURN_TYPES: tuple[ChurnType, ...] = ("service_failure", "competitive", "natural")
UNCLEAR = "unclear"  # the product's answer when the drivers do not point to one kind

# cause code -> (kind of churn, what it means)
CAUSES: dict[str, tuple[ChurnType, str]] = {
    "COMPLAINT": ("service_failure", "a complaint about the bank's service, unresolved or slow"),
    "FEES": ("service_failure", "a dispute about fees and charges"),
    "SERVICE_INCIDENT": ("service_failure", "failed payments, declined cards, outages that hit the customer"),
    "COMPETITOR_RATE": ("competitive", "a rival's better rate, felt by a rate-sensitive customer"),
    "DEPOSIT_MATURED": ("competitive", "a term deposit matured and the money was not renewed here"),
    "SALARY_MOVED": ("competitive", "the salary moved to another bank, with the main banking"),
    "MOVED_AWAY": ("natural", "the customer moved away from the bank's branches"),
    "RETIRED": ("natural", "retirement: salary replaced by a pension, finances consolidated"),
    "DECEASED": ("natural", "the customer died; the estate closes the accounts"),
    "HARDSHIP": ("natural", "financial hardship: missed payments, then the money runs out"),
}
CAUSE_CODES: tuple[str, ...] = tuple(CAUSES)


def churn_type_of(code: str) -> ChurnType:
    """The kind of churn a cause code belongs to.

    Raises:
        KeyError: not a cause code.
    """
    return CAUSES[code][0]
