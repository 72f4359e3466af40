"""Feature families of the causes of churn a bank can act on or must know about: service failures
(complaints, fee disputes, incidents), competition (rates in the customer's region, deposits
maturing), needs (applications) and life events (a move, retirement, hardship, a death). Each is
a pure, vectorised function of the point-in-time view."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import RECENCY_CAP_DAYS
from features.schema import FEE_COMPLAINT
from features.settings import FeatureConfig
from features.view import PointInTimeView


def _complaints(view: PointInTimeView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(is a complaint, is still open at as-of, is about fees) per interaction row."""
    i = view.interactions
    complaint = i.columns["type"] == "complaint"
    resolved_at = i.columns["resolved_at"].astype("datetime64[ns]")
    # a complaint resolved on or after as-of was still open at as-of
    open_then = complaint & ~(resolved_at < view.as_of.to_datetime64())
    return complaint, open_then, complaint & (i.columns["category"] == FEE_COMPLAINT)


def complaint_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Complaints about the service (fee disputes are their own family), how long the oldest has
    stayed open, service calls and branch visits."""
    i, n = view.interactions, view.n
    kind = i.columns["type"]
    complaint, open_then, about_fees = _complaints(view)
    service = complaint & ~about_fees
    unresolved = service & open_then
    oldest = np.zeros(n)
    np.maximum.at(oldest, i.pos[unresolved], i.age_days[unresolved])
    return {
        "complaints_90d": i.count(n, service & (i.age_days <= 90)),
        "complaints_365d": i.count(n, service),
        "unresolved_complaints": i.count(n, unresolved),
        "oldest_unresolved_complaint_days": oldest,
        "days_since_last_complaint": i.days_since_last(n, service),
        "service_calls_90d": i.count(n, (kind == "service_call") & (i.age_days <= 90)),
        "branch_visits_90d": i.count(n, (kind == "branch_visit") & (i.age_days <= 90)),
    }


def fee_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Disputes about fees and what the customer was charged."""
    i, t, n = view.interactions, view.transactions, view.n
    _, open_then, about_fees = _complaints(view)
    fee = (t.columns["category"] == "fee") & (t.age_days <= 90)
    return {
        "fee_complaints_365d": i.count(n, about_fees),
        "unresolved_fee_complaints": i.count(n, about_fees & open_then),
        "fees_charged_90d": t.total(n, t.columns["amount"], fee),
    }


def incident_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Service incidents that hit the customer: failed payments, declined cards, app errors."""
    i, n = view.interactions, view.n
    incident = i.columns["type"] == "service_incident"
    return {
        "service_incidents_90d": i.count(n, incident & (i.age_days <= 90)),
        "service_incidents_180d": i.count(n, incident & (i.age_days <= 180)),
        "days_since_last_incident": i.days_since_last(n, incident),
    }


def competition_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """The best rival rate above the bank's own in the customer's region (the market feed): now,
    its change, its highest in six months (a campaign that has ended still took its customers),
    and that highest as felt by a saver: customers who held savings or a term deposit six months
    ago (what they hold now is already moved by leaving) are the rate-sensitive ones."""
    gap = view.competitor_gap
    latest = gap[:, 0]
    highest = np.where(np.isnan(gap).all(axis=1), np.nan, np.nanmax(np.nan_to_num(gap, nan=-np.inf), axis=1))
    h = view.holdings
    then = view.as_of - pd.Timedelta(days=180)
    savers = h[h["product"].isin(["savings", "term_deposit"]) & (h["opened"] < then) & ~(h["closed"] < then)]
    saver = np.bincount(savers["pos"].to_numpy(), minlength=view.n) > 0
    return {
        "competitor_gap_latest": latest,
        "competitor_gap_change_3m": latest - gap[:, 3],
        "competitor_gap_max_6m": highest,
        "saver_competitor_gap": np.where(saver, np.maximum(np.nan_to_num(highest, nan=0.0), 0.0), 0.0),
    }


def maturity_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Term deposits that matured recently (renewed or not) and those maturing soon."""
    h, n, window = view.holdings, view.n, config.maturity_window_days
    deposits = h[h["product"] == "term_deposit"]
    pos = deposits["pos"].to_numpy()
    days_to_maturity = (deposits["maturity_date"] - view.as_of).dt.days.to_numpy()
    matured = (days_to_maturity < 0) & (days_to_maturity >= -window)
    maturing = (days_to_maturity >= 0) & (days_to_maturity < window)
    # renewed = a term deposit opened on or after (three days before) the earliest recent maturity
    earliest = np.full(n, np.inf)
    np.minimum.at(earliest, pos[matured], days_to_maturity[matured])
    opened_days_ago = -(deposits["opened"] - view.as_of).dt.days.to_numpy()
    renewed_any = np.zeros(n, dtype=bool)
    renews = opened_days_ago <= -earliest[pos] + 3
    renewed_any[pos[renews & np.isfinite(earliest[pos])]] = True
    matured_count = np.bincount(pos[matured], minlength=n)
    # the same over 180 days: a lapse leads to leaving months later
    long_ago = (days_to_maturity < 0) & (days_to_maturity >= -180)
    earliest_180 = np.full(n, np.inf)
    np.minimum.at(earliest_180, pos[long_ago], days_to_maturity[long_ago])
    renewed_180 = np.zeros(n, dtype=bool)
    renewed_180[pos[(opened_days_ago <= -earliest_180[pos] + 3) & np.isfinite(earliest_180[pos])]] = True
    lapsed_180 = (np.bincount(pos[long_ago], minlength=n) > 0) & ~renewed_180
    upcoming = days_to_maturity >= 0
    next_maturity = np.full(n, float(RECENCY_CAP_DAYS))
    np.minimum.at(next_maturity, pos[upcoming], np.minimum(days_to_maturity[upcoming], RECENCY_CAP_DAYS))
    return {
        "maturities_last_60d": matured_count,
        "maturing_next_60d": np.bincount(pos[maturing], minlength=n),
        "days_to_next_maturity": next_maturity,
        "matured_not_renewed_60d": ((matured_count > 0) & ~renewed_any).astype(np.int64),
        "matured_not_renewed_180d": lapsed_180.astype(np.int64),
    }


def application_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Product applications that signal a credit need."""
    i, n = view.interactions, view.n
    applied = i.columns["type"] == "product_application"
    application = applied & (i.age_days <= 90)
    category = i.columns["category"]
    return {
        "cc_applications_90d": i.count(n, application & (category == "credit_card")),
        "loan_applications_90d": i.count(n, application & category.isin(["personal_loan", "mortgage"])),
        "days_since_last_application": i.days_since_last(n, applied),
    }


def life_event_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """What a customer's circumstances leave in the data: a new address, a pension paid in,
    missed repayments, a bereavement notice."""
    i, t, n = view.interactions, view.transactions, view.n
    kind = i.columns["type"]
    pension = t.columns["category"] == "pension"
    missed = kind == "missed_payment"
    return {
        "address_changes_180d": i.count(n, (kind == "address_change") & (i.age_days <= 180)),
        "pension_payments_90d": t.count(n, pension & (t.age_days <= 90)),
        "missed_payments_90d": i.count(n, missed & (i.age_days <= 90)),
        "missed_payments_365d": i.count(n, missed),
        "bereavement_notices_365d": i.count(n, kind == "bereavement_notice"),
    }
