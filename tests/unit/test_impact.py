"""Proof from the control group: intervals, verdicts, and saying so when the controls are too few."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.impact import impact_tables, newcombe, wilson


def test_wilson_and_newcombe__known_values():
    low, high = wilson(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-4) and high == pytest.approx(0.1744, abs=1e-4)
    d, low, high = newcombe(20, 100, 10, 100)  # controls 20%, contacted 10%
    assert d == pytest.approx(0.10)
    assert low == pytest.approx(-0.0008, abs=2e-3) and high == pytest.approx(0.2003, abs=2e-3)


def _rows(n: int, control_share: float, effect: float, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    control = rng.random(n) < control_share
    churn = rng.random(n) < np.where(control, 0.20, 0.20 - effect)
    action = np.where(control, None, np.where(rng.random(n) < 0.5, "rate_offer", "retention_call"))
    return pd.DataFrame(
        {
            "campaign": np.where(rng.random(n) < 0.5, "RET-2026-01", "RET-2026-02"),
            "month": "2026-01",
            "action": action,
            "team": pd.Series(action).map({"rate_offer": "savings_desk", "retention_call": "call_centre"}),
            "branch_id": "BR001",
            "control": control,
            "churn": churn.astype(int),
            "value": 1000.0,
            "cost": np.where(control, 0.0, 25.0),
            "outcome": np.where(control, "control", "reached"),
        }
    )


def test_impact__a_real_effect_is_shown_with_its_interval_and_value():
    tables = impact_tables(_rows(20_000, 0.2, 0.08))
    overall = tables["overall"].iloc[0]
    assert overall["verdict"] == "kept customers"
    assert overall["difference_low"] < 0.08 < overall["difference_high"]
    assert overall["incremental_customers"] == pytest.approx(overall["difference"] * overall["contacted"])
    assert overall["value_kept"] == pytest.approx(1000 * overall["incremental_customers"], rel=0.05)
    assert overall["net_value"] == pytest.approx(overall["value_kept"] - 25 * overall["contacted"])
    assert set(tables["action"].index) == {"rate_offer", "retention_call"}
    assert set(tables["team"].index) == {"savings_desk", "call_centre"}


def test_impact__no_effect_and_too_few_controls_are_said_as_such():
    assert (
        impact_tables(_rows(20_000, 0.2, 0.0)).get("overall").iloc[0]["verdict"]
        == "no effect the controls can show"
    )
    few = impact_tables(_rows(300, 0.05, 0.08), min_control=30)["overall"].iloc[0]
    assert few["verdict"] == "too few control customers for a conclusion"
    assert "difference" not in few or pd.isna(few.get("difference"))
