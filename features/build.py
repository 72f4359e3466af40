"""Point-in-time behavioural features: one row per customer active at the as-of date.

`PointInTimeView` is the only place that reads the raw tables: it keeps what happened strictly
before `as_of` and codes every row by the position of its customer. Each feature family is then a
pure, vectorised function of the view (no I/O, no loops over customers, inputs never mutated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn.config import FeatureConfig
from features.catalog import RECENCY_CAP_DAYS, feature_catalog

LOOKBACK_DAYS = 365
BALANCE_MONTHS = 7  # the last month-end and the six before it
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class EventRows:
    """Rows of one event table within the lookback, as arrays aligned with each other."""

    pos: np.ndarray  # position of the row's customer in the view's customer index
    age_days: np.ndarray  # days between the event and as-of (0 < age_days <= LOOKBACK_DAYS)
    columns: Mapping[str, np.ndarray | pd.Categorical]  # text columns are categoricals

    def count(self, n: int, mask: np.ndarray | None = None) -> np.ndarray:
        pos = self.pos if mask is None else self.pos[mask]
        return np.bincount(pos, minlength=n)

    def total(self, n: int, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is None:
            return np.bincount(self.pos, weights=values, minlength=n)
        return np.bincount(self.pos[mask], weights=values[mask], minlength=n)

    def days_since_last(self, n: int, mask: np.ndarray | None = None) -> np.ndarray:
        recency = np.full(n, float(RECENCY_CAP_DAYS))
        pos, age = (self.pos, self.age_days) if mask is None else (self.pos[mask], self.age_days[mask])
        np.minimum.at(recency, pos, age)
        return recency


@dataclass(frozen=True)
class PointInTimeView:
    """The raw tables as they were known just before `as_of`, restricted to active customers."""

    as_of: pd.Timestamp
    customers: pd.DataFrame  # active customers, sorted by customer_id
    transactions: EventRows
    interactions: EventRows
    contacts: EventRows
    holdings: pd.DataFrame  # opened before as_of, with `closed` blanked where it was not yet known; has `pos`
    assets: np.ndarray  # (n, BALANCE_MONTHS) month-end assets, column 0 = latest month-end; NaN = no row
    deposits: np.ndarray
    investments: np.ndarray
    loans: np.ndarray

    @property
    def n(self) -> int:
        return len(self.customers)


def _take(column: pd.Series, rows: np.ndarray) -> np.ndarray | pd.Categorical:
    """The selected rows; text as a categorical, so comparisons run on integer codes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array[rows]
    values = column.to_numpy()[rows]
    return pd.Categorical(values) if values.dtype == object else values


def _event_rows(frame: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, columns: list[str]) -> EventRows:
    ts = frame["ts"].to_numpy("datetime64[ns]").view("int64")
    as_of_ns = as_of.value
    in_window = (ts < as_of_ns) & (ts >= as_of_ns - LOOKBACK_DAYS * _DAY_NS)
    rows = np.flatnonzero(in_window)
    pos = index.get_indexer(frame["customer_id"].to_numpy()[rows])
    rows, pos = rows[pos >= 0], pos[pos >= 0]
    return EventRows(
        pos=pos,
        age_days=(as_of_ns - ts[rows]) / _DAY_NS,
        columns={c: _take(frame[c], rows) for c in columns},
    )


def active_customers(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    """Customers who joined before `as_of` and still held an open product just before it."""
    holdings = tables["holdings"]
    open_then = (holdings["opened"] < as_of) & ~(holdings["closed"] < as_of)
    holders = pd.unique(holdings.loc[open_then, "customer_id"])
    customers = tables["customers"]
    active = customers[(customers["join_date"] < as_of) & customers["customer_id"].isin(holders)]
    return active.sort_values("customer_id").reset_index(drop=True)


def point_in_time_view(tables: Mapping[str, pd.DataFrame], as_of: pd.Timestamp | str) -> PointInTimeView:
    """Cut validated tables to what was known strictly before `as_of`."""
    as_of = pd.Timestamp(as_of).normalize()
    customers = active_customers(tables, as_of)
    index = pd.Index(customers["customer_id"].to_numpy())
    n = len(index)

    holdings = tables["holdings"]
    holdings = holdings[holdings["opened"] < as_of].copy()
    holdings["closed"] = holdings["closed"].where(holdings["closed"] < as_of)
    holdings["pos"] = index.get_indexer(holdings["customer_id"].to_numpy())
    holdings = holdings[holdings["pos"] >= 0]

    balances = tables["balances"]
    balances = balances[balances["month_end"] < as_of]
    latest_month_end = as_of - pd.offsets.MonthEnd(1)  # the last month-end strictly before as_of
    months_back = (latest_month_end.year - balances["month_end"].dt.year) * 12 + (
        latest_month_end.month - balances["month_end"].dt.month
    )
    keep = (months_back >= 0) & (months_back < BALANCE_MONTHS)
    pos = index.get_indexer(balances.loc[keep, "customer_id"].to_numpy())
    known = pos >= 0
    lag = months_back[keep].to_numpy()[known]
    matrices = {}
    for column in ("deposits", "investments", "loans"):
        matrix = np.full((n, BALANCE_MONTHS), np.nan)
        matrix[pos[known], lag] = balances.loc[keep, column].to_numpy()[known]
        matrices[column] = matrix

    return PointInTimeView(
        as_of=as_of,
        customers=customers,
        transactions=_event_rows(
            tables["transactions"], index, as_of, ["amount", "direction", "channel", "category"]
        ),
        interactions=_event_rows(tables["interactions"], index, as_of, ["type", "category", "resolved_at"]),
        contacts=_event_rows(tables["contacts"], index, as_of, ["control_group", "outcome"]),
        holdings=holdings,
        assets=matrices["deposits"] + matrices["investments"],
        deposits=matrices["deposits"],
        investments=matrices["investments"],
        loans=matrices["loans"],
    )


# -- feature families -------------------------------------------------------------------------------


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


def complaint_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Complaints (unresolved ones separately), service calls and branch visits."""
    i, n = view.interactions, view.n
    kind = i.columns["type"]
    complaint = kind == "complaint"
    resolved_at = i.columns["resolved_at"].astype("datetime64[ns]")
    # a complaint resolved on or after as-of was still open at as-of
    unresolved = complaint & ~(resolved_at < view.as_of.to_datetime64())
    return {
        "complaints_90d": i.count(n, complaint & (i.age_days <= 90)),
        "complaints_365d": i.count(n, complaint),
        "unresolved_complaints": i.count(n, unresolved),
        "days_since_last_complaint": i.days_since_last(n, complaint),
        "service_calls_90d": i.count(n, (kind == "service_call") & (i.age_days <= 90)),
        "branch_visits_90d": i.count(n, (kind == "branch_visit") & (i.age_days <= 90)),
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
    return {
        "maturities_last_60d": matured_count,
        "maturing_next_60d": np.bincount(pos[maturing], minlength=n),
        "matured_not_renewed_60d": ((matured_count > 0) & ~renewed_any).astype(np.int64),
    }


def application_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Product applications that signal a credit need."""
    i, n = view.interactions, view.n
    application = (i.columns["type"] == "product_application") & (i.age_days <= 90)
    category = i.columns["category"]
    return {
        "cc_applications_90d": i.count(n, application & (category == "credit_card")),
        "loan_applications_90d": i.count(n, application & category.isin(["personal_loan", "mortgage"])),
    }


def contact_features(view: PointInTimeView, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Recency and frequency of retention contacts actually made (control group excluded)."""
    c, n = view.contacts, view.n
    made = ~c.columns["control_group"].astype(bool)
    last_age = c.days_since_last(n, made)
    is_last = made & (c.age_days == last_age[c.pos])
    accepted = np.zeros(n, dtype=np.int64)
    accepted[c.pos[is_last & (c.columns["outcome"] == "accepted")]] = 1
    return {
        "contacts_90d": c.count(n, made & (c.age_days <= 90)),
        "contacts_365d": c.count(n, made),
        "days_since_last_contact": last_age,
        "last_contact_accepted": accepted,
    }


FeatureFamily = Callable[[PointInTimeView, FeatureConfig], dict[str, np.ndarray]]

FAMILIES: dict[str, FeatureFamily] = {
    "profile": profile_features,
    "rfm": rfm_features,
    "balance": balance_features,
    "outflow": outflow_features,
    "salary": salary_features,
    "engagement": engagement_features,
    "complaints": complaint_features,
    "maturities": maturity_features,
    "applications": application_features,
    "contacts": contact_features,
}


def build_features(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    config: FeatureConfig,
    products: tuple[str, ...],
) -> pd.DataFrame:
    """Build one feature row per customer active at `as_of`, from data strictly before it.

    Args:
        tables: validated raw tables.
        as_of: the as-of date; nothing on or after this day is read.
        config: feature windows and thresholds.
        products: the product catalogue codes (for `has_<product>`).

    Returns:
        A frame indexed by `customer_id` with the catalogue's columns in catalogue order;
        categorical columns have the catalogue's fixed categories.
    """
    view = point_in_time_view(tables, as_of)
    values: dict[str, np.ndarray] = {}
    for family in FAMILIES.values():
        values.update(family(view, config))
    values.update(product_features(view, config, products))
    catalog = feature_catalog(config, products)
    names = [spec.name for spec in catalog]
    if set(values) != set(names):
        raise AssertionError(f"features and catalogue disagree: {sorted(set(values) ^ set(names))}")
    frame = pd.DataFrame(
        {name: values[name] for name in names},
        index=pd.Index(view.customers["customer_id"], name="customer_id"),
    )
    for spec in catalog:
        if spec.dtype == "category":
            frame[spec.name] = pd.Categorical(frame[spec.name], categories=spec.categories)
        elif spec.dtype == "int":
            frame[spec.name] = frame[spec.name].astype(np.int64)
        else:
            frame[spec.name] = frame[spec.name].astype(np.float64)
    return frame
