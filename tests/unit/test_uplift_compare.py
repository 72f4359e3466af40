"""Promotion's uplift comparison: a paired interval on the same rows, and when there is nothing fair
to compare."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from churn.config import load_config
from training.uplift_compare import compare_uplift, paired_qini


def _randomised(n: int, seed: int):
    """Half contacted at random; a contact lowers churn by 10 points for the third of customers
    with the highest `signal` and does nothing for the rest."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    treated = rng.random(n) < 0.5
    persuadable = signal > 1 - 0.57  # about a third
    churn = rng.random(n) < np.where(treated & persuadable, 0.10, 0.20)
    return signal, treated, churn


def test_paired_qini__a_score_that_finds_the_persuadables_beats_a_random_one_on_the_same_rows():
    signal, treated, churn = _randomised(20_000, 1)
    noise = np.random.default_rng(2).normal(size=len(signal))
    figures = paired_qini(signal, noise, treated, churn, np.ones(len(signal)), reps=60, seed=3)
    assert figures["challenger"] > figures["champion"]
    assert figures["difference"] == pytest.approx(figures["challenger"] - figures["champion"])
    assert 0 < figures["low"] < figures["difference"] < figures["high"]
    # and the other way round the interval is below zero
    assert paired_qini(noise, signal, treated, churn, np.ones(len(signal)), reps=60, seed=3)["high"] < 0


def _bundle(campaign_months, held_out_months=(), effects=True):
    held = {"qini_low": 0.001, "effects": {}} if effects else {"qini_low": 0.001}
    meta = {
        "campaign_months": list(campaign_months),
        "held_out_months": list(held_out_months),
        "held_out": held,
    }
    return SimpleNamespace(uplift=SimpleNamespace(meta=meta))


def test_compare_uplift__nothing_fair_to_compare_is_said_as_such():
    config = load_config(environ={})
    months = ["2026-04", "2026-05", "2026-06"]
    challenger = _bundle(["2026-01", *months], months)
    # the champion trained on the same history: every held-out month is in its training
    same = compare_uplift(pd.DataFrame(), challenger, _bundle(["2026-01", *months]), config)
    assert "trained the champion too" in same["note"]
    assert (
        "no uplift models"
        in compare_uplift(pd.DataFrame(), challenger, SimpleNamespace(uplift=None), config)["note"]
    )
    older = _bundle(["2026-01", *months], months, effects=False)  # saved before the probe was kept
    assert "no uplift models" in compare_uplift(pd.DataFrame(), older, _bundle(["2026-01"]), config)["note"]
