"""How learned uplift is evaluated: the Qini figure, its design weights and risk adjustment, the
customer folds of the cross-fit, the intervals that resample whole customers, and the R-loss effect
fit on the same kind of randomised groups."""

from __future__ import annotations

import numpy as np
import pytest

from serving.uplift_model import apply_effect
from training.uplift_effects import fit_effect
from training.uplift_eval import propensity, qini


def _randomised(n: int = 20_000, seed: int = 3):
    """Half treated at random; treatment halves churn where x > 0 and doubles it where x < 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < 0.5
    base = 0.2
    p = np.where(treated, np.where(x > 0, base / 2, base * 2), base)
    return x, treated, rng.random(n) < p


def test_qini__positive_for_the_true_ranking_negative_reversed_near_zero_at_random():
    x, treated, churn = _randomised()
    _, right = qini(x, treated, churn)
    _, reversed_ = qini(-x, treated, churn)
    _, random = qini(np.random.default_rng(0).random(x.size), treated, churn)
    assert right > 0.02 and reversed_ < -0.02
    assert abs(random) < 0.01


def _two_groups(n: int = 40_000, seed: int = 5):
    """A targeted campaign (risky customers, 90% contacted) and an exploration (safe customers, 10%
    contacted); a contact halves the risk where x > 0 and does nothing where x < 0."""
    rng = np.random.default_rng(seed)
    campaign = rng.random(n) < 0.5
    x = rng.normal(size=n) + 1.5 * campaign
    treated = rng.random(n) < np.where(campaign, 0.9, 0.1)
    risk = np.where(campaign, 0.3, 0.03)
    p = risk * np.where(treated & (x > 0), 0.5, 1.0)
    return x, campaign, treated, risk, rng.random(n) < p


def test_qini__weighted_by_the_design_propensity_a_score_that_only_sorts_groups_is_not_credited():
    x, campaign, treated, _, churn = _two_groups()
    no_effect = np.random.default_rng(1).random(x.size) < np.where(campaign, 0.3, 0.03)
    e = propensity(treated, campaign.astype(int))
    weight = np.where(treated, 1 / e, 1 / (1 - e))
    _, naive = qini(x, treated, no_effect)
    _, weighted = qini(x, treated, no_effect, weight)
    assert naive < -0.008, "treated rows from the risky group against controls from the safe one"
    assert abs(weighted) < 0.003
    _, real = qini(x, treated, churn, weight)
    assert real > 0.008, "the score does rank where the contact works"


def test_fit_effect__recovers_the_relative_effect_where_it_lies_across_groups_of_different_propensity():
    x, campaign, treated, risk, churn = _two_groups()
    e = propensity(treated, campaign.astype(int))
    effect = fit_effect(x[:, None], churn.astype(float), treated, e, risk)
    relative = apply_effect(np.array([[-1.5], [1.5]]), effect)
    assert relative[0] > -0.25 and relative[1] < -0.4, relative
    naive = fit_effect(x[:, None], churn.astype(float), treated, np.full(x.size, treated.mean()), risk)
    assert apply_effect(np.array([[-1.5]]), naive)[0] < relative[0] - 0.1, "without the design's propensity"


def _varied_risk(n: int, rng: np.random.Generator):
    """Two randomised groups, as a bank runs them: a targeted campaign (riskier, 80% contacted)
    and an exploration (50%); risk varies a lot between customers (what a churn model sees) and a
    contact halves it where x > 0. Returns x, the risk, treated, churn and the design weights."""
    campaign = rng.random(n) < 0.5
    x = rng.normal(size=n)
    risk = 1 / (1 + np.exp(-(np.where(campaign, -1.0, -2.5) + 1.5 * rng.normal(size=n))))
    treated = rng.random(n) < np.where(campaign, 0.8, 0.5)
    e = propensity(treated, campaign.astype(int))
    weight = np.where(treated, 1 / e, 1 / (1 - e))
    return x, risk, treated, rng.random(n) < risk * np.where(treated & (x > 0), 0.5, 1.0), weight


def test_qini__a_baseline_risk_keeps_the_figure_and_takes_off_the_noise_of_unequal_risk():
    from training.uplift_eval import cluster_interval

    rng = np.random.default_rng(21)
    x, risk, treated, churn, weight = _varied_risk(8_000, rng)
    # a constant baseline changes nothing: only a difference in risk between the arms moves it
    constant = qini(x, treated, churn, weight, baseline=np.full(x.size, 0.3))[1]
    assert constant == pytest.approx(qini(x, treated, churn, weight)[1])
    assert qini(x, treated, churn, weight, baseline=risk)[1] != pytest.approx(constant), "not ignored"
    # its interval, resampling customers, is narrower around the adjusted figure
    customer = np.arange(x.size)
    low, high = cluster_interval(x, treated, churn, weight, customer, 200, 0, baseline=risk)
    plain_low, plain_high = cluster_interval(x, treated, churn, weight, customer, 200, 0)
    assert low < qini(x, treated, churn, weight, baseline=risk)[1] < high
    assert high - low < 0.9 * (plain_high - plain_low)
    plain, adjusted = [], []
    for _ in range(150):
        x, risk, treated, churn, weight = _varied_risk(8_000, rng)
        plain.append(qini(x, treated, churn, weight)[1])
        adjusted.append(qini(x, treated, churn, weight, baseline=risk)[1])
    plain, adjusted = np.array(plain), np.array(adjusted)
    # the same figure on average over 150 histories (paired: the same data both ways), less noise
    gap = adjusted - plain
    assert abs(gap.mean()) < 3 * gap.std() / np.sqrt(gap.size)
    assert adjusted.mean() > 0.01
    assert adjusted.std() < 0.9 * plain.std()


def test_customer_folds__a_customer_in_one_fold_the_same_every_run_about_even():
    from training.uplift_eval import CROSS_FOLDS, customer_folds

    ids = np.repeat(np.arange(1, 5_001), 3)  # every customer in three campaign months
    fold = customer_folds(ids)
    assert set(np.unique(fold)) == set(range(CROSS_FOLDS))
    assert (fold.reshape(-1, 3) == fold.reshape(-1, 3)[:, :1]).all(), "one customer, one fold"
    # fixed by the id and the key alone: these customers fall in these folds in every run, on
    # every machine, whatever else is in the rows
    assert customer_folds(np.array([1, 2, 3, 4, 5, 1001, 123456])).tolist() == [4, 1, 4, 4, 2, 3, 4]
    assert np.bincount(fold).min() > 0.8 * len(ids) / CROSS_FOLDS


def test_cluster_interval__resamples_customers_wider_than_rows_when_customers_repeat():
    """A customer in several months is one piece of evidence, not several: resampling rows would
    count the repeats as independent and give too narrow an interval."""
    from training.uplift_eval import bootstrap_qini, cluster_interval

    x, treated, churn = _randomised(n=6_000, seed=11)
    repeat = 4  # each customer's row four times over (four months alike)
    x, treated, churn = (np.repeat(a, repeat) for a in (x, treated, churn))
    customer = np.repeat(np.arange(6_000), repeat)
    weight = np.ones(len(x))
    low, high = cluster_interval(x, treated, churn, weight, customer, 200, 0)
    row_low, row_high = bootstrap_qini({"a": (x, treated, churn, weight)}, 200, 0, pooled=["a"])["a"]
    assert 0 < low < qini(x, treated, churn)[1] < high
    assert high - low > 1.5 * (row_high - row_low)


def test_qini__a_count_of_draws_is_the_rows_repeated():
    x, treated, churn = _randomised(n=3_000, seed=13)
    count = np.random.default_rng(2).integers(0, 3, x.size)  # a bootstrap's draws: some rows 0
    repeated = np.repeat(np.arange(x.size), count)
    _, by_count = qini(x, treated, churn, np.ones(x.size), count=count)
    _, by_rows = qini(x[repeated], treated[repeated], churn[repeated])
    # equal but where a share's cut falls between the copies of one row (a whole row here)
    assert by_count == pytest.approx(by_rows, rel=2e-3)
    _, ignored = qini(x, treated, churn, np.ones(x.size))
    assert abs(ignored - by_rows) > 10 * abs(by_count - by_rows), "the counts are not ignored"


def test_bootstrap_qini__a_baseline_risk_narrows_the_interval_where_risk_varies():
    """The held-out figures take each outcome less its risk, as the headline does: inside a
    randomised group that changes nothing in expectation, and takes off the chance difference in
    risk between the treated and the controls at each cut."""
    from training.uplift_eval import adjusted_qini, bootstrap_qini

    rng = np.random.default_rng(5)
    n = 8_000
    x, treated = rng.normal(size=n), rng.random(n) < 0.5
    # a bank's campaigns: customers draining their money beside quiet ones, unrelated to who responds
    risk = np.where(rng.random(n) < 0.5, 0.9, 0.03)
    churn = rng.random(n) < np.where(treated & (x > 0), risk / 2, risk)
    weight = np.ones(n)
    plain = bootstrap_qini({"a": (x, treated, churn, weight)}, 200, 0, pooled=["a"])["a"]
    adjusted = bootstrap_qini({"a": (x, treated, churn, weight, risk)}, 200, 0, pooled=["a"])["a"]
    _, figure = adjusted_qini((x, treated, churn, weight, risk))
    assert adjusted[0] < figure < adjusted[1] and adjusted[0] > 0
    assert adjusted[1] - adjusted[0] < 0.85 * (plain[1] - plain[0])
