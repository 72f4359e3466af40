"""Reason texts: the customer's own values, and a wording of their own when a value is missing."""

from __future__ import annotations

import math

import pytest

from serving.reasons import reason_text as _reason_text

BALANCE = [
    {
        "when": "assets_drawdown_6m",
        "text": "Balances {assets_change_3m:+.0%} in 3 months, {assets_drawdown_6m:.0%} below",
    },
    {"text": "Balances {assets_change_3m:+.0%} in 3 months"},
]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"assets_change_3m": -0.62, "assets_drawdown_6m": 0.7}, "Balances -62% in 3 months, 70% below"),
        ({"assets_change_3m": 0.1, "assets_drawdown_6m": math.nan}, "Balances +10% in 3 months"),
        (
            {"assets_change_3m": math.nan, "assets_drawdown_6m": 0.5},
            "Balance: not enough data for this customer",
        ),
        (
            {"assets_change_3m": None, "assets_drawdown_6m": None},
            "Balance: not enough data for this customer",
        ),
    ],
)
def test_reason_text__never_shows_nan(values, expected):
    text = _reason_text(BALANCE, values, "balance")
    assert text.startswith(expected) and "nan" not in text.lower()


def test_reason_text__a_single_column_family_names_a_missing_value():
    assert _reason_text([], {"NumOfProducts": math.nan}, "NumOfProducts") == "NumOfProducts is missing"
    assert _reason_text([], {"NumOfProducts": 1}, "NumOfProducts") == "NumOfProducts = 1"
