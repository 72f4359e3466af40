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


@pytest.mark.parametrize(
    ("declined", "expected"),
    [
        (2, "3 retention contact(s) in the last year, 2 offer(s) declined"),
        (0, "3 retention contact(s) in the last year"),
        (None, "3 retention contact(s) in the last year"),  # a model from before the feature
    ],
)
def test_reason_text__the_contacts_family_names_declined_offers_only_when_there_are_some(declined, expected):
    from churn.config import load_config

    options = [text.model_dump() for text in load_config(environ={}).reasons["contacts"].texts]
    assert (
        _reason_text(options, {"contacts_365d": 3, "offers_declined_365d": declined}, "contacts") == expected
    )
