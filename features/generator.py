"""A seeded synthetic retail bank whose churn has known, causal drivers.

The bank is simulated month by month, vectorised over customers. Each month every customer has a
hidden hazard of deciding to leave, driven by:

- complaints (unresolved ones weigh more),
- a competitor's rate gap in the customer's region, felt in proportion to a hidden rate sensitivity;
  it is never observed directly, only as rising external transfers out,
- salary deposits that stopped,
- a term deposit that matured and was not renewed,
- falling digital engagement,
- few products and short tenure,
- a retention contact, whose effect depends on the customer's hidden uplift type,
- and noise.

A customer who decides to leave drains deposits and investments to another bank over one to three
months (salary stops, logins fall), then either closes every product or silently keeps an empty
account. Next-product adoption follows needs and life stage. The ground truth (hazard components per
customer and month, uplift types, the month each customer decided to leave) is written to `truth/`,
which the feature pipeline never reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import (
    CATEGORY_DIRECTION,
    COMPLAINT_CATEGORIES,
    DIRECTIONS,
    INCOME_BANDS,
    INTERACTION_CHANNELS,
    INTERACTION_TYPES,
    REGIONS,
    SCHEMAS,
    TRANSACTION_CATEGORIES,
    TRANSACTION_CHANNELS,
)

GENERATOR_VERSION = "1"

PRODUCTS = (
    "current_account",
    "savings",
    "term_deposit",
    "wealth_fund",
    "credit_card",
    "personal_loan",
    "mortgage",
    "insurance",
)
P = {code: index for index, code in enumerate(PRODUCTS)}
# interactions.category holds a complaint's category or the product applied for
INTERACTION_CATEGORIES = tuple(dict.fromkeys(COMPLAINT_CATEGORIES + PRODUCTS))
UPLIFT_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")
# Log-odds change of the monthly leaving hazard for three months after a contact that reached them.
UPLIFT_EFFECT = np.array([-1.4, 0.0, 0.0, 0.9])

# Log-odds weights of the hidden monthly hazard of deciding to leave (written to truth/drivers.json).
HAZARD_WEIGHTS = {
    "intercept": -5.8,
    "unresolved_complaints": 0.85,  # per open unresolved complaint, at most 3
    "recent_complaints": 0.35,  # per complaint filed in the last 90 days, at most 3
    "competitor_gap": 1.5,  # rate sensitivity x regional competitor gap (percentage points)
    "salary_stopped": 1.5,  # salary stopped in the last 6 months
    "maturity_not_renewed": 1.3,  # term deposit matured without renewal in the last 3 months
    "engagement_decline": 0.9,  # per unit of log decline of the engagement level, at most 2.5
    "single_product": 0.6,
    "short_tenure": 0.6,  # under two years with the bank
    "extra_products": -0.25,  # per product beyond two
    "contact_effect": 1.0,  # the uplift effect above, while it lasts
    "noise_sd": 0.35,
}


# Drift scenarios `generate_bank` can play in its last months (what monitoring must find).
DRIFT_SCENARIOS = {
    "rate_campaign": "a competitor's rate campaign in one region: money moves out to other banks",
    "app_outage": "the mobile app mostly down: logins fall to a tenth",
    "channel_recode": "a source system starts coding mobile-app transactions as branch ones",
}


@dataclass(frozen=True)
class GeneratedBank:
    """The six raw tables and the generator's ground truth."""

    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    truth_hazard: pd.DataFrame
    manifest: dict


def _month_starts(start: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=months + 1, freq="MS")


def _days(values: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray | int:
    """Days since the epoch as int64."""
    if isinstance(values, pd.Timestamp):
        return int(values.value // 86_400_000_000_000)
    return values.asi8 // 86_400_000_000_000


def _codes(values: np.ndarray | str, vocabulary: tuple[str, ...], size: int | None = None) -> np.ndarray:
    """Small integer codes of text values (-1 for None), so tens of millions of events stay compact."""
    if isinstance(values, str):
        return np.full(size, vocabulary.index(values), dtype=np.int8)
    return pd.Categorical(values, categories=vocabulary).codes.astype(np.int8)


def _split_amounts(
    rng: np.random.Generator, owners: np.ndarray, counts: np.ndarray, totals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split each owner's monthly total into `counts` positive amounts with random weights."""
    rows = np.repeat(owners, counts[owners])
    if rows.size == 0:
        return rows, np.empty(0)
    weights = rng.exponential(1.0, rows.size)
    weight_sums = np.bincount(rows, weights=weights, minlength=counts.size)
    amounts = totals[rows] * weights / weight_sums[rows]
    return rows, amounts


class _Simulation:
    """Mutable month-by-month state; used only inside `generate_bank`."""

    def __init__(self, customers: int, months: int, seed: int, start: pd.Timestamp, activity: float):
        self.n = customers
        self.months = months
        self.rng = np.random.default_rng(seed)
        self.activity = activity
        self.month_starts = _month_starts(start, months)
        self.month_start_days = _days(self.month_starts)
        self.holding_rows: dict[str, list[np.ndarray]] = {
            k: [] for k in ("customer", "product", "opened", "maturity")
        }
        self.holding_count = 0
        capacity = customers * 12 + 1024
        self.holding_closed = np.full(capacity, -1, dtype=np.int64)
        self.current_holding = np.full((customers, len(PRODUCTS)), -1, dtype=np.int64)
        self.events: dict[str, list[dict[str, np.ndarray]]] = {
            "tx": [],
            "ix": [],
            "ct": [],
            "bal": [],
            "hz": [],
        }
        self.complaint_customer: list[np.ndarray] = []
        self.complaint_filed: list[np.ndarray] = []
        self.complaint_resolved: list[np.ndarray] = []

    # -- holdings -------------------------------------------------------------------------------
    def open_products(
        self, customers: np.ndarray, product: int, opened_days: np.ndarray, term_days: int = 0
    ) -> None:
        not_held = self.current_holding[customers, product] < 0
        customers, opened_days = customers[not_held], np.asarray(opened_days)[not_held]
        if customers.size == 0:
            return
        index = np.arange(self.holding_count, self.holding_count + customers.size)
        if index[-1] >= self.holding_closed.size:
            self.holding_closed = np.concatenate([self.holding_closed, np.full(self.holding_closed.size, -1)])
        self.holding_count += customers.size
        self.current_holding[customers, product] = index
        maturity = opened_days + term_days if term_days else np.full(customers.size, -1)
        for key, values in (
            ("customer", customers),
            ("product", np.full(customers.size, product)),
            ("opened", opened_days),
            ("maturity", maturity),
        ):
            self.holding_rows[key].append(np.asarray(values, dtype=np.int64))

    def close_products(self, customers: np.ndarray, product: int, closed_days: np.ndarray) -> None:
        index = self.current_holding[customers, product]
        held = index >= 0
        opened = np.concatenate(self.holding_rows["opened"])[index[held]]
        # a product approved late in the month may open after the day the customer closes the rest
        self.holding_closed[index[held]] = np.maximum(closed_days[held], opened)
        self.current_holding[customers[held], product] = -1

    def held(self, product: int) -> np.ndarray:
        return self.current_holding[:, product] >= 0

    def maturity_of(self, product: int) -> np.ndarray:
        maturity = (
            np.concatenate(self.holding_rows["maturity"]) if self.holding_rows["maturity"] else np.empty(0)
        )
        index = self.current_holding[:, product]
        result = np.full(self.n, -1, dtype=np.int64)
        result[index >= 0] = maturity[index[index >= 0]]
        return result


def generate_bank(
    customers: int = 2500,
    months: int = 24,
    seed: int = 20261122,
    start: str | pd.Timestamp = "2024-11-01",
    activity: float = 1.0,
    scenario: str | None = None,
    drift_months: int = 2,
    drift_region: str = "North",
) -> GeneratedBank:
    """Simulate a retail bank and return its raw tables and ground truth.

    Args:
        customers: number of customers (about 12% of them join during the simulated months).
        months: number of simulated months, starting at `start`.
        seed: seed of the random generator; the same arguments give the same bank.
        start: first day of the first simulated month.
        activity: multiplies transaction and login rates (1.0 is about 11 transactions a month).
        scenario: a drift in the last `drift_months` months, for monitoring to find (see
            `DRIFT_SCENARIOS`); None for none. The months before are the same bank either way.
        drift_months: how many of the last months the scenario covers.
        drift_region: the region of the `rate_campaign` scenario.

    Returns:
        The tables keyed by name, and the generator's ground truth.
    """
    if scenario is not None and scenario not in DRIFT_SCENARIOS:
        raise ValueError(f"scenario: {scenario!r} is not one of {', '.join(DRIFT_SCENARIOS)}")
    if drift_region not in REGIONS:
        raise ValueError(f"drift_region: {drift_region!r} is not one of {', '.join(REGIONS)}")
    if not 1 <= drift_months < months:
        raise ValueError(f"drift_months: {drift_months} is not between 1 and {months - 1}")
    drift_from = months - drift_months  # the first month of the scenario
    start = pd.Timestamp(start)
    sim = _Simulation(customers, months, seed, start, activity)
    rng, n = sim.rng, customers
    start_day = sim.month_start_days[0]
    end_day = sim.month_start_days[-1]

    # -- static customer attributes ------------------------------------------------------------
    segment = rng.choice(3, n, p=[0.78, 0.18, 0.04])
    income = np.exp(rng.normal(np.log([2300.0, 5500.0, 14000.0])[segment], 0.35))
    age0 = np.clip(rng.normal(46, 16, n), 18, 90)
    birth_year = (start.year - age0).astype(np.int64)
    gender = rng.choice(np.array(["F", "M", "U"]), n, p=[0.50, 0.49, 0.01])
    region = rng.choice(len(REGIONS), n, p=[0.26, 0.16, 0.16, 0.14, 0.14, 0.14])
    branch = region * 5 + rng.integers(0, 5, n)
    band_edges = np.array([2000.0, 4000.0, 8000.0, 15000.0])
    income_band = np.searchsorted(band_edges, income, side="right")
    declared_payroll = rng.random(n) < np.array([0.58, 0.66, 0.50])[segment]
    do_not_contact = rng.random(n) < 0.05
    joins_during = rng.random(n) < 0.12
    join_month = np.where(joins_during, rng.integers(0, months - 3, n), -1)
    tenure_years = np.minimum(rng.exponential(8.0, n), age0 - 18)
    join_day = np.where(
        joins_during,
        sim.month_start_days[np.maximum(join_month, 0)] + rng.integers(0, 28, n),
        start_day - (tenure_years * 365.25).astype(np.int64) - 1,
    )
    digital = rng.random(n) < 1 / (1 + np.exp(-(2.2 - 0.06 * (age0 - 25))))
    base_logins = np.where(digital, rng.gamma(3.0, 4.0, n), rng.gamma(1.0, 0.4, n)) * activity
    rate_sensitivity = rng.beta(1.6, 4.0, n) * np.array([0.8, 1.2, 1.4])[segment]
    complaint_rate = rng.gamma(2.0, 0.018, n)
    uplift_type = rng.choice(4, n, p=[0.25, 0.35, 0.30, 0.10])

    # -- competitor campaigns: a rate gap (percentage points) per region and month --------------
    gap = np.zeros((months, len(REGIONS)))
    for _ in range(max(2, months // 8)):
        r, m0, length = rng.integers(0, len(REGIONS)), rng.integers(2, months - 2), rng.integers(3, 7)
        gap[m0 : m0 + length, r] += rng.uniform(0.8, 1.8)
    if scenario == "rate_campaign":  # a competitor's aggressive rate offer in one region
        gap[drift_from:, REGIONS.index(drift_region)] += 3.0

    # -- initial products and balances ---------------------------------------------------------
    already = join_month < 0
    initial = np.flatnonzero(already)
    opened_any = join_day + (rng.random(n) * np.maximum(start_day - join_day, 1)).astype(np.int64)
    sim.open_products(initial, P["current_account"], join_day[initial])
    age_mid = (age0 > 28) & (age0 < 62)
    ownership = {
        "savings": np.array([0.32, 0.62, 0.72])[segment],
        "credit_card": np.array([0.35, 0.55, 0.70])[segment],
        "wealth_fund": np.array([0.03, 0.28, 0.62])[segment],
        "personal_loan": np.full(n, 0.12),
        "mortgage": 0.30 * age_mid,
        "insurance": np.full(n, 0.12),
    }
    for product, probability in ownership.items():
        chosen = initial[rng.random(initial.size) < probability[initial]]
        sim.open_products(chosen, P[product], opened_any[chosen])
    td_holders = initial[rng.random(initial.size) < np.array([0.10, 0.30, 0.40])[segment[initial]]]
    td_maturity = start_day + rng.integers(5, 365, td_holders.size)
    sim.open_products(td_holders, P["term_deposit"], td_maturity - 365, term_days=365)

    wealth = np.exp(rng.normal(0.0, 1.15, n))
    deposits = np.where(already, income * np.array([2.5, 5.0, 10.0])[segment] * wealth, 0.0)
    deposits[td_holders] += income[td_holders] * rng.uniform(3, 12, td_holders.size)
    investments = np.where(sim.held(P["wealth_fund"]), income * rng.uniform(4, 30, n) * wealth, 0.0)
    mortgage_balance = np.where(sim.held(P["mortgage"]), income * rng.uniform(30, 90, n), 0.0)
    loan_balance = np.where(sim.held(P["personal_loan"]), income * rng.uniform(1, 5, n), 0.0)

    # -- dynamic state ---------------------------------------------------------------------------
    status = np.where(already, 1, 0)  # 0 not joined, 1 active, 2 draining, 3 closed, 4 silent
    payroll_active = declared_payroll & already
    salary_stop_month = np.full(n, -99)
    not_renewed_month = np.full(n, -99)
    engagement = np.ones(n)
    drain_left = np.zeros(n, dtype=np.int64)
    decided_month = np.full(n, -1)
    decided_mode = np.full(n, "", dtype=object)
    contact_month = np.full(n, -99)
    contact_reached = np.zeros(n, dtype=bool)
    recent_cc_application = np.full(n, -99)
    mortgage_opened_month = np.full(n, -99)

    for m in range(months):
        ms, me = sim.month_start_days[m], sim.month_start_days[m + 1]
        month_len = me - ms

        # joiners open a current account (and sometimes savings) and bring a first deposit
        joiners = np.flatnonzero(join_month == m)
        sim.open_products(joiners, P["current_account"], join_day[joiners])
        savers = joiners[rng.random(joiners.size) < 0.3]
        sim.open_products(savers, P["savings"], join_day[savers])
        status[joiners] = 1
        payroll_active[joiners] = declared_payroll[joiners]
        deposits[joiners] = income[joiners] * rng.uniform(0.3, 1.5, joiners.size)

        present = (status == 1) | (status == 2)
        active = status == 1
        age = (pd.Timestamp(sim.month_starts[m]).year - birth_year).astype(float)

        # engagement drifts; some customers suddenly disengage (a rival's app, a bad experience)
        engagement *= np.exp(rng.normal(-0.005, 0.07, n))
        shock = present & (rng.random(n) < 0.015)
        engagement[shock] *= rng.uniform(0.2, 0.5, shock.sum())
        engagement = np.clip(engagement, 0.02, 2.0)

        # salary switches off (new employer pays elsewhere) or on (customer moves payroll in)
        switch_off = active & payroll_active & (rng.random(n) < 0.010)
        switch_on = active & ~payroll_active & ~declared_payroll & (rng.random(n) < 0.004)
        payroll_active[switch_off] = False
        salary_stop_month[switch_off] = m
        payroll_active[switch_on] = True

        # complaints: filed this month; some resolved after days or weeks, some never
        n_complaints = rng.poisson(complaint_rate * (1 + 0.5 * (status == 2))) * present
        c_rows = np.repeat(np.arange(n), n_complaints)
        c_filed = ms + rng.integers(0, month_len, c_rows.size)
        never = rng.random(c_rows.size) < 0.30
        c_resolved = np.where(never, np.iinfo(np.int64).max, c_filed + rng.integers(2, 90, c_rows.size))
        sim.complaint_customer.append(c_rows)
        sim.complaint_filed.append(c_filed)
        sim.complaint_resolved.append(c_resolved)
        all_c = np.concatenate(sim.complaint_customer)
        all_filed = np.concatenate(sim.complaint_filed)
        all_resolved = np.concatenate(sim.complaint_resolved)
        unresolved = np.bincount(all_c, weights=(all_filed < me) & (all_resolved >= me), minlength=n)
        recent = np.bincount(all_c, weights=(all_filed < me) & (all_filed >= me - 90), minlength=n)

        # term deposits maturing this month: renewed, or released to the current account
        td_maturity = sim.maturity_of(P["term_deposit"])
        maturing = present & (td_maturity >= ms) & (td_maturity < me)
        renew_p = np.clip(0.70 - 0.25 * rate_sensitivity * gap[m, region] - 0.5 * (status == 2), 0.05, 0.95)
        renews = maturing & (rng.random(n) < renew_p)
        lapses = maturing & ~renews
        idx_m = np.flatnonzero(maturing)
        sim.close_products(idx_m, P["term_deposit"], td_maturity[idx_m])
        idx_r = np.flatnonzero(renews)
        sim.open_products(idx_r, P["term_deposit"], td_maturity[idx_r], term_days=365)
        not_renewed_month[lapses] = m

        # the hidden hazard of deciding to leave this month
        products_held = (sim.current_holding >= 0).sum(axis=1)
        tenure_years_now = (ms - join_day) / 365.25
        contact_effect = np.where(
            contact_reached & (m - contact_month <= 3) & (m > contact_month), UPLIFT_EFFECT[uplift_type], 0.0
        )
        w = HAZARD_WEIGHTS
        components = {
            "unresolved_complaints": w["unresolved_complaints"] * np.minimum(unresolved, 3),
            "recent_complaints": w["recent_complaints"] * np.minimum(recent, 3),
            "competitor_gap": w["competitor_gap"] * rate_sensitivity * gap[m, region],
            "salary_stopped": w["salary_stopped"] * ((m - salary_stop_month) <= 6),
            "maturity_not_renewed": w["maturity_not_renewed"] * ((m - not_renewed_month) <= 3),
            "engagement_decline": w["engagement_decline"]
            * np.minimum(np.maximum(-np.log(engagement), 0), 2.5),
            "single_product": w["single_product"] * (products_held <= 1),
            "short_tenure": w["short_tenure"] * (tenure_years_now < 2),
            "extra_products": w["extra_products"] * np.maximum(products_held - 2, 0),
            "contact_effect": w["contact_effect"] * contact_effect,
        }
        logit = w["intercept"] + sum(components.values()) + rng.normal(0, w["noise_sd"], n)
        hazard = 1 / (1 + np.exp(-logit))
        decides = active & (rng.random(n) < hazard)
        decided_month[decides] = m
        drain_left[decides] = rng.choice([1, 2, 3], decides.sum(), p=[0.3, 0.4, 0.3])
        small = (deposits + investments) < 1500
        decided_mode[decides] = np.where(
            rng.random(decides.sum()) < np.where(small[decides], 0.85, 0.6), "closed", "silent"
        )
        status[decides] = 2
        stops_salary = decides & payroll_active
        payroll_active[stops_salary] = False
        salary_stop_month[stops_salary] = m
        hz_rows = np.flatnonzero(present)
        sim.events["hz"].append(
            {"customer": hz_rows, "month": np.full(hz_rows.size, m), "hazard": hazard[hz_rows]}
            | {name: values[hz_rows] for name, values in components.items()}
        )

        draining = status == 2
        present = (status == 1) | (status == 2)
        silent = status == 4
        engagement[draining] *= 0.5

        # monthly flows; the transactions below split these totals
        spend_scale = np.where(present, 1.0, 0.0) + np.where(silent, 0.05, 0.0)
        salary = np.where(payroll_active & present, income * rng.uniform(0.97, 1.03, n), 0.0)
        other_income = np.where(
            ~payroll_active & present & (rng.random(n) < 0.75), income * rng.uniform(0.6, 1.1, n), 0.0
        )
        other_income += np.where(present & (rng.random(n) < 0.2), income * rng.uniform(0.05, 0.3, n), 0.0)
        interest = np.where(deposits > 1000, deposits * 0.015 / 12, 0.0) * (present | silent)
        card = income * rng.uniform(0.30, 0.50, n) * spend_scale * np.where(draining, 0.4, 1.0)
        bills = income * rng.uniform(0.12, 0.22, n) * spend_scale
        cash = income * rng.uniform(0.02, 0.08, n) * spend_scale * np.where(digital, 0.5, 1.5)
        fees = np.where((present | silent) & (rng.random(n) < 0.3), rng.uniform(3, 25, n), 0.0)
        # rate shoppers move part of their savings to the competitor while the gap lasts
        shopping = present & (rate_sensitivity * gap[m, region] > 0.15)
        shop_out = np.where(
            shopping, deposits * np.minimum(0.12 * rate_sensitivity * gap[m, region], 0.3), 0.0
        )
        routine_out = np.where(present & (rng.random(n) < 0.25), income * rng.uniform(0.05, 0.25, n), 0.0)
        drain_share = np.where(draining, rng.uniform(0.85, 1.0, n) / np.maximum(drain_left, 1), 0.0)
        inflow = salary + other_income + interest
        outflow_wanted = card + bills + cash + fees + routine_out
        available = deposits + inflow
        scale = np.where(
            outflow_wanted > 0.9 * available, 0.9 * available / np.maximum(outflow_wanted, 1e-9), 1.0
        )
        card, bills, cash, fees, routine_out = (x * scale for x in (card, bills, cash, fees, routine_out))
        deposits = available - card - bills - cash - fees - routine_out
        shop_out = np.minimum(shop_out, 0.5 * deposits)
        drain_deposits = deposits * drain_share
        drain_investments = investments * drain_share
        deposits = deposits - shop_out - drain_deposits
        investments = np.maximum(investments * (1 + rng.normal(0.004, 0.02, n)) - drain_investments, 0.0)
        external = routine_out + shop_out + drain_deposits + drain_investments
        mortgage_balance = np.maximum(mortgage_balance * 0.996 - 0.002 * income * (mortgage_balance > 0), 0)
        loan_balance = np.maximum(loan_balance - 0.04 * income * (loan_balance > 0), 0)

        # transactions: counts per customer and category, amounts splitting the month's totals
        live = present | silent
        act = activity * np.where(draining, 0.5, 1.0) * np.where(silent, 0.15, 1.0) * live
        categories = {
            "salary": (salary > 0).astype(np.int64),
            "transfer_in": np.where(other_income > 0, 1 + rng.poisson(0.3, n), 0),
            "interest": (interest > 0).astype(np.int64),
            "card_spend": np.where(card > 0, rng.poisson(6.0 * act), 0),
            "bill_pay": np.where(bills > 0, 1 + rng.poisson(1.2 * act), 0),
            "cash": np.where(cash > 0, rng.poisson(0.9 * act * np.where(digital, 0.6, 1.6)), 0),
            "fee": (fees > 0).astype(np.int64),
            "transfer_out_external": np.where(external > 1, 1 + rng.poisson(0.4 + 1.5 * draining), 0),
        }
        totals = {
            "salary": salary,
            "transfer_in": other_income,
            "interest": interest,
            "card_spend": card,
            "bill_pay": bills,
            "cash": cash,
            "fee": fees,
            "transfer_out_external": external,
        }
        everyone = np.arange(n)
        for category, counts in categories.items():
            rows, amounts = _split_amounts(rng, everyone, counts, totals[category])
            if category == "salary":
                seconds = (
                    np.clip(24 + rng.integers(-2, 3, rows.size), 0, month_len - 1) * 86400
                ) + rng.integers(0, 86400, rows.size)
            else:
                seconds = rng.integers(0, month_len * 86400, rows.size)
            channel = _transaction_channel(rng, category, digital[rows])
            sim.events["tx"].append(
                {
                    "customer": rows,
                    "ts": (ms * 86400 + seconds),
                    "amount": np.round(amounts, 2),
                    "category": _codes(category, TRANSACTION_CATEGORIES, rows.size),
                    "channel": _codes(channel, TRANSACTION_CHANNELS),
                }
            )
        # a customer cannot act before joining: drop joiners' events before their join day
        # (their month-start flows are small and cleaned by the filter in _assemble)

        # interactions: logins, service calls, branch visits, complaints, applications
        login_rate = base_logins * engagement * live * np.where(silent, 0.05, 1.0)
        if scenario == "app_outage" and m >= drift_from:  # the app mostly down: few logins get through
            login_rate = login_rate * 0.1
        _emit_interactions(sim, m, "login", rng.poisson(login_rate), digital)
        _emit_interactions(
            sim, m, "service_call", rng.poisson(0.08 * present + 0.3 * (recent > 0) * present), digital
        )
        _emit_interactions(
            sim, m, "branch_visit", rng.poisson(0.25 * present * np.where(digital, 0.3, 1.5)), digital
        )
        sim.events["ix"].append(
            {
                "customer": c_rows,
                "ts": c_filed * 86400 + rng.integers(0, 86400, c_rows.size),
                "type": _codes("complaint", INTERACTION_TYPES, c_rows.size),
                "channel": _codes(
                    rng.choice(np.array(["phone", "branch", "online", "mobile"], dtype=object), c_rows.size),
                    INTERACTION_CHANNELS,
                ),
                "category": _codes(
                    rng.choice(np.array(COMPLAINT_CATEGORIES, dtype=object), c_rows.size),
                    INTERACTION_CATEGORIES,
                ),
                "resolved": c_resolved,
            }
        )

        # next-product adoption, driven by needs and life stage (never while leaving)
        can_adopt = status == 1
        day_in_month = ms + rng.integers(0, month_len, n)
        adopt = {
            "savings": 0.003 + 0.012 * payroll_active * (deposits > 2.5 * income),
            "term_deposit": 0.002 + 0.008 * (deposits > 6 * income) + 0.03 * (lapses & (rng.random(n) < 0.3)),
            "wealth_fund": (segment > 0) * (0.004 + 0.06 * lapses + 0.004 * (deposits > 8 * income)),
            "insurance": 0.0015 + 0.05 * (m - mortgage_opened_month <= 2),
        }
        for product, probability in adopt.items():
            takers = np.flatnonzero(can_adopt & ~sim.held(P[product]) & (rng.random(n) < probability))
            term = 365 if product == "term_deposit" else 0
            sim.open_products(takers, P[product], day_in_month[takers], term_days=term)
            if product in ("term_deposit", "wealth_fund"):
                moved = deposits[takers] * 0.4
                deposits[takers] -= moved
                if product == "wealth_fund":
                    investments[takers] += moved
        # credit products start with an application (the signal of a credit need)
        applications = {
            "credit_card": (0.004 + 0.012 * (age < 35) + 0.006 * (card > 0.45 * income))
            * ~sim.held(P["credit_card"]),
            "personal_loan": (0.003 + 0.01 * (m - recent_cc_application <= 2))
            * ~sim.held(P["personal_loan"]),
            "mortgage": 0.003 * ((age > 27) & (age < 46) & (income > 2500)) * ~sim.held(P["mortgage"]),
        }
        for product, probability in applications.items():
            applicants = np.flatnonzero(can_adopt & (rng.random(n) < probability))
            apply_day = ms + rng.integers(0, month_len, applicants.size)
            sim.events["ix"].append(
                {
                    "customer": applicants,
                    "ts": apply_day * 86400 + rng.integers(0, 86400, applicants.size),
                    "type": _codes("product_application", INTERACTION_TYPES, applicants.size),
                    "channel": _codes(
                        np.where(digital[applicants], "mobile", "branch"), INTERACTION_CHANNELS
                    ),
                    "category": _codes(product, INTERACTION_CATEGORIES, applicants.size),
                    "resolved": np.full(applicants.size, np.iinfo(np.int64).max),
                }
            )
            if product == "credit_card":
                recent_cc_application[applicants] = m
            approval_rate = {"credit_card": 0.7, "personal_loan": 0.6, "mortgage": 0.5}[product]
            is_approved = rng.random(applicants.size) < approval_rate
            approved = applicants[is_approved]
            opened = apply_day[is_approved] + rng.integers(3, 25, approved.size)
            sim.open_products(approved, P[product], opened)
            if product == "mortgage":
                mortgage_opened_month[approved] = m
                mortgage_balance[approved] = income[approved] * rng.uniform(40, 90, approved.size)
            if product == "personal_loan":
                loan_balance[approved] = income[approved] * rng.uniform(1, 5, approved.size)

        # retention contacts by the bank's own (imperfect) targeting, with a randomised control group
        eligible = np.flatnonzero(active & ~do_not_contact & (m - contact_month >= 3))
        targeting = logit[eligible] + rng.normal(0, 1.2, eligible.size)
        quota = int(0.02 * active.sum())
        selected = eligible[np.argsort(-targeting)[:quota]] if quota else eligible[:0]
        control = rng.random(selected.size) < 0.10
        reached = ~control & (rng.random(selected.size) < 0.7)
        accept_p = np.array([0.55, 0.35, 0.08, 0.15])[uplift_type[selected]]
        accepted = reached & (rng.random(selected.size) < accept_p)
        outcome = np.where(
            control, "control", np.where(~reached, "not_reached", np.where(accepted, "accepted", "declined"))
        )
        contact_month[selected] = m
        contact_reached[selected] = reached
        sim.events["ct"].append(
            {
                "customer": selected,
                "ts": (ms + rng.integers(0, month_len, selected.size)) * 86400
                + rng.integers(8 * 3600, 18 * 3600, selected.size),
                "campaign": np.full(selected.size, f"RET-{sim.month_starts[m]:%Y-%m}", dtype=object),
                "channel": rng.choice(
                    np.array(["phone", "branch", "email", "sms"], dtype=object),
                    selected.size,
                    p=[0.5, 0.2, 0.2, 0.1],
                ),
                "offer": rng.choice(
                    np.array(["rate_bonus", "fee_waiver", "service_recovery", "loyalty_gift"], dtype=object),
                    selected.size,
                ),
                "control": control,
                "outcome": outcome.astype(object),
            }
        )

        # leaving customers finish draining: close every product, or keep an empty account
        drain_left[draining] -= 1
        finished = draining & (drain_left <= 0)
        closes = finished & (decided_mode == "closed")
        close_day = ms + rng.integers(month_len // 2, month_len, n)
        for product in range(len(PRODUCTS)):
            idx = np.flatnonzero(closes)
            sim.close_products(idx, product, close_day[idx])
        mortgage_balance[closes] = loan_balance[closes] = 0.0
        # the last few pounds leave with the closing transfer
        leftover = np.where(closes, deposits + investments, 0.0)
        rows = np.flatnonzero(leftover > 0.5)
        sim.events["tx"].append(
            {
                "customer": rows,
                "ts": close_day[rows] * 86400 - rng.integers(3600, 86400, rows.size),
                "amount": np.round(leftover[rows], 2),
                "category": _codes("transfer_out_external", TRANSACTION_CATEGORIES, rows.size),
                "channel": _codes(np.where(digital[rows], "online", "branch"), TRANSACTION_CHANNELS),
            }
        )
        deposits[closes] = investments[closes] = 0.0
        status[closes] = 3
        status[finished & (decided_mode == "silent")] = 4

        # month-end balances for everyone still holding an account
        has_account = (status == 1) | (status == 2) | (status == 4)
        rows = np.flatnonzero(has_account)
        sim.events["bal"].append(
            {
                "customer": rows,
                "month_end": np.full(rows.size, me - 1),
                "deposits": np.round(np.maximum(deposits[rows], 0), 2),
                "investments": np.round(investments[rows], 2),
                "loans": np.round(mortgage_balance[rows] + loan_balance[rows], 2),
            }
        )

    customer_ids = np.arange(100_001, 100_001 + n)
    tables = _assemble(
        sim,
        customer_ids,
        {
            "join_date": join_day,
            "birth_year": birth_year,
            "gender": gender,
            "segment": np.array(["mass", "affluent", "private"])[segment],
            "region": np.array(REGIONS)[region],
            "branch_id": np.char.add("BR", np.char.zfill((branch + 1).astype(str), 3)),
            "income_band": np.array(INCOME_BANDS)[income_band],
            "is_payroll": declared_payroll,
            "do_not_contact": do_not_contact,
        },
        end_day,
    )
    truth_customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "uplift_type": pd.Categorical(np.array(UPLIFT_TYPES)[uplift_type], categories=UPLIFT_TYPES),
            "contact_effect_logit": UPLIFT_EFFECT[uplift_type],
            "rate_sensitivity": rate_sensitivity,
            "digital": digital,
            "decided_to_leave": pd.to_datetime(
                np.where(
                    decided_month >= 0,
                    sim.month_starts[np.maximum(decided_month, 0)].asi8,
                    np.iinfo(np.int64).min,
                )
            ),
            "leave_mode": pd.Categorical(
                np.where(decided_month >= 0, decided_mode, None), categories=["closed", "silent"]
            ),
        }
    )
    hz = {key: np.concatenate([e[key] for e in sim.events["hz"]]) for key in sim.events["hz"][0]}
    truth_hazard = pd.DataFrame(
        {"customer_id": customer_ids[hz.pop("customer")], "month_start": sim.month_starts[hz.pop("month")]}
        | hz
    )
    truth_hazard["dominant_driver"] = pd.Categorical(
        np.array([k for k in HAZARD_WEIGHTS if k not in ("intercept", "noise_sd")])[
            truth_hazard[[k for k in HAZARD_WEIGHTS if k not in ("intercept", "noise_sd")]]
            .to_numpy()
            .argmax(axis=1)
        ]
    )
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "customers": customers,
        "months": months,
        "seed": seed,
        "start": str(start.date()),
        "end": str(sim.month_starts[-1].date() - pd.Timedelta(days=1)),
        "activity": activity,
        "rows": {name: len(frame) for name, frame in tables.items()},
        "scenario": None
        if scenario is None
        else {
            "name": scenario,
            "from": str(sim.month_starts[drift_from].date()),
            "region": drift_region if scenario == "rate_campaign" else None,
            "description": DRIFT_SCENARIOS[scenario],
        },
        "competitor_gap_by_region": {
            REGIONS[r]: [round(float(g), 3) for g in gap[:, r]] for r in range(len(REGIONS))
        },
    }
    if scenario == "channel_recode":  # a core-system upgrade codes mobile-app payments as branch ones
        transactions = tables["transactions"]
        recoded = (transactions["ts"] >= sim.month_starts[drift_from]) & (transactions["channel"] == "mobile")
        transactions.loc[recoded, "channel"] = "branch"
    return GeneratedBank(tables, truth_customers, truth_hazard, manifest)


def _transaction_channel(rng: np.random.Generator, category: str, digital: np.ndarray) -> np.ndarray:
    size = digital.size
    if category == "card_spend":
        return np.full(size, "card", dtype=object)
    if category == "cash":
        return np.where(rng.random(size) < 0.9, "atm", "branch").astype(object)
    if category in ("salary", "interest", "fee", "transfer_in"):
        return np.full(size, "online", dtype=object)
    digital_channel = np.where(rng.random(size) < 0.7, "mobile", "online")
    return np.where(digital | (rng.random(size) < 0.3), digital_channel, "branch").astype(object)


def _emit_interactions(sim: _Simulation, m: int, kind: str, counts: np.ndarray, digital: np.ndarray) -> None:
    rng = sim.rng
    ms, me = sim.month_start_days[m], sim.month_start_days[m + 1]
    rows = np.repeat(np.arange(sim.n), counts)
    if kind == "login":
        channel = np.where(rng.random(rows.size) < 0.75, "mobile", "online")
    elif kind == "service_call":
        channel = np.full(rows.size, "phone")
    else:
        channel = np.full(rows.size, "branch")
    sim.events["ix"].append(
        {
            "customer": rows,
            "ts": ms * 86400 + rng.integers(0, (me - ms) * 86400, rows.size),
            "type": _codes(kind, INTERACTION_TYPES, rows.size),
            "channel": _codes(channel, INTERACTION_CHANNELS),
            "category": np.full(rows.size, -1, dtype=np.int8),
            "resolved": np.full(rows.size, np.iinfo(np.int64).max),
        }
    )


def _concat(events: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([e[key] for e in events]) for key in events[0]}


def _seconds_to_ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(seconds.astype("datetime64[s]").astype("datetime64[ns]"))


def _assemble(
    sim: _Simulation, ids: np.ndarray, attributes: dict[str, np.ndarray], end_day: int
) -> dict[str, pd.DataFrame]:
    join_day = attributes["join_date"]
    customers = pd.DataFrame({"customer_id": ids} | attributes)
    customers["join_date"] = join_day.astype("datetime64[D]").astype("datetime64[ns]")

    h = {key: np.concatenate(values) for key, values in sim.holding_rows.items()}
    closed = sim.holding_closed[: sim.holding_count]
    holdings = pd.DataFrame(
        {
            "customer_id": ids[h["customer"]],
            "product": np.array(PRODUCTS, dtype=object)[h["product"]],
            "opened": h["opened"].astype("datetime64[D]").astype("datetime64[ns]"),
            "closed": pd.to_datetime(
                np.where(closed >= 0, closed, np.iinfo(np.int64).min).astype("datetime64[D]")
            ),
            "maturity_date": pd.to_datetime(
                np.where(h["maturity"] >= 0, h["maturity"], np.iinfo(np.int64).min).astype("datetime64[D]")
            ),
        }
    )
    # a deposit renewed at maturity opens on the old one's maturity date; products opened after the
    # data's end (application approved in the last days) are not yet on the books
    holdings = holdings[holdings["opened"] < pd.Timestamp(end_day, unit="D")]
    holdings.loc[holdings["closed"] >= pd.Timestamp(end_day, unit="D"), "closed"] = pd.NaT
    holdings = holdings.sort_values(["customer_id", "opened", "product"], kind="stable").reset_index(
        drop=True
    )
    holdings.insert(0, "holding_id", np.arange(1, len(holdings) + 1))

    b = _concat(sim.events["bal"])
    balances = pd.DataFrame(
        {
            "customer_id": ids[b["customer"]],
            "month_end": b["month_end"].astype("datetime64[D]").astype("datetime64[ns]"),
            "deposits": b["deposits"],
            "investments": b["investments"],
            "loans": b["loans"],
        }
    ).sort_values(["customer_id", "month_end"], kind="stable", ignore_index=True)

    t = _concat(sim.events["tx"])
    joined_before = t["ts"] >= join_day[t["customer"]] * 86400
    keep = joined_before & (t["amount"] > 0) & (t["ts"] < end_day * 86400)
    transactions = pd.DataFrame(
        {
            "customer_id": ids[t["customer"][keep]],
            "ts": _seconds_to_ts(t["ts"][keep]),
            "amount": t["amount"][keep],
            "category": pd.Categorical.from_codes(t["category"][keep], TRANSACTION_CATEGORIES),
            "channel": pd.Categorical.from_codes(t["channel"][keep], TRANSACTION_CHANNELS),
            "direction": pd.Categorical.from_codes(
                np.array([DIRECTIONS.index(CATEGORY_DIRECTION[c]) for c in TRANSACTION_CATEGORIES])[
                    t["category"][keep]
                ],
                DIRECTIONS,
            ),
        }
    )
    transactions = transactions.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    transactions.insert(0, "transaction_id", np.arange(1, len(transactions) + 1))
    transactions = transactions[SCHEMAS["transactions"].column_names]

    x = _concat(sim.events["ix"])
    keep = (x["ts"] >= join_day[x["customer"]] * 86400) & (x["ts"] < end_day * 86400)
    resolved = np.where((x["resolved"] < end_day) & keep, x["resolved"], -1)
    interactions = pd.DataFrame(
        {
            "customer_id": ids[x["customer"][keep]],
            "ts": _seconds_to_ts(x["ts"][keep]),
            "type": pd.Categorical.from_codes(x["type"][keep], INTERACTION_TYPES),
            "channel": pd.Categorical.from_codes(x["channel"][keep], INTERACTION_CHANNELS),
            "category": pd.Categorical.from_codes(x["category"][keep], INTERACTION_CATEGORIES),
            "resolved_at": pd.to_datetime(
                np.where(resolved[keep] >= 0, resolved[keep] * 86400 + 43200, np.iinfo(np.int64).min).astype(
                    "datetime64[s]"
                )
            ),
        }
    )
    late_filing = interactions["resolved_at"] <= interactions["ts"]
    interactions.loc[late_filing, "resolved_at"] = interactions.loc[late_filing, "ts"] + pd.Timedelta(hours=6)
    interactions = interactions.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    interactions.insert(0, "interaction_id", np.arange(1, len(interactions) + 1))

    c = _concat(sim.events["ct"])
    contacts = pd.DataFrame(
        {
            "customer_id": ids[c["customer"]],
            "ts": _seconds_to_ts(c["ts"]),
            "campaign": c["campaign"],
            "channel": c["channel"],
            "offer": np.where(c["control"], "none", c["offer"]).astype(object),
            "control_group": c["control"],
            "outcome": c["outcome"],
        }
    ).sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    contacts.insert(0, "contact_id", np.arange(1, len(contacts) + 1))

    tables = {
        "customers": customers,
        "holdings": holdings,
        "balances": balances,
        "transactions": transactions,
        "interactions": interactions,
        "contacts": contacts,
    }
    for frame in tables.values():
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].astype("datetime64[ns]")
    return tables


# Parquet layout chosen so the committed sample stays small: sorted ids and times delta-encode well.
_DELTA_COLUMNS = {"transaction_id", "interaction_id", "holding_id", "contact_id", "customer_id", "ts"}


def write_bank(bank: GeneratedBank, out_dir: str | Path) -> Path:
    """Write the tables as Parquet, and the ground truth under `truth/`, into `out_dir`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for name, frame in bank.tables.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        delta = [c for c in frame.columns if c in _DELTA_COLUMNS]
        pq.write_table(
            table,
            out / f"{name}.parquet",
            compression="zstd",
            compression_level=9,
            use_dictionary=[c for c in frame.columns if c not in _DELTA_COLUMNS],
            column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
            use_byte_stream_split=[c for c in frame.columns if frame[c].dtype == np.float64],
        )
    bank.truth_customers.to_parquet(out / "truth" / "customers.parquet", index=False)
    bank.truth_hazard.to_parquet(out / "truth" / "hazard.parquet", index=False, compression="zstd")
    drivers = {
        "hazard_weights": HAZARD_WEIGHTS,
        "uplift_effect_logit": dict(zip(UPLIFT_TYPES, UPLIFT_EFFECT.tolist(), strict=True)),
    }
    (out / "truth" / "drivers.json").write_text(json.dumps(drivers, indent=2) + "\n")
    (out / "manifest.json").write_text(json.dumps(bank.manifest, indent=2) + "\n")
    return out
