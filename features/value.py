"""Customer value from balances and products held: what the bank stands to lose if they leave."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

_BALANCE_OF_KIND = {"deposit": "deposits_latest", "investment": "investments_latest", "loan": "loans_latest"}


def annual_margin(
    features: Mapping[str, ArrayLike], n: int, products: Mapping[str, Mapping[str, float | str]]
) -> np.ndarray:
    """Expected annual margin per customer.

    Each balance (deposits, investments, loans at the last month-end) earns the average balance
    margin of the products of that kind the customer holds (e.g. deposits earn the mean of the
    current account, savings and term deposit margins they hold); every product held adds its
    annual fee margin. Missing balances count as zero.

    Args:
        features: columns of `build_features` rows by name, a frame or a mapping of arrays (needs
            `has_<product>` and the `*_latest` balances).
        n: the number of rows.
        products: catalogue code -> {"kind", "balance_margin", "annual_fee_margin"}.
    """
    margin = np.zeros(n)
    for kind, balance_column in _BALANCE_OF_KIND.items():
        codes = [code for code, p in products.items() if p["kind"] == kind]
        if not codes:
            continue
        held = np.column_stack([np.asarray(features[f"has_{c}"], dtype=float) for c in codes])
        rates = np.array([float(products[c]["balance_margin"]) for c in codes])
        count = held.sum(axis=1)
        mean_rate = np.divide(held @ rates, count, out=np.zeros(n), where=count > 0)
        margin += np.nan_to_num(np.asarray(features[balance_column], dtype=float), nan=0.0) * mean_rate
    for code, p in products.items():
        margin += np.asarray(features[f"has_{code}"], dtype=float) * float(p["annual_fee_margin"])
    return margin


def customer_value(
    features: Mapping[str, ArrayLike],
    n: int,
    products: Mapping[str, Mapping[str, float | str]],
    years: float,
    discount_rate: float,
) -> np.ndarray:
    """Value = annual margin x sum over the next `years` of 1 / (1 + discount_rate)^t (t = 1..years).

    Fractional years count pro rata. This is the margin the bank keeps if the customer stays;
    value at risk is P(churn) x value.
    """
    whole = int(np.floor(years))
    factor = sum((1 + discount_rate) ** -t for t in range(1, whole + 1))
    factor += (years - whole) * (1 + discount_rate) ** -(whole + 1)
    return annual_margin(features, n, products) * factor
