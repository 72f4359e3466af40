"""Who the bank's customers are: attributes drawn once, their products and money at the start.

Some hidden traits show in what the bank can observe, with noise: rate-sensitive customers hold
savings and term deposits more often; how a customer responds to a retention contact (the
uplift type) leans on tenure, segment, digital use and age; complaint and incident rates differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.bank.state import Holdings, P, days
from features.schema import REGIONS

UPLIFT_TYPES = ("persuadable", "sure_thing", "lost_cause", "sleeping_dog")


@dataclass
class Population:
    """Static attributes, one entry per customer (arrays of length n)."""

    n: int
    segment: np.ndarray  # 0 mass, 1 affluent, 2 private
    income: np.ndarray
    birth_year: np.ndarray
    gender: np.ndarray
    region: np.ndarray
    branch: np.ndarray
    income_band: np.ndarray
    declared_payroll: np.ndarray
    do_not_contact: np.ndarray
    join_month: np.ndarray  # -1: joined before the simulation
    join_day: np.ndarray
    digital: np.ndarray
    base_logins: np.ndarray
    rate_sensitivity: np.ndarray
    complaint_rate: np.ndarray
    incident_rate: np.ndarray
    retirement_age: np.ndarray
    uplift_type: np.ndarray  # index into UPLIFT_TYPES

    def age(self, year: int) -> np.ndarray:
        return (year - self.birth_year).astype(float)


TYPE_NOISE = 0.5  # scale of the Gumbel noise on the uplift-type scores


def uplift_type_scores(tenure_years, segment, digital, age) -> np.ndarray:
    """Each customer's score for persuadable, sure thing, lost cause and sleeping dog, shape
    (customers, 4): long tenure and branch customers persuadable; digital-only young customers with
    short tenure more often react badly to being called."""
    tenure_years, digital, age = (np.asarray(a, dtype=float) for a in (tenure_years, digital, age))
    persuadable = 0.4 * np.log1p(tenure_years) + 0.5 * (np.asarray(segment) > 0) - 0.4 * digital
    sleeping = 1.2 * digital - 0.25 * np.log1p(tenure_years) + 0.03 * np.maximum(35 - age, 0) - 0.9
    lost = 0.3 * (tenure_years < 2) + 0.2
    return np.stack([persuadable, np.full(len(persuadable), 0.55), lost, sleeping], axis=1)


def uplift_type_probabilities(tenure_years, segment, digital, age) -> np.ndarray:
    """The chance of each uplift type given the traits it leans on, shape (customers, 4): the type
    is the highest score after Gumbel noise of scale TYPE_NOISE, so these are the scores' softmax
    at that temperature. For benchmarks: what the best possible model of who responds could know."""
    scores = uplift_type_scores(tenure_years, segment, digital, age) / TYPE_NOISE
    odds = np.exp(scores - scores.max(axis=1, keepdims=True))
    return odds / odds.sum(axis=1, keepdims=True)


def _uplift_types(rng: np.random.Generator, tenure_years, segment, digital, age) -> np.ndarray:
    """Persuadable, sure thing, lost cause or sleeping dog: drawn from scores that lean on what the
    bank sees (`uplift_type_scores`), so a model can learn them, noisily."""
    logits = uplift_type_scores(tenure_years, segment, digital, age)
    logits = logits + rng.gumbel(0, TYPE_NOISE, logits.shape)
    return logits.argmax(axis=1)


def draw_population(
    rng: np.random.Generator,
    n: int,
    months: int,
    start: pd.Timestamp,
    month_start_days: np.ndarray,
    activity: float,
) -> Population:
    """Draw every static attribute."""
    start_day = month_start_days[0]
    segment = rng.choice(3, n, p=[0.78, 0.18, 0.04])
    income = np.exp(rng.normal(np.log([2300.0, 5500.0, 14000.0])[segment], 0.35))
    age0 = np.clip(rng.normal(46, 16, n), 18, 90)
    region = rng.choice(len(REGIONS), n, p=[0.26, 0.16, 0.16, 0.14, 0.14, 0.14])
    joins_during = rng.random(n) < 0.12
    join_month = np.where(joins_during, rng.integers(0, months, n), -1)
    tenure_years = np.minimum(rng.exponential(8.0, n), age0 - 18)
    join_day = np.where(
        joins_during,
        month_start_days[np.maximum(join_month, 0)] + rng.integers(0, 28, n),
        start_day - (tenure_years * 365.25).astype(np.int64) - 1,
    )
    digital = rng.random(n) < 1 / (1 + np.exp(-(2.2 - 0.06 * (age0 - 25))))
    return Population(
        n=n,
        segment=segment,
        income=income,
        birth_year=(start.year - age0).astype(np.int64),
        gender=rng.choice(np.array(["F", "M", "U"]), n, p=[0.50, 0.49, 0.01]),
        region=region,
        branch=region * 5 + rng.integers(0, 5, n),
        income_band=np.searchsorted(np.array([2000.0, 4000.0, 8000.0, 15000.0]), income, side="right"),
        declared_payroll=rng.random(n) < np.array([0.58, 0.66, 0.50])[segment],
        do_not_contact=rng.random(n) < 0.05,
        join_month=join_month,
        join_day=join_day,
        digital=digital,
        base_logins=np.where(digital, rng.gamma(3.0, 4.0, n), rng.gamma(1.0, 0.4, n)) * activity,
        rate_sensitivity=rng.beta(1.6, 4.0, n) * np.array([0.8, 1.2, 1.4])[segment],
        complaint_rate=rng.gamma(2.0, 0.018, n),
        incident_rate=rng.gamma(1.5, 0.012, n) * np.where(digital, 1.3, 0.8),
        retirement_age=rng.integers(60, 68, n),
        uplift_type=_uplift_types(rng, np.where(joins_during, 0.0, tenure_years), segment, digital, age0),
    )


def open_initial_products(
    rng: np.random.Generator, pop: Population, holdings: Holdings, start_day: int
) -> dict[str, np.ndarray]:
    """Products held at the start and the money in them; returns the balances by kind."""
    n, segment, income = pop.n, pop.segment, pop.income
    already = pop.join_month < 0
    initial = np.flatnonzero(already)
    opened_any = pop.join_day + (rng.random(n) * np.maximum(start_day - pop.join_day, 1)).astype(np.int64)
    holdings.open(initial, P["current_account"], pop.join_day[initial])
    age0 = pop.age(pd.Timestamp(start_day, unit="D").year)
    age_mid = (age0 > 28) & (age0 < 62)
    saver = 0.6 + 1.6 * pop.rate_sensitivity  # rate-sensitive customers keep savings products
    ownership = {
        "savings": np.array([0.32, 0.62, 0.72])[segment] * saver,
        "credit_card": np.array([0.35, 0.55, 0.70])[segment],
        "wealth_fund": np.array([0.03, 0.28, 0.62])[segment],
        "personal_loan": np.full(n, 0.12),
        "mortgage": 0.30 * age_mid,
        "insurance": np.full(n, 0.12),
    }
    for product, probability in ownership.items():
        chosen = initial[rng.random(initial.size) < probability[initial]]
        holdings.open(chosen, P[product], opened_any[chosen])
    td_share = np.array([0.10, 0.30, 0.40])[segment[initial]] * saver[initial]
    td_holders = initial[rng.random(initial.size) < td_share]
    td_maturity = start_day + rng.integers(5, 365, td_holders.size)
    holdings.open(td_holders, P["term_deposit"], td_maturity - 365, term_days=365)

    wealth = np.exp(rng.normal(0.0, 1.15, n))
    deposits = np.where(already, income * np.array([2.5, 5.0, 10.0])[segment] * wealth, 0.0)
    deposits[td_holders] += income[td_holders] * rng.uniform(3, 12, td_holders.size)
    return {
        "deposits": deposits,
        "investments": np.where(
            holdings.held(P["wealth_fund"]), income * rng.uniform(4, 30, n) * wealth, 0.0
        ),
        "mortgage": np.where(holdings.held(P["mortgage"]), income * rng.uniform(30, 90, n), 0.0),
        "loan": np.where(holdings.held(P["personal_loan"]), income * rng.uniform(1, 5, n), 0.0),
    }


def competitor_gaps(rng: np.random.Generator, months: int, regions: int) -> np.ndarray:
    """Competitor rate gap (percentage points) per month and region: campaigns of 3-6 months."""
    gap = np.zeros((months, regions))
    for _ in range(max(2, months // 8)):
        r, m0, length = rng.integers(0, regions), rng.integers(2, max(3, months - 2)), rng.integers(3, 7)
        gap[m0 : m0 + length, r] += rng.uniform(0.8, 1.8)
    return gap + rng.normal(0.0, 0.05, gap.shape)  # the market never stands quite still


__all__ = [
    "UPLIFT_TYPES",
    "Population",
    "competitor_gaps",
    "days",
    "draw_population",
    "open_initial_products",
]
