"""The simulated bank's mutable state: calendar, product holdings, and the events written so far."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
DAY_NS = 86_400_000_000_000
# status: 0 not joined, 1 active, 2 draining (decided to leave), 3 closed, 4 silent (empty account)
NOT_JOINED, ACTIVE, DRAINING, CLOSED, SILENT = range(5)
NEVER = -99  # "month of an event" for customers it never happened to
FIRST_ID = 100_001  # the generated bank's first customer id (customer i has id FIRST_ID + i)


def month_starts(start: pd.Timestamp, months: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=months + 1, freq="MS")


def days(values: pd.DatetimeIndex | pd.Timestamp) -> np.ndarray | int:
    """Days since the epoch as int64."""
    if isinstance(values, pd.Timestamp):
        return int(values.value // DAY_NS)
    return values.asi8 // DAY_NS


def codes(values: np.ndarray | str, vocabulary: tuple[str, ...], size: int | None = None) -> np.ndarray:
    """Small integer codes of text values (-1 for None), so tens of millions of events stay compact."""
    if isinstance(values, str):
        return np.full(size, vocabulary.index(values), dtype=np.int8)
    return pd.Categorical(values, categories=vocabulary).codes.astype(np.int8)


def split_amounts(
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


class Holdings:
    """Every product holding opened so far, in growable arrays, and what each customer holds now."""

    def __init__(self, customers: int):
        self.n = customers
        capacity = customers * 12 + 1024
        self.customer = np.empty(capacity, dtype=np.int64)
        self.product = np.empty(capacity, dtype=np.int64)
        self.opened = np.empty(capacity, dtype=np.int64)
        self.maturity = np.empty(capacity, dtype=np.int64)
        self.closed = np.full(capacity, -1, dtype=np.int64)
        self.count = 0
        self.current = np.full((customers, len(PRODUCTS)), -1, dtype=np.int64)

    def _grow(self, needed: int) -> None:
        while self.count + needed > self.customer.size:
            for name in ("customer", "product", "opened", "maturity"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.empty(old.size, dtype=np.int64)]))
            self.closed = np.concatenate([self.closed, np.full(self.closed.size, -1, dtype=np.int64)])

    def open(self, customers: np.ndarray, product: int, opened_days: np.ndarray, term_days: int = 0) -> None:
        not_held = self.current[customers, product] < 0
        customers, opened_days = customers[not_held], np.asarray(opened_days)[not_held]
        if customers.size == 0:
            return
        self._grow(customers.size)
        index = np.arange(self.count, self.count + customers.size)
        self.customer[index] = customers
        self.product[index] = product
        self.opened[index] = opened_days
        self.maturity[index] = opened_days + term_days if term_days else -1
        self.count += customers.size
        self.current[customers, product] = index

    def close(self, customers: np.ndarray, product: int, closed_days: np.ndarray) -> None:
        index = self.current[customers, product]
        held = index >= 0
        # a product approved late in the month may open after the day the customer closes the rest
        self.closed[index[held]] = np.maximum(closed_days[held], self.opened[index[held]])
        self.current[customers[held], product] = -1

    def close_all(self, customers: np.ndarray, closed_days: np.ndarray) -> None:
        for product in range(len(PRODUCTS)):
            self.close(customers, product, closed_days)

    def held(self, product: int) -> np.ndarray:
        return self.current[:, product] >= 0

    def count_held(self) -> np.ndarray:
        return (self.current >= 0).sum(axis=1)

    def maturity_of(self, product: int) -> np.ndarray:
        index = self.current[:, product]
        result = np.full(self.n, -1, dtype=np.int64)
        result[index >= 0] = self.maturity[index[index >= 0]]
        return result


class Events:
    """Rows emitted month by month, per kind (transactions, interactions, contacts, balances)."""

    KINDS = ("tx", "ix", "ct", "bal", "hz")

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, np.ndarray]]] = {kind: [] for kind in self.KINDS}

    def add(self, kind: str, **columns: np.ndarray) -> None:
        self.rows[kind].append(columns)

    def concat(self, kind: str) -> dict[str, np.ndarray]:
        parts = self.rows[kind]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]} if parts else {}
