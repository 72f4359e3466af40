"""Out-of-time split, metrics, promotion rules and customer value, on hand-made inputs."""

import numpy as np
import pandas as pd
import pytest

from churn.config import load_config
from features.value import customer_value
from training.metrics import churn_metrics, expected_calibration_error, ranking_metrics, top_share_metrics
from training.promote import net_saving
from training.promotion_rules import decide
from training.split import out_of_time_split

MONTHS = list(pd.date_range("2025-01-01", periods=14, freq="MS"))


def test_out_of_time_split__label_windows_never_reach_a_later_set():
    split = out_of_time_split(MONTHS, horizon_days=90, validation_snapshots=2)
    assert split.test == MONTHS[-1]
    horizon = pd.Timedelta(days=90)
    assert all(v + horizon <= split.test for v in split.validation), (
        "validation labels end before the test as-of"
    )
    assert all(t + horizon <= split.validation[0] for t in split.train), (
        "training labels end before validation"
    )
    assert max(split.train) < min(split.validation) < split.test
    assert set(split.train).isdisjoint(split.validation)


def test_out_of_time_split__too_few_snapshots_is_a_clear_error():
    with pytest.raises(ValueError, match="too few"):
        out_of_time_split(MONTHS[:5], horizon_days=90, validation_snapshots=2)


def test_expected_calibration_error__perfectly_calibrated_bins_score_zero():
    p = np.repeat([0.1, 0.5], 10)
    y = np.array([1] + [0] * 9 + [1] * 5 + [0] * 5, dtype=float)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(20, 0.9), bins=2) == pytest.approx(0.6)


def test_top_share_metrics__lift_and_capture():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    score = np.arange(10, 0, -1, dtype=float)  # the two churners ranked first
    lift, capture = top_share_metrics(y, score, 0.2)
    assert (lift, capture) == (pytest.approx(5.0), pytest.approx(1.0))


def test_churn_metrics__precision_and_recall_at_capacity():
    y = np.array([1, 0, 1, 0, 0, 1], dtype=float)
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.05])
    m = churn_metrics(y, p, capacity=3, top_shares=(0.5,))
    assert m["precision_at_capacity"] == pytest.approx(2 / 3)
    assert m["recall_at_capacity"] == pytest.approx(2 / 3)


def test_ranking_metrics__map_at_3_counts_the_rank_of_the_product_opened():
    m = ranking_metrics([["a", "b", "c"], ["b", "a"], ["c"]], ["a", "a", "a"])
    assert m["hit_rate_at_1"] == pytest.approx(1 / 3)
    assert m["hit_rate_at_3"] == pytest.approx(2 / 3)
    assert m["map_at_3"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_net_saving__top_customers_by_value_at_risk():
    y = np.array([1, 0, 1])
    value = np.array([1000.0, 5000.0, 100.0])
    var = np.array([500.0, 400.0, 10.0])
    assert net_saving(y, value, var, capacity=2, save_rate=0.5, cost=10) == pytest.approx(1000 * 0.5 - 20)


CONFIG = load_config(environ={})
GOOD = {"roc_auc": 0.80, "net_saving": 1000.0, "ece": 0.01, "auc.region.North": 0.78}


@pytest.mark.parametrize(
    ("challenger", "champion", "force", "promoted", "reason"),
    [
        (GOOD, None, False, True, "first model"),
        (GOOD, GOOD | {"roc_auc": 0.79, "net_saving": 900.0}, False, True, "better than the champion"),
        (GOOD, GOOD, False, False, "not better"),
        (GOOD, GOOD | {"roc_auc": 0.79}, False, False, "net_saving"),  # better AUC, same money
        (GOOD | {"ece": 0.2}, GOOD | {"roc_auc": 0.7, "net_saving": 0.0}, False, False, "calibration error"),
        (
            GOOD | {"auc.region.North": 0.60},
            GOOD | {"roc_auc": 0.7, "net_saving": 0.0},
            False,
            False,
            "auc.region.North fell",
        ),
        (GOOD, GOOD, True, True, "forced"),
    ],
)
def test_decide__promotion_rules(challenger, champion, force, promoted, reason):
    decision, why = decide(challenger, champion, CONFIG, force=force)
    assert decision is promoted
    assert reason in why


def test_decide__the_first_model_passes_the_gates_on_its_own_figures_or_the_registry_has_no_champion():
    # badly calibrated: with no champion to compare with, its own gates still hold
    decision, why = decide(GOOD | {"ece": 0.2}, None, CONFIG)
    assert not decision and "first model fails" in why and "calibration error 0.2000" in why
    assert "--force" in why, "says how to accept it anyway"
    decision, why = decide(GOOD | {"ece": 0.2}, None, CONFIG, force=True)
    assert decision and "forced" in why and "calibration error" in why
    # a list forced to rank by uplift needs uplift models that show value, champion or not
    by_uplift = CONFIG.with_uplift(ranking="uplift")
    unproven = GOOD | {"uplift_models": 1.0, "uplift_qini_low": -0.001}
    decision, why = decide(unproven, None, by_uplift)
    assert not decision and "no incremental value" in why
    assert decide(unproven, None, CONFIG)[0], "auto: that list ranks by probability, nothing to judge"
    # a list forced to value the playbook's action by the model of that choice needs it to show value
    pooled = CONFIG.with_uplift(ranking="uplift", playbook_effect="pooled")
    weak_choice = unproven | {"uplift_qini_low": 0.002, "uplift_playbook_model": 1.0}
    decision, why = decide(weak_choice | {"uplift_qini_playbook_action_low": -0.0004}, None, pooled)
    assert not decision and "first model fails" in why and "playbook's choice" in why and "-0.0004" in why
    assert decide(weak_choice | {"uplift_qini_playbook_action_low": 0.0004}, None, pooled)[0]
    # per-segment AUC is judged against a champion only
    assert decide(GOOD | {"auc.region.North": 0.40}, None, CONFIG)[0]


def test_decide__a_list_ranked_by_uplift_needs_uplift_models_with_incremental_value():
    better = GOOD | {"roc_auc": 0.81, "net_saving": 1100.0, "uplift_models": 1.0}
    by_uplift = CONFIG.with_uplift(ranking="uplift")
    decision, why = decide(better | {"uplift_qini_low": -0.001}, GOOD, by_uplift)
    assert not decision and "no incremental value" in why and "-0.0010" in why
    assert decide(better | {"uplift_qini_low": 0.002}, GOOD, by_uplift)[0]
    assert decide(better | {"uplift_qini_low": -0.001}, GOOD, CONFIG)[0], "ranked by probability: not a gate"
    # models without the figure (too few campaign rows) have shown nothing: blocked too
    decision, why = decide(better, GOOD, by_uplift)
    assert not decision and "no cross-fitted figure" in why
    # no uplift models at all: the list falls back to probability, nothing to judge
    assert decide(better | {"uplift_models": 0.0}, GOOD, by_uplift)[0]


def test_decide__uplift_worse_than_the_champions_on_the_same_campaigns_blocks_a_list_ranked_by_it():
    better = GOOD | {"roc_auc": 0.81, "net_saving": 1100.0, "uplift_models": 1.0}
    worse = {"uplift_qini_same_rows": 0.001, "uplift_qini_gain_low": -0.009, "uplift_qini_gain_high": -0.002}
    champion = GOOD | {"uplift_qini_same_rows": 0.006}
    # auto: the challenger's own held-out interval is above zero, so its list would rank by uplift
    decision, why = decide(better | worse | {"uplift_qini_low": 0.001}, champion, CONFIG)
    assert not decision and "worse than the champion's" in why and "0.0010 vs 0.0060" in why
    # the interval of the difference includes zero: no evidence it is worse
    assert decide(
        better | worse | {"uplift_qini_low": 0.001, "uplift_qini_gain_high": 0.001}, champion, CONFIG
    )[0]
    # auto, and the challenger's list falls back to probability: the uplift models are not used
    assert decide(better | worse | {"uplift_qini_low": -0.001}, champion, CONFIG)[0]


def test_decide__a_list_valued_by_the_playbook_choice_model_needs_that_model_to_show_value():
    better = GOOD | {"roc_auc": 0.81, "net_saving": 1100.0, "uplift_qini_low": 0.002}
    better |= {"uplift_models": 1.0, "uplift_playbook_model": 1.0}
    pooled = CONFIG.with_uplift(ranking="uplift", playbook_effect="pooled")
    weak = better | {"uplift_qini_playbook_action_low": -0.0002}
    decision, why = decide(weak, GOOD, pooled)
    assert not decision and "playbook's choice shows no incremental value" in why and "-0.0002" in why
    assert decide(better | {"uplift_qini_playbook_action_low": 0.0011}, GOOD, pooled)[0]
    # auto values the list by that model only above zero, and per_action never: no gate
    assert decide(weak, GOOD, CONFIG.with_uplift(ranking="uplift"))[0]
    assert decide(weak, GOOD, CONFIG.with_uplift(ranking="uplift", playbook_effect="per_action"))[0]
    # a list ranked by probability uses no uplift model at all
    assert decide(weak, GOOD, CONFIG.with_uplift(ranking="probability", playbook_effect="pooled"))[0]
    # the model without its figure (thin folds) has shown nothing: blocked while pooled is forced
    decision, why = decide(better, GOOD, pooled)
    assert not decision and "playbook's choice" in why and "no cross-fitted figure" in why
    # no model of the playbook's choice: the list values by any contact plus the offset
    assert decide(better | {"uplift_playbook_model": 0.0}, GOOD, pooled)[0]


def test_decide__a_playbook_choice_model_worse_than_the_champions_blocks_only_where_it_values_the_list():
    better = GOOD | {"roc_auc": 0.81, "net_saving": 1100.0, "uplift_qini_low": 0.002}
    better |= {"uplift_models": 1.0, "uplift_playbook_model": 1.0, "uplift_qini_playbook_action_low": 0.001}
    worse = {
        "uplift_qini_playbook_action_same_rows": 0.002,
        "uplift_qini_playbook_action_gain_low": -0.011,
        "uplift_qini_playbook_action_gain_high": -0.001,
    }
    champion = GOOD | {"uplift_qini_playbook_action_same_rows": 0.009}
    # auto, and the model's own interval is above zero: it values the list, so it is compared
    decision, why = decide(better | worse, champion, CONFIG)
    assert not decision and "models of the playbook's choice rank the same held-out campaigns worse" in why
    assert "0.0020 vs 0.0090" in why and "-0.0110 .. -0.0010" in why
    # forced pooled: the same
    assert not decide(
        better | worse, champion, CONFIG.with_uplift(ranking="uplift", playbook_effect="pooled")
    )[0]
    # the difference's interval reaches zero: no evidence it is worse
    assert decide(better | worse | {"uplift_qini_playbook_action_gain_high": 0.0004}, champion, CONFIG)[0]
    # the model does not value the list: auto below zero, per_action, choose best, or a probability list
    assert decide(better | worse | {"uplift_qini_playbook_action_low": -0.001}, champion, CONFIG)[0]
    for other in (
        CONFIG.with_uplift(playbook_effect="per_action"),
        CONFIG.with_uplift(choose="best"),
        CONFIG.with_uplift(ranking="probability", playbook_effect="pooled"),
    ):
        assert decide(better | worse, champion, other)[0], other.uplift


def test_customer_value__margins_by_kind_fees_and_discounting():
    products = {
        "current_account": {"kind": "deposit", "balance_margin": 0.02, "annual_fee_margin": 60},
        "savings": {"kind": "deposit", "balance_margin": 0.01, "annual_fee_margin": 0},
        "mortgage": {"kind": "loan", "balance_margin": 0.01, "annual_fee_margin": 0},
    }
    features = pd.DataFrame(
        {
            "has_current_account": [1],
            "has_savings": [1],
            "has_mortgage": [0],
            "deposits_latest": [10_000.0],
            "investments_latest": [np.nan],
            "loans_latest": [50_000.0],
        }
    )
    margin = 10_000 * 0.015 + 60  # deposits earn the mean of the two deposit products held; no mortgage held
    assert customer_value(features, len(features), products, years=1, discount_rate=0.0)[0] == pytest.approx(
        margin
    )
    assert customer_value(features, len(features), products, years=2, discount_rate=0.1)[0] == pytest.approx(
        margin * (1 / 1.1 + 1 / 1.21)
    )
