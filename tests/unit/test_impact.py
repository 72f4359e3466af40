"""Proof from the control group: intervals, verdicts, and saying so when the controls are too few."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from monitoring.impact import impact_tables


def _campaign(name: str, n: int, control_share: float, churn: float, effect: float, rng) -> pd.DataFrame:
    control = rng.random(n) < control_share
    return pd.DataFrame(
        {
            "campaign": name,
            "month": "2026-01",
            "action": np.where(control, None, "retention_call"),
            "team": np.where(control, None, "call_centre"),
            "branch_id": "BR001",
            "control": control,
            "churn": (rng.random(n) < np.where(control, churn, churn - effect)).astype(int),
            "value": 1000.0,
            "cost": np.where(control, 0.0, 25.0),
            "outcome": np.where(control, "control", "reached"),
        }
    )


def test_impact__campaigns_that_hold_back_different_shares_are_judged_each_against_its_own_controls():
    # a targeted campaign of risky customers holding back 20%, an exploration of safe ones holding
    # back half: pooled, the contacted look far riskier than the controls whatever the contact does
    rng = np.random.default_rng(3)
    rows = pd.concat(
        [
            _campaign("RET-2026-01", 10_000, 0.2, churn=0.30, effect=0.03, rng=rng),
            _campaign("EXP-2026-01", 10_000, 0.5, churn=0.05, effect=0.01, rng=rng),
        ],
        ignore_index=True,
    )
    naive = rows[rows["control"]]["churn"].mean() - rows[~rows["control"]]["churn"].mean()
    assert naive < -0.05, "the trap: pooled, the contacts seem to push customers away"
    overall = impact_tables(rows)["overall"].iloc[0]
    # the truth: 8,000 contacted at -3 points and 5,000 at -1 point, weighted 0.0223
    assert overall["verdict"] == "kept customers"
    assert overall["difference_low"] < 0.0223 < overall["difference_high"]
    assert overall["compared"] == overall["contacted"]
    assert overall["churn_rate_control"] > overall["churn_rate_contacted"]
    by_action = impact_tables(rows)["action"].loc["retention_call"]
    assert by_action["difference"] == pytest.approx(overall["difference"])


def test_impact__a_campaign_without_controls_in_a_slice_is_not_compared():
    rng = np.random.default_rng(4)
    rows = _campaign("RET-2026-01", 4_000, 0.2, churn=0.3, effect=0.05, rng=rng)
    rows.loc[rows.index[:2000], "branch_id"] = "BR002"
    rows = rows[~((rows["branch_id"] == "BR002") & rows["control"])]  # BR002's controls are gone
    branches = impact_tables(rows)["branch"]
    assert branches.loc["BR002", "compared"] == 0
    assert branches.loc["BR002", "verdict"] == "too few control customers for a conclusion"
    assert branches.loc["BR001", "compared"] == branches.loc["BR001", "contacted"]


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


def test_impact_check__an_action_that_pushes_customers_away_is_a_monitoring_alert(tmp_path):
    from monitoring.impact_watch import impact_check, impact_lines

    rng = np.random.default_rng(5)
    rows = _campaign("RET-2026-01", 8_000, 0.3, churn=0.10, effect=-0.06, rng=rng)  # +6 points
    folder = tmp_path / "impact" / "2026-01"
    folder.mkdir(parents=True)
    for name, table in impact_tables(rows).items():
        table.to_csv(folder / f"{name}.csv")
    figures, alerts = impact_check(tmp_path)
    assert figures["month"] == "2026-01" and figures["verdict"] == "pushed customers away"
    assert {a.subject for a in alerts} == {"action retention_call", "campaign RET-2026-01"}
    assert all(a.kind == "campaign_harm" and a.value < 0 for a in alerts)
    points = float(re.search(r"churned ([0-9.]+) points more", alerts[0].message).group(1))
    assert 3 < points < 9, alerts[0].message
    assert "pushing customers away: action retention_call" in impact_lines(figures)[0]
    assert impact_check(tmp_path / "nothing") == (None, [])


def test_impact_check__forty_campaigns_where_nothing_harms_raise_no_alert(tmp_path):
    from monitoring.impact_watch import impact_check

    rng = np.random.default_rng(1)
    rows = pd.concat(
        [_campaign(f"RET-2026-01-{i:02d}", 400, 0.3, churn=0.2, effect=0.0, rng=rng) for i in range(40)],
        ignore_index=True,
    )
    folder = tmp_path / "impact" / "2026-01"
    folder.mkdir(parents=True)
    tables = impact_tables(rows)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv")
    # one by one at 2.5%, two of the forty harmless campaigns look harmful
    assert (tables["campaign"]["verdict"] == "pushed customers away").sum() == 2
    figures, alerts = impact_check(tmp_path)
    assert alerts == [] and figures["harmful"] == []
    assert isinstance(figures["contacted"], int)


def test_refresh_impact__an_unreadable_bank_is_one_line_and_the_monitoring_run_goes_on(tmp_path):
    from churn.config import load_config
    from monitoring.monitor import _refresh_impact

    config = load_config(
        environ={
            "CHURN_DATA_SOURCE": str(tmp_path / "no-such-bank"),
            "CHURN_OUTPUT_DIR": str(tmp_path / "out"),
        }
    )
    line = _refresh_impact(config)
    assert line.startswith("impact                not judged afresh (") and "no-such-bank" in line
