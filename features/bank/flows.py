"""What a simulated month leaves in the tables: money in and out, interactions, new products.

Leaving is mostly silent: a customer who decided to leave drains deposits and investments to
another bank over one to three months while logins and spending fall. Rate shoppers move part
of their savings to a competitor while its campaign lasts. Retirees are paid a pension; the
dead stop transacting; customers in hardship miss repayments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.bank.state import ACTIVE, DRAINING, NEVER, PRODUCTS, SILENT, P, codes, split_amounts
from features.schema import (
    COMPLAINT_CATEGORIES,
    INCIDENT_CATEGORIES,
    INTERACTION_CHANNELS,
    INTERACTION_TYPES,
    TRANSACTION_CATEGORIES,
    TRANSACTION_CHANNELS,
)

if TYPE_CHECKING:
    from features.bank.months import Bank

# interactions.category holds a complaint's or an incident's category, or the product applied for
INTERACTION_CATEGORIES = tuple(dict.fromkeys(COMPLAINT_CATEGORIES + INCIDENT_CATEGORIES + PRODUCTS))


def _transaction_channel(rng: np.random.Generator, category: str, digital: np.ndarray) -> np.ndarray:
    size = digital.size
    if category == "card_spend":
        return np.full(size, "card", dtype=object)
    if category == "cash":
        return np.where(rng.random(size) < 0.9, "atm", "branch").astype(object)
    if category in ("salary", "pension", "interest", "fee", "transfer_in"):
        return np.full(size, "online", dtype=object)
    digital_channel = np.where(rng.random(size) < 0.7, "mobile", "online")
    return np.where(digital | (rng.random(size) < 0.3), digital_channel, "branch").astype(object)


def emit_month_flows(bank: Bank, m: int) -> None:
    """The month's money: the totals per customer, then transactions that split them."""
    rng, n, pop = bank.rng, bank.n, bank.pop
    ms, _, length = bank.span(m)
    draining = bank.status == DRAINING
    present = (bank.status == ACTIVE) | draining
    silent = bank.status == SILENT
    dead = bank.died_month != NEVER
    living = present & ~dead
    bank.engagement[draining] *= 0.5
    hardship = (m - bank.hardship_month) <= 6
    income = pop.income * np.where(hardship, 0.55, 1.0)

    spend_scale = np.where(living, 1.0, 0.0) + np.where(silent, 0.05, 0.0)
    salary = np.where(bank.payroll & living, income * rng.uniform(0.97, 1.03, n), 0.0)
    pension = np.where(bank.pension & living, pop.income * rng.uniform(0.55, 0.65, n), 0.0)
    other_income = np.where(
        ~bank.payroll & ~bank.pension & living & (rng.random(n) < 0.75),
        income * rng.uniform(0.6, 1.1, n),
        0.0,
    )
    other_income += np.where(living & (rng.random(n) < 0.2), income * rng.uniform(0.05, 0.3, n), 0.0)
    interest = np.where(bank.deposits > 1000, bank.deposits * 0.015 / 12, 0.0) * (present | silent)
    card = income * rng.uniform(0.30, 0.50, n) * spend_scale * np.where(draining, 0.4, 1.0)
    bills = income * rng.uniform(0.12, 0.22, n) * spend_scale * np.where(hardship, 1.4, 1.0)
    cash = income * rng.uniform(0.02, 0.08, n) * spend_scale * np.where(pop.digital, 0.5, 1.5)
    fees = np.where((present | silent) & (rng.random(n) < 0.3), rng.uniform(3, 25, n), 0.0)
    bank.fees_by_month.append(fees)
    pressure = pop.rate_sensitivity * bank.gap[m, pop.region]
    shopping = living & (pressure > 0.15)
    shop_out = np.where(shopping, bank.deposits * np.minimum(0.12 * pressure, 0.3), 0.0)
    routine_out = np.where(living & (rng.random(n) < 0.25), income * rng.uniform(0.05, 0.25, n), 0.0)
    drain_share = np.where(draining, rng.uniform(0.85, 1.0, n) / np.maximum(bank.drain_left, 1), 0.0)
    inflow = salary + pension + other_income + interest
    wanted = card + bills + cash + fees + routine_out
    available = bank.deposits + inflow
    scale = np.where(wanted > 0.9 * available, 0.9 * available / np.maximum(wanted, 1e-9), 1.0)
    card, bills, cash, fees, routine_out = (x * scale for x in (card, bills, cash, fees, routine_out))
    deposits = available - card - bills - cash - fees - routine_out
    shop_out = np.minimum(shop_out, 0.5 * deposits)
    drain_deposits = deposits * drain_share
    drain_investments = bank.investments * drain_share
    bank.deposits = deposits - shop_out - drain_deposits
    bank.investments = np.maximum(
        bank.investments * (1 + rng.normal(0.004, 0.02, n)) - drain_investments, 0.0
    )
    external = routine_out + shop_out + drain_deposits + drain_investments
    bank.mortgage = np.maximum(bank.mortgage * 0.996 - 0.002 * pop.income * (bank.mortgage > 0), 0)
    bank.loan = np.maximum(bank.loan - 0.04 * pop.income * (bank.loan > 0) * ~hardship, 0)

    act = bank.activity * np.where(draining, 0.5, 1.0) * np.where(silent, 0.15, 1.0) * (living | silent)
    counts = {
        "salary": (salary > 0).astype(np.int64),
        "pension": (pension > 0).astype(np.int64),
        "transfer_in": np.where(other_income > 0, 1 + rng.poisson(0.3, n), 0),
        "interest": (interest > 0).astype(np.int64),
        "card_spend": np.where(card > 0, rng.poisson(6.0 * act), 0),
        "bill_pay": np.where(bills > 0, 1 + rng.poisson(1.2 * act), 0),
        "cash": np.where(cash > 0, rng.poisson(0.9 * act * np.where(pop.digital, 0.6, 1.6)), 0),
        "fee": (fees > 0).astype(np.int64),
        "transfer_out_external": np.where(external > 1, 1 + rng.poisson(0.4 + 1.5 * draining), 0),
    }
    totals = {
        "salary": salary,
        "pension": pension,
        "transfer_in": other_income,
        "interest": interest,
        "card_spend": card,
        "bill_pay": bills,
        "cash": cash,
        "fee": fees,
        "transfer_out_external": external,
    }
    everyone = np.arange(n)
    for category, count in counts.items():
        rows, amounts = split_amounts(rng, everyone, count, totals[category])
        if category in ("salary", "pension"):
            day = 24 if category == "salary" else 1
            seconds = np.clip(day + rng.integers(-2, 3, rows.size), 0, length - 1) * 86400
            seconds = seconds + rng.integers(0, 86400, rows.size)
        else:
            seconds = rng.integers(0, length * 86400, rows.size)
        bank.events.add(
            "tx",
            customer=rows,
            ts=ms * 86400 + seconds,
            amount=np.round(amounts, 2),
            category=codes(category, TRANSACTION_CATEGORIES, rows.size),
            channel=codes(_transaction_channel(rng, category, pop.digital[rows]), TRANSACTION_CHANNELS),
        )


def _codes(value: str | np.ndarray | None, vocabulary: tuple[str, ...], size: int) -> np.ndarray:
    if value is None:
        return np.full(size, -1, dtype=np.int8)
    return codes(value, vocabulary, size) if isinstance(value, str) else codes(value, vocabulary)


def _add_interactions(
    bank: Bank,
    m: int,
    kind: str,
    rows: np.ndarray,
    channel: str | np.ndarray,
    category: str | np.ndarray | None = None,
    day: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> None:
    """Interactions of one kind this month (on random days unless `day` is given)."""
    rng = bank.rng if rng is None else rng
    ms, _, length = bank.span(m)
    day = ms + rng.integers(0, length, rows.size) if day is None else day
    bank.events.add(
        "ix",
        customer=rows,
        ts=day * 86400 + rng.integers(0, 86400, rows.size),
        type=codes(kind, INTERACTION_TYPES, rows.size),
        channel=_codes(channel, INTERACTION_CHANNELS, rows.size),
        category=_codes(category, INTERACTION_CATEGORIES, rows.size),
        resolved=np.full(rows.size, np.iinfo(np.int64).max),
    )


def emit_interactions(bank: Bank, m: int, service: dict[str, np.ndarray]) -> None:
    """Logins, service calls, branch visits, complaints, incidents and life-event notices."""
    rng, n, pop = bank.rng, bank.n, bank.pop
    present = (bank.status == ACTIVE) | (bank.status == DRAINING)
    silent = bank.status == SILENT
    living = (present | silent) & (bank.died_month == NEVER)
    login_rate = pop.base_logins * bank.engagement * living * np.where(silent, 0.05, 1.0)
    if bank.scenario == "app_outage" and m >= bank.drift_from:  # the app mostly down
        login_rate = login_rate * 0.1
    logins = np.repeat(np.arange(n), rng.poisson(login_rate))
    _add_interactions(bank, m, "login", logins, np.where(rng.random(logins.size) < 0.75, "mobile", "online"))
    recent = service["recent_service"] + service["recent_fee"]
    calls = np.repeat(np.arange(n), rng.poisson((0.08 + 0.3 * (recent > 0)) * present * living))
    _add_interactions(bank, m, "service_call", calls, "phone")
    visits = np.repeat(np.arange(n), rng.poisson(0.25 * present * living * np.where(pop.digital, 0.3, 1.5)))
    _add_interactions(bank, m, "branch_visit", visits, "branch")
    complaints = service["complaint_rows"]
    bank.events.add(
        "ix",
        customer=complaints,
        ts=service["complaint_filed"] * 86400 + rng.integers(0, 86400, complaints.size),
        type=codes("complaint", INTERACTION_TYPES, complaints.size),
        channel=codes(
            rng.choice(np.array(["phone", "branch", "online", "mobile"], dtype=object), complaints.size),
            INTERACTION_CHANNELS,
        ),
        category=codes(
            np.array(COMPLAINT_CATEGORIES, dtype=object)[service["complaint_category"]],
            INTERACTION_CATEGORIES,
        ),
        resolved=service["complaint_resolved"],
    )
    incidents = service["incident_rows"]
    _add_interactions(
        bank,
        m,
        "service_incident",
        incidents,
        np.where(pop.digital[incidents], "mobile", "branch"),
        rng.choice(np.array(INCIDENT_CATEGORIES, dtype=object), incidents.size),
        day=service["incident_day"],
    )
    moved = np.flatnonzero(bank.moved_month == m)
    _add_interactions(bank, m, "address_change", moved, np.where(pop.digital[moved], "online", "branch"))
    in_hardship = present & ((m - bank.hardship_month) <= 6) & (bank.hardship_month != NEVER)
    owes = (bank.loan > 0) | (bank.mortgage > 0) | bank.holdings.held(P["credit_card"])
    missed = np.flatnonzero(in_hardship & owes & (rng.random(n) < 0.8))
    product = np.where(
        bank.mortgage[missed] > 0, "mortgage", np.where(bank.loan[missed] > 0, "personal_loan", "credit_card")
    )
    _add_interactions(bank, m, "missed_payment", missed, "online", product.astype(object))
    # the family tells the bank, in the month of the death or the next
    told_now = (bank.died_month == m) & (rng.random(n) < 0.5)
    told_later = (bank.died_month == m - 1) & ~bank.bereavement_told & (rng.random(n) < 0.7)
    told = np.flatnonzero(told_now | told_later)
    bank.bereavement_told[told] = True
    _add_interactions(bank, m, "bereavement_notice", told, "branch")


def adopt_products(bank: Bank, m: int) -> None:
    """Next products, driven by needs and life stage (never while leaving); credit products start
    with an application (the signal of a credit need)."""
    rng, n, pop, holdings = bank.rng, bank.n, bank.pop, bank.holdings
    ms, _, length = bank.span(m)
    can_adopt = (bank.status == ACTIVE) & (bank.died_month == NEVER)
    notices = rng.spawn(1)[0]  # the applications' interaction rows draw apart from the products
    day_in_month = ms + rng.integers(0, length, n)
    age = pop.age(pd.Timestamp(ms, unit="D").year)
    lapsed_now = bank.lapses
    adopt = {
        "savings": 0.003 + 0.012 * bank.payroll * (bank.deposits > 2.5 * pop.income),
        "term_deposit": 0.002
        + 0.008 * (bank.deposits > 6 * pop.income)
        + 0.03 * (lapsed_now & (rng.random(n) < 0.3)),
        "wealth_fund": (pop.segment > 0)
        * (0.004 + 0.06 * lapsed_now + 0.004 * (bank.deposits > 8 * pop.income)),
        "insurance": 0.0015 + 0.05 * (m - bank.mortgage_opened_month <= 2),
    }
    for product, probability in adopt.items():
        takers = np.flatnonzero(can_adopt & ~holdings.held(P[product]) & (rng.random(n) < probability))
        holdings.open(
            takers, P[product], day_in_month[takers], term_days=365 if product == "term_deposit" else 0
        )
        if product in ("term_deposit", "wealth_fund"):
            moved = bank.deposits[takers] * 0.4
            bank.deposits[takers] -= moved
            if product == "wealth_fund":
                bank.investments[takers] += moved
    applications = {
        "credit_card": (0.004 + 0.012 * (age < 35)) * ~holdings.held(P["credit_card"]),
        "personal_loan": (0.003 + 0.01 * (m - bank.cc_application_month <= 2))
        * ~holdings.held(P["personal_loan"]),
        "mortgage": 0.003 * ((age > 27) & (age < 46) & (pop.income > 2500)) * ~holdings.held(P["mortgage"]),
    }
    for product, probability in applications.items():
        # every draw is made for all customers and taken for the applicants, so that one customer's
        # changed state moves nobody else's products (a simulated list's continuations stay comparable)
        applicants = np.flatnonzero(can_adopt & (rng.random(n) < probability))
        apply_day = (ms + rng.integers(0, length, n))[applicants]
        approved = (rng.random(n) < {"credit_card": 0.7, "personal_loan": 0.6, "mortgage": 0.5}[product])[
            applicants
        ]
        chosen = applicants[approved]
        opened = apply_day[approved] + rng.integers(3, 25, n)[chosen]
        amount = pop.income * rng.uniform(*{"mortgage": (40, 90)}.get(product, (1, 5)), n)
        _add_interactions(
            bank,
            m,
            "product_application",
            applicants,
            np.where(pop.digital[applicants], "mobile", "branch"),
            product,
            day=apply_day,
            rng=notices,
        )
        if product == "credit_card":
            bank.cc_application_month[applicants] = m
        holdings.open(chosen, P[product], opened)
        if product == "mortgage":
            bank.mortgage_opened_month[chosen] = m
            bank.mortgage[chosen] = amount[chosen]
        if product == "personal_loan":
            bank.loan[chosen] = amount[chosen]
