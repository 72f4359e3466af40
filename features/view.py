"""The point-in-time view: the raw tables as they were known just before the as-of date.

`PointInTimeView` is the only place that reads the raw tables: it keeps what happened strictly
before `as_of` and codes every row by the position of its customer, so each feature family is a
pure, vectorised function of the view (no I/O, no loops over customers, inputs never mutated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import RECENCY_CAP_DAYS
from features.schema import REGIONS

LOOKBACK_DAYS = 365
BALANCE_MONTHS = 7  # the last month-end and the six before it
MARKET_MONTHS = 7  # the last month of market data and the six before it
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
    # competitor rate gap in the customer's region, (n, MARKET_MONTHS), column 0 = the last month
    # before as-of; NaN where the market feed has no row
    competitor_gap: np.ndarray

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


def _regional_gap(market: pd.DataFrame | None, regions: pd.Series, as_of: pd.Timestamp) -> np.ndarray:
    """Each customer's region's competitor gap in the MARKET_MONTHS months before `as_of`."""
    n = len(regions)
    out = np.full((n, MARKET_MONTHS), np.nan)
    if market is None or market.empty:
        return out
    # the last month that ended before as-of: a month's figure is known once the month is over
    last = as_of.normalize().replace(day=1) - pd.DateOffset(months=1)
    back = (last.year - market["month"].dt.year) * 12 + (last.month - market["month"].dt.month)
    keep = (back >= 0) & (back < MARKET_MONTHS)
    by_region = np.full((len(REGIONS), MARKET_MONTHS), np.nan)
    region = pd.Categorical(market.loc[keep, "region"], categories=REGIONS).codes
    known = region >= 0
    by_region[region[known], back[keep].to_numpy()[known]] = market.loc[
        keep, "competitor_rate_gap"
    ].to_numpy()[known]
    customer_region = pd.Categorical(regions, categories=REGIONS).codes
    has_region = customer_region >= 0
    out[has_region] = by_region[customer_region[has_region]]
    return out


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
        competitor_gap=_regional_gap(tables.get("market"), customers["region"], as_of),
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
