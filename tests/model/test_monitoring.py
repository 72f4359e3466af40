"""Monitoring finds each generated drift scenario, names the features, and stays quiet without one.

The model is trained on the committed sample; the scenario banks are the same bank (same seed)
with a drift in their last two months, scored at the day after their last month-end.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import build_features
from features.generator import generate_bank
from features.labels import drained_before
from features.validation import validate_tables
from monitoring.drift import check_version, judge, psi_table, quality_table
from monitoring.realised import expected_auc, performance_figures
from monitoring.reference import PREDICTION, Reference
from serving.risk_list import default_as_of
from training.tracking import reference_sample


@pytest.fixture(scope="module")
def reference(trained, config) -> Reference:
    ranked = trained.global_shap.index.tolist()
    return Reference("1", reference_sample(trained, 2000, config.training.seed), ranked)


def _scored(trained, config, products, seed: int | None = None, **generator) -> pd.DataFrame:
    defaults = config.generator
    bank = generate_bank(
        customers=defaults.customers,
        months=defaults.months,
        seed=defaults.seed if seed is None else seed,
        start=str(defaults.start),
        **generator,
    )
    tables = validate_tables(bank.tables, extract_date=pd.Timestamp("2026-11-22"), products=products).tables
    as_of = default_as_of(tables)
    features = build_features(tables, as_of, config.features, products)
    # the customers the daily list scores: not those who have already left in all but name
    drained = drained_before(tables, as_of, config.labels).reindex(features.index, fill_value=False)
    features = features[~drained.to_numpy()]
    bundle = trained.bundle
    scored = features.assign(**{PREDICTION: bundle.churn_probability(bundle.prepare(features))})
    return scored.reset_index(drop=True).assign(source="batch")


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (  # the market feed shows the campaign itself: its region, beyond the training range
            "rate_campaign",
            {"competitor_gap_latest", "external_out_30d", "external_out_90d", "external_out_share_90d"},
        ),
        ("app_outage", {"logins_30d", "logins_90d", "login_trend", "days_since_last_login"}),
        ("channel_recode", {"digital_txn_share_90d"}),
    ],
)
def test_check_version__each_scenario_raises_an_alert_naming_its_features(
    scenario, expected, trained, config, products, reference
):
    check = check_version(
        reference, _scored(trained, config, products, scenario=scenario), config, with_report=False
    )
    assert check.alerts, f"{scenario}: no alert"
    named = {feature for alert in check.alerts for feature in alert.features}
    if scenario != "rate_campaign":  # one region's campaign shows in its region (next test)
        overall = {f for a in check.alerts if a.kind != "segment_drift" for f in a.features}
        assert overall & expected, f"{scenario}: overall alerts name {sorted(overall)}"
    assert named & expected, f"{scenario}: alerts name {sorted(named)}"
    unrelated = {"age", "tenure_days", "income_band", "loans_latest"}
    assert not named & unrelated, f"{scenario}: blames unrelated features {sorted(named & unrelated)}"


def test_segment_views__the_rate_campaign_is_named_in_its_own_region(trained, config, products, reference):
    """The market alert names the campaign's region alone. (Its customers' behaviour moves too, by
    a few rate-sensitive leavers in two months: on 2,500 customers that is within the time drift
    every region shows against the training reference, so it is not asserted.)"""
    check = check_version(
        reference,
        _scored(trained, config, products, scenario="rate_campaign", drift_region="North"),
        config,
        with_report=False,
    )
    assert "region=North" in check.segments
    assert [a.subject for a in check.alerts if a.kind == "market"] == ["region=North"]


@pytest.mark.parametrize("seed", [None, 11, 12, 13])
def test_check_version__quiet_on_banks_without_drift(seed, trained, config, products, reference):
    """The sample itself and other draws of the bank (other seeds) raise no alert on the whole
    population. Region views may: the generator's own regional competitor campaigns (a hidden
    driver by design) differ from the ones in the training months, as they would at a bank."""
    check = check_version(reference, _scored(trained, config, products, seed=seed), config, with_report=False)
    overall = [a.message for a in check.alerts if a.kind != "segment_drift"]
    assert overall == []


def test_psi_table__identical_data_is_stable_and_a_shift_is_drift():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
    same = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(["a", "b"], 5000)})
    shifted = pd.DataFrame({"x": rng.normal(1.0, size=5000), "c": rng.choice(["a", "b"], 5000, p=[0.9, 0.1])})
    assert not psi_table(reference, same, ["x", "c"], 0.2)["drifted"].any()
    assert psi_table(reference, shifted, ["x", "c"], 0.2)["drifted"].all()


def test_judge__thresholds_decide_which_alerts_fire(config):
    features = [f"f{i}" for i in range(10)]
    drift = pd.DataFrame({"psi": [0.5, 0.3] + [0.01] * 8 + [0.05]}, index=[*features, PREDICTION])
    drift["drifted"] = drift["psi"] >= config.monitoring.psi_threshold
    quality = pd.DataFrame(
        {
            "missing_reference": 0.0,
            "missing_current": [0.5] + [0.0] * 9,
            "missing_increase": [0.5] + [0.0] * 9,
            "out_of_range_share": [0.0] * 9 + [0.2],
            "new_categories": [[] for _ in range(10)],
        },
        index=features,
    )
    alerts = {a.kind: a for a in judge(drift, quality, ["f1", "f0", *features[2:]], config)}
    # 2 of 10 drifted (20% < 30%), one of them a top feature; f0 at PSI 0.5 is severe
    assert set(alerts) == {"top_feature_drift", "feature_drift", "missing_values", "out_of_range"}
    assert alerts["feature_drift"].subject == "f0"
    assert alerts["top_feature_drift"].features == ["f1", "f0"]
    assert alerts["missing_values"].subject == "f0" and alerts["out_of_range"].subject == "f9"


def test_performance_figures__hand_checked_example_and_the_auc_drop_alert(config):
    capacity = config.model_copy(
        update={"evaluation": config.evaluation.model_copy(update={"contact_capacity": 2})}
    )
    y = np.array([0, 0, 1, 1, 0, 0])
    p = np.array([0.10, 0.40, 0.35, 0.80, 0.05, 0.20])
    # pairs (churner, stayer) ranked right: 0.35 beats 0.10, 0.05, 0.20 (3 of 4); 0.80 beats all 4
    figures, alerts = performance_figures(y, p, {"roc_auc": 0.80}, capacity)
    assert figures["roc_auc"] == pytest.approx(7 / 8)
    assert figures["precision_at_capacity"] == pytest.approx(0.5)  # top 2: 0.80 (churned), 0.40 (stayed)
    assert figures["customers"] == 6 and figures["base_rate"] == pytest.approx(1 / 3)
    assert [a.kind for a in alerts if a.kind == "auc_drop"] == []
    # the same scores, the churners now the two lowest: AUC 0, far below what the model expected
    _, alerts = performance_figures(np.array([1, 0, 0, 0, 1, 0]), p, {"roc_auc": 0.80}, capacity)
    assert "auc_drop" in [a.kind for a in alerts]


def test_expected_auc__hand_checked_and_what_right_probabilities_reach_on_average():
    # two customers at 0.2 and 0.8: pairs (churner, stayer) 0.2*0.2 ranked wrong, 0.8*0.8 right
    assert expected_auc(np.array([0.2, 0.8])) == pytest.approx(0.64 / 0.68)
    assert expected_auc(np.array([0.3, 0.3, 0.3])) == pytest.approx(0.5)  # ties count half
    rng = np.random.default_rng(7)
    p = rng.beta(0.5, 12, 20_000)
    rest = np.sort(p)[:-300]  # the riskiest contacted and left out, as in the judged lists
    realised = [roc_auc_score(y, rest) for y in (rng.random((20, len(rest))) < rest)]
    assert np.mean(realised) == pytest.approx(expected_auc(rest), abs=0.01)
    assert expected_auc(rest) < expected_auc(p) - 0.005, "leaving out the riskiest lowers it"


def test_quality_table__missing_out_of_range_and_new_categories():
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", None]})
    current = pd.DataFrame({"x": [2.0, 9.0, np.nan, np.nan], "c": ["a", "c", "C", None]})
    quality = quality_table(reference, current, ["x", "c"])
    assert quality.loc["x", "missing_increase"] == pytest.approx(0.5)
    assert quality.loc["x", "out_of_range_share"] == pytest.approx(0.5)  # 9.0 of [2.0, 9.0]
    assert quality.loc["c", "new_categories"] == ["C", "c"]
    assert quality.loc["c", "missing_increase"] == pytest.approx(0.0)
