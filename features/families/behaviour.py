"""Feature families of behaviour and relationship: who the customer is, how money and activity
move, what they hold, how the bank has contacted them. Each is a pure, vectorised function of the
point-in-time view."""

from __future__ import annotations

import numpy as np

from features.settings import FeatureConfig
from features.view import PointInTimeView


def profile_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Tenure, age, segment, region, income band and declared payroll."""
    c = view.customers
    return {
        "tenure_days": ((view.as_of - c["join_date"]).dt.days).to_numpy(),
        "age": (view.as_of.year - c["birth_year"]).to_numpy(),
        "segment": c["segment"].to_numpy(),
        "region": c["region"].to_numpy(),
        "income_band": c["income_band"].to_numpy(),
        "declared_payroll": c["is_payroll"].to_numpy().astype(np.int64),
    }


def rfm_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Recency, frequency and money in and out over each window."""
    t, n = view.transactions, view.n
    amount = t.columns["amount"]
    incoming = t.columns["direction"] == "in"
    out: dict[str, np.ndarray] = {}
    for w in config.windows_days:
        inside = t.age_days <= w
        out[f"txn_count_{w}d"] = t.count(n, inside)
        out[f"inflow_{w}d"] = t.total(n, amount, inside & incoming)
        out[f"outflow_{w}d"] = t.total(n, amount, inside & ~incoming)
    out["days_since_last_txn"] = t.days_since_last(n)
    return out


def balance_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Month-end levels, 1/3/6-month change, 6-month slope and drawdown from the 6-month peak."""
    assets = view.assets
    now = assets[:, 0]
    out = {
        "assets_latest": now,
        "deposits_latest": view.deposits[:, 0],
        "investments_latest": view.investments[:, 0],
        "loans_latest": view.loans[:, 0],
    }
    for months in (1, 3, 6):
        then = assets[:, months]
        out[f"assets_change_{months}m"] = (now - then) / np.maximum(then, 100.0)
    recent = assets[:, :6][:, ::-1]  # oldest first
    x = np.arange(6, dtype=float)
    observed = ~np.isnan(recent)
    counts = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_mean = np.where(observed, x, 0).sum(axis=1) / counts
        y_mean = np.nansum(recent, axis=1) / counts
        dx = np.where(observed, x - x_mean[:, None], 0.0)
        dy = np.where(observed, recent - y_mean[:, None], 0.0)
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
        out["assets_slope_6m"] = np.where(counts >= 3, slope / np.maximum(y_mean, 100.0), np.nan)
        peak = np.nanmax(np.where(observed.any(axis=1)[:, None], recent, 0.0), axis=1)
        out["assets_drawdown_6m"] = np.where(peak > 0, 1 - now / np.maximum(peak, 1e-9), np.nan)
    return out


def outflow_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """External transfers out: amounts, share of all outflows, large single transfers, trend."""
    t, n = view.transactions, view.n
    amount = t.columns["amount"]
    external = t.columns["category"] == "transfer_out_external"
    outgoing = t.columns["direction"] == "out"
    last_30, last_90 = t.age_days <= 30, t.age_days <= 90
    prior_90 = (t.age_days > 30) & (t.age_days <= 120)
    external_90 = t.total(n, amount, external & last_90)
    all_out_90 = t.total(n, amount, outgoing & last_90)
    observed = np.isfinite(view.assets[:, :6])
    reference_assets = np.nansum(view.assets[:, :6], axis=1) / np.maximum(observed.sum(axis=1), 1)
    large = (
        external & last_90 & (amount > config.large_outflow_share * np.maximum(reference_assets[t.pos], 1.0))
    )
    external_30 = t.total(n, amount, external & last_30)
    external_prior = t.total(n, amount, external & prior_90)
    return {
        "external_out_30d": external_30,
        "external_out_90d": external_90,
        "external_out_share_90d": np.divide(external_90, all_out_90, out=np.zeros(n), where=all_out_90 > 0),
        "large_outflows_90d": t.count(n, large),
        "external_out_trend": np.log((external_30 + 100.0) / (external_prior / 3.0 + 100.0)),
    }


def salary_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Salary payments received, and whether they stopped."""
    t, n = view.transactions, view.n
    salary = t.columns["category"] == "salary"
    count_180 = t.count(n, salary & (t.age_days <= 180))
    recent = t.count(n, salary & (t.age_days <= config.salary_gap_days))
    return {
        "salary_count_180d": count_180,
        "salary_amount_90d": t.total(n, t.columns["amount"], salary & (t.age_days <= 90)),
        "days_since_last_salary": t.days_since_last(n, salary),
        "salary_stopped": ((count_180 > 0) & (recent == 0)).astype(np.int64),
    }


def engagement_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Digital logins, their trend, and the digital share of transactions."""
    i, t, n = view.interactions, view.transactions, view.n
    login = i.columns["type"] == "login"
    logins_30 = i.count(n, login & (i.age_days <= 30))
    logins_prior = i.count(n, login & (i.age_days > 30) & (i.age_days <= 120))
    last_90 = t.age_days <= 90
    digital = t.columns["channel"].isin(["mobile", "online"])
    txn_90 = t.count(n, last_90)
    return {
        "logins_30d": logins_30,
        "logins_90d": i.count(n, login & (i.age_days <= 90)),
        "login_trend": (logins_30 + 1.0) / (logins_prior / 3.0 + 1.0),
        "days_since_last_login": i.days_since_last(n, login),
        "digital_txn_share_90d": np.divide(
            t.count(n, last_90 & digital), txn_90, out=np.zeros(n), where=txn_90 > 0
        ),
    }


def product_features(
    view: PointInTimeView, config: FeatureConfig, products: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Products held at as-of, and products opened and closed in the last 180 days."""
    h, n = view.holdings, view.n
    pos = h["pos"].to_numpy()
    is_open = h["closed"].isna().to_numpy()
    days_open = ((view.as_of - h["opened"]).dt.days).to_numpy()
    days_closed = ((view.as_of - h["closed"]).dt.days).to_numpy()
    product = h["product"].to_numpy()
    out: dict[str, np.ndarray] = {}
    held_any = np.zeros((n, len(products)), dtype=bool)
    for k, code in enumerate(products):
        held_any[:, k] = np.bincount(pos[is_open & (product == code)], minlength=n) > 0
    out["product_count"] = held_any.sum(axis=1)
    for k, code in enumerate(products):
        out[f"has_{code}"] = held_any[:, k].astype(np.int64)
    out["products_opened_180d"] = np.bincount(pos[days_open <= 180], minlength=n)
    out["products_closed_180d"] = np.bincount(pos[~is_open & (days_closed <= 180)], minlength=n)
    return out


def contact_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Recency and frequency of retention contacts actually made (control group excluded), and
    how the customer answered their offers."""
    c, n = view.contacts, view.n
    made = ~c.columns["control_group"].astype(bool)
    last_age = c.days_since_last(n, made)
    is_last = made & (c.age_days == last_age[c.pos])
    outcome = c.columns["outcome"]
    accepted = np.zeros(n, dtype=np.int64)
    accepted[c.pos[is_last & (outcome == "accepted")]] = 1
    return {
        "contacts_90d": c.count(n, made & (c.age_days <= 90)),
        "contacts_365d": c.count(n, made),
        "days_since_last_contact": last_age,
        "last_contact_accepted": accepted,
        # what the customer answered: a declined offer is not the same as no contact or no answer
        "offers_accepted_365d": c.count(n, made & (outcome == "accepted")),
        "offers_declined_365d": c.count(n, made & (outcome == "declined")),
    }
