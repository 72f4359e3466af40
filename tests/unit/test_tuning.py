"""The hyperparameter search's rules: the explanation budget, the compact choice, the search space."""

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.config import DEFAULT_CONFIG, ConfigError, TuningConfig, load_config
from training.tuning import (
    COMPLETE,
    PRUNED,
    TrialSummary,
    choose_trial,
    out_of_time_fold,
    stratified_folds,
)
from training.tuning_space import rounds_within_budget, search_space, shap_cost, tree_leaves

T0 = dt.datetime(2026, 1, 1)


def _trial(number, roc_auc, log_loss, tree_leaves, state=COMPLETE, shap_cost=None):
    """A trial summary; its explanation cost that of stumps (depth 1) unless given."""
    return TrialSummary(
        number=number,
        state=state,
        params={},
        started=T0,
        finished=T0,
        value=log_loss,
        roc_auc=roc_auc,
        log_loss=log_loss,
        tree_leaves=tree_leaves,
        shap_cost=tree_leaves if shap_cost is None else shap_cost,
    )


@pytest.mark.parametrize(
    ("ceiling", "num_leaves", "rounds"), [(4000, 15, 266), (4000, 64, 62), (4000, 4, 1000), (10, 64, 1)]
)
def test_rounds_within_budget__trees_times_leaves_stay_under_the_ceiling(ceiling, num_leaves, rounds):
    # given a ceiling on trees x leaves
    tuning = TuningConfig(max_tree_leaves=ceiling)
    # when the rounds of a model with `num_leaves` leaves per tree are capped
    capped = rounds_within_budget(num_leaves, tuning)
    # then that many full trees fit under the ceiling (at least one tree)
    assert capped == rounds
    assert capped * num_leaves <= ceiling or capped == 1


def test_choose_trial__most_compact_within_the_auc_tolerance():
    # given the best trial (0) and a smaller one close behind, a tiny one far behind, and a pruned one
    trials = [
        _trial(0, 0.800, 0.300, 3000),
        _trial(1, 0.7985, 0.3005, 1200),
        _trial(2, 0.780, 0.3010, 100),
        _trial(3, 0.700, 0.400, 50, state=PRUNED),
    ]
    # when choosing with a 0.002 AUC tolerance
    chosen = choose_trial(trials, best=0, auc_tolerance=0.002, log_loss_tolerance=None)
    # then the smaller trial within the tolerance wins, not the tiny one outside it
    assert chosen == 1


def test_choose_trial__log_loss_tolerance_keeps_flat_small_models_out():
    # given a small trial that ranks as well as the best but has clearly flatter probabilities
    trials = [_trial(0, 0.800, 0.300, 3000), _trial(1, 0.801, 0.310, 200)]
    # when choosing for the log-loss objective with a 0.5% tolerance, and without one
    strict = choose_trial(trials, best=0, auc_tolerance=0.002, log_loss_tolerance=0.005)
    loose = choose_trial(trials, best=0, auc_tolerance=0.002, log_loss_tolerance=None)
    # then only the AUC-only rule takes the small one
    assert (strict, loose) == (0, 1)


def test_choose_trial__a_deep_model_costs_more_to_explain_than_a_shallow_one_with_as_many_leaves():
    # given two trials that rank and fit alike, the first at depth 7 with fewer leaves in all, the
    # second at depth 3 with a few more (as bench-tune's bank search found, 2026-12-07)
    trials = [
        _trial(0, 0.8205, 0.1024, 1624, shap_cost=1624 * 49),
        _trial(1, 0.8206, 0.1026, 1700, shap_cost=1700 * 9),
    ]
    # when choosing for the log-loss objective
    chosen = choose_trial(trials, best=0, auc_tolerance=0.002, log_loss_tolerance=0.005)
    # then the shallow one, which exact TreeSHAP explains about five times faster
    assert chosen == 1


def test_shap_cost__each_trees_leaves_times_its_depth_squared():
    # given boosters of stumps, of depth-3 trees and of deep trees on the same rows
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 6))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=2000) > 0).astype(int)

    def fit(leaves, depth):
        params = {"objective": "binary", "num_leaves": leaves, "max_depth": depth, "verbose": -1}
        return lgb.train(params | {"min_data_in_leaf": 5}, lgb.Dataset(x, y), num_boost_round=5)

    stumps, shallow, deep = fit(2, 1), fit(8, 3), fit(8, 7)
    # then a stump costs its 2 leaves, and a deep tree more than a shallow one of as many leaves
    assert shap_cost(stumps) == 5 * 2 * 1
    assert shap_cost(shallow) == 9 * tree_leaves(shallow)
    assert tree_leaves(deep) == tree_leaves(shallow) and shap_cost(deep) > shap_cost(shallow)


def test_choose_trial__zero_tolerance_is_the_best_trial():
    trials = [_trial(0, 0.790, 0.300, 3000), _trial(1, 0.800, 0.301, 2000), _trial(2, 0.7999, 0.302, 10)]
    assert choose_trial(trials, best=1, auc_tolerance=0.0, log_loss_tolerance=0.0) == 1


def test_search_space__categorical_missing_and_weight_parameters_only_where_they_matter():
    # given a numeric table without gaps, and one with a category and missing values
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.1).astype(int)
    plain = pd.DataFrame({"a": rng.random(200), "b": rng.random(200)})
    mixed = plain.assign(c=pd.Categorical(rng.choice(["x", "y"], 200)))
    mixed.loc[:9, "a"] = np.nan
    # when the spaces are built, with class re-weighting allowed for the second
    off = search_space(plain, y, TuningConfig())
    on = search_space(mixed, y, TuningConfig(search_scale_pos_weight=True))
    # then categorical smoothing, zeros-as-missing and re-weighting appear only where they can matter
    extra = {"cat_smooth", "cat_l2", "min_data_per_group", "zero_as_missing", "scale_pos_weight"}
    assert not extra & set(off)
    assert extra <= set(on)
    assert on["scale_pos_weight"].high == pytest.approx((1 - y.mean()) / y.mean())
    assert on["max_depth"].high == TuningConfig().max_depth


def test_folds__out_of_time_keeps_order_and_stratified_folds_cover_every_row():
    ((fit, valid),) = out_of_time_fold(5, 3)
    assert fit.tolist() == [0, 1, 2, 3, 4] and valid.tolist() == [5, 6, 7]
    y = np.array([0, 1] * 30)
    folds = stratified_folds(y, 3, seed=1)
    assert sorted(np.concatenate([v for _, v in folds]).tolist()) == list(range(60))
    assert all(y[v].mean() == pytest.approx(0.5) for _, v in folds)


@pytest.mark.parametrize(
    ("line", "replacement", "message"),
    [
        (
            "    objective: log_loss",
            "    objective: accuracy",
            r"training\.tuning\.objective: Input should be 'log_loss' or 'roc_auc'",
        ),
        ("    minutes: 10", "    minutes: 0", r"training\.tuning\.minutes: Input should be greater than 0"),
        (
            "    max_tree_leaves: 4000",
            "    max_tree_leaves: 1",
            r"training\.tuning\.max_tree_leaves: Input should be greater than or equal to 2",
        ),
    ],
)
def test_load_config__bad_tuning_value_names_the_key(tmp_path, line, replacement, message):
    # given the default config with one bad value in training.tuning
    text = DEFAULT_CONFIG.read_text()
    assert line in text
    path = tmp_path / "config.yaml"
    path.write_text(text.replace(line, replacement, 1))
    # when it is loaded, then the error names the key and the problem
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_shipped_log_loss__judges_the_probabilities_after_calibration_not_the_raw_scale():
    # given churn labels drawn from known risks, a model that ranks them well on a shifted scale
    # (as a booster does on validation months that drift) and one that ranks worse but is calibrated
    from sklearn.metrics import log_loss

    from training.models import shipped_log_loss

    rng = np.random.default_rng(3)
    logit = rng.normal(-2.5, 1.5, 20_000)
    y = (rng.random(logit.size) < 1 / (1 + np.exp(-logit))).astype(int)
    ranks_well = logit + 2.0
    calibrated_but_noisy = 0.5 * logit - 1.3 + rng.normal(0, 1.0, logit.size)

    def raw(margin):
        return log_loss(y, 1 / (1 + np.exp(-margin)))

    # the raw log-loss prefers the worse ranking...
    assert raw(calibrated_but_noisy) < raw(ranks_well)
    # ...the shipped log-loss the better one, close to what the true risks score
    assert shipped_log_loss(y, ranks_well, seed=1) < shipped_log_loss(y, calibrated_but_noisy, seed=1)
    assert shipped_log_loss(y, ranks_well, seed=1) == pytest.approx(raw(logit), abs=0.005)
