"""Learned uplift: the Qini figure, the shrinkage toward the playbook, and how the list chooses."""

from __future__ import annotations

import numpy as np
import pytest

from churn.config import load_config
from serving.actions import choose
from serving.uplift_model import CONTACT, UpliftModel, apply_effect
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


def test_fit_effect__recovers_the_relative_effect_where_it_lies_across_groups_of_different_propensity():
    x, campaign, treated, risk, churn = _two_groups()
    e = propensity(treated, campaign.astype(int))
    effect = fit_effect(x[:, None], churn.astype(float), treated, e, risk)
    relative = apply_effect(np.array([[-1.5], [1.5]]), effect)
    assert relative[0] > -0.25 and relative[1] < -0.4, relative
    naive = fit_effect(x[:, None], churn.astype(float), treated, np.full(x.size, treated.mean()), risk)
    assert apply_effect(np.array([[-1.5]]), naive)[0] < relative[0] - 0.1, "without the design's propensity"


def _effects(contact: float, per_action: dict[str, float]) -> dict:
    """Constant relative effects: `contact` for any contact, and each action's on top of it."""
    basis = {"numeric": ["a", "b"], "mean": [0.0, 0.0], "scale": [1.0, 1.0], "levels": {}}
    return {"basis": basis, CONTACT: {"b": contact, "w": [0.0, 0.0]}} | {
        a: {"b": v, "w": [0.0, 0.0]} for a, v in per_action.items()
    }


def _model(shares: dict[str, float], contact: float = -0.1, action: float = -0.4) -> UpliftModel:
    """Any contact takes away 10% of the churn risk; each action in `shares` another 40%."""
    actions = list(load_config().playbook.actions)
    effects = _effects(contact, dict.fromkeys(shares, action))
    return UpliftModel(
        {"actions": actions, "learned_share": shares, "feature_names": ["a", "b"], "effects": effects}
    )


def test_uplift_model__relative_to_the_risk_shrunk_toward_the_playbook_and_round_trips(tmp_path):
    model = _model({"rate_offer": 0.25})
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [2.0, 5.0]])
    p = np.array([0.2, 0.5, 0.0, 1.0])
    learned = model.learned(x, p)
    np.testing.assert_allclose(learned["rate_offer"], 0.5 * p, atol=1e-9)
    assert set(learned) == {"rate_offer"}, "an action without a model of its own has no learned uplift"
    blended = model.uplift(x, p, {"rate_offer": 0.3, "retention_call": 0.15})
    expected = 0.25 * learned["rate_offer"] + 0.75 * p * 0.3
    np.testing.assert_allclose(blended["rate_offer"], expected, atol=1e-9)
    np.testing.assert_allclose(blended["retention_call"], p * 0.15)  # no model: the playbook's effect
    loaded = UpliftModel.load(model.save(tmp_path / "uplift"))
    np.testing.assert_allclose(loaded.uplift(x, p, {"rate_offer": 0.3})["rate_offer"], expected, atol=1e-9)
    assert UpliftModel.load(tmp_path / "nothing") is None


def test_uplift_model__a_harmful_contact_adds_at_most_the_risk_that_is_left():
    model = _model({"retention_call": 1.0}, contact=3.0, action=0.0)
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(model.learned(np.zeros((3, 2)), p)["retention_call"], [-0.3, -0.5, -0.1])


class _Bundle:
    def __init__(self, uplift):
        self.uplift = uplift


class _FixedUplift:
    """Uplift per action as given (columns), every share learned."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table, self.learned_share = table, dict.fromkeys(table, 1.0)

    def uplift(self, x, probability, effects, pooled=False):
        return {a: self.table.get(a, np.full(len(x), -1.0)) for a in effects}

    def take_up_floor(self, share):
        return None  # no take-up model, so no floor whatever the configured share (UpliftModel's rule)


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_choose__the_best_allowed_action_never_a_rate_offer_for_a_service_failure(config):
    config = config.with_uplift(choose="best")
    names = list(config.playbook.actions)
    n = 3
    table = {a: np.full(n, 0.01) for a in names}
    table["rate_offer"] = np.full(n, 0.5)  # the best by far, for everyone
    kinds = np.array(["service_failure", "competitive", "natural"], dtype=object)
    out = choose(
        _Bundle(_FixedUplift(table)),
        np.zeros((n, 2)),
        np.full(n, 0.3),
        np.full(n, 10_000.0),
        np.full(n, "retention_call", dtype=object),
        kinds,
        np.ones(n, dtype=bool),
        config,
        ranking="uplift",
    )
    assert out["action"][0] != "rate_offer" and out["action"][1] == "rate_offer"
    assert out["action"][2] in config.uplift.allowed["natural"]
    assert out["expected_saving"][1] == pytest.approx(
        0.5 * 10_000 - config.playbook.actions["rate_offer"].cost
    )
    assert "uplift +50.0 points" in out["action_why"][1]
    assert not out["sleeping_dog"].any()


def test_choose__every_allowed_action_harmful_is_a_predicted_sleeping_dog_probability_mode_keeps_the_playbook(
    config,
):
    names = list(config.playbook.actions)
    table = {a: np.array([-0.02, 0.02]) for a in names}
    args = (
        np.zeros((2, 2)),
        np.full(2, 0.3),
        np.full(2, 5_000.0),
        np.array(["retention_call", "rate_offer"], dtype=object),
        np.array(["unclear", "competitive"], dtype=object),
        np.ones(2, dtype=bool),
        config,
    )
    out = choose(_Bundle(_FixedUplift(table)), *args, ranking="uplift")
    assert out["sleeping_dog"].tolist() == [True, False]
    kept = choose(_Bundle(_FixedUplift(table)), *args, ranking="probability")
    assert kept["action"].tolist() == ["retention_call", "rate_offer"]
    assert kept["uplift"][1] == pytest.approx(0.3 * config.playbook.actions["rate_offer"].effect)
    assert "playbook rule" in kept["action_why"][0]
    # ranked by probability, each row still says what the learned models expect of its action
    offer = config.playbook.actions["rate_offer"]
    assert kept["expected_saving"][1] == pytest.approx(0.3 * offer.effect * 5_000 - offer.cost)
    assert (
        f"uplift models: +2.0 points (100% learned), saving {0.02 * 5_000 - offer.cost:,.0f}"
        in (kept["action_why"][1])
    )
    assert "uplift models: -2.0 points" in kept["action_why"][0]
    unproven = _FixedUplift(table)
    unproven.learned_share = dict.fromkeys(table, 0.0)  # no randomised evidence: no learned figure
    said = choose(_Bundle(unproven), *args, ranking="probability")["action_why"][1]
    assert "too little randomised evidence" in said and "points" not in said.split(";")[1]


class _RowUplift(_FixedUplift):
    """Uplift per action that reads the rows it is given: the first feature x the action's scale."""

    def __init__(self, scale: dict[str, float]):
        super().__init__(dict.fromkeys(scale))
        self.scale = scale

    def uplift(self, x, probability, effects, pooled=False):
        return {a: x[:, 0] * self.scale.get(a, 0.5) for a in effects}


def test_choose__probability_mode_states_each_reportable_rows_learned_figure_for_its_own_action(config):
    """Three rows, the middle one below the reporting threshold: the first and last say what the
    models expect of their own action (read from their own rows), the middle says nothing."""
    x = np.array([[0.01], [0.5], [0.03]])
    out = choose(
        _Bundle(_RowUplift({"retention_call": 1.0, "rate_offer": 2.0})),
        x,
        np.full(3, 0.3),
        np.full(3, 5_000.0),
        np.array(["retention_call", "rate_offer", "rate_offer"], dtype=object),
        np.array(["unclear", "competitive", "competitive"], dtype=object),
        np.array([True, False, True]),
        config,
        ranking="probability",
    )
    costs = {a: config.playbook.actions[a].cost for a in ("retention_call", "rate_offer")}
    assert (
        f"uplift models: +1.0 points (100% learned), saving {0.01 * 5_000 - costs['retention_call']:,.0f}"
        in (out["action_why"][0])
    )
    assert (
        f"uplift models: +6.0 points (100% learned), saving {0.06 * 5_000 - costs['rate_offer']:,.0f}"
        in (out["action_why"][2])
    )
    assert out["action_why"][1] is None and out["action"][1] is None


def _proven(low: float | None) -> _FixedUplift:
    model = _FixedUplift({a: np.array([0.05, 0.05]) for a in ("retention_call", "rate_offer")})
    model.meta = (
        {} if low is None else {"held_out": {"qini": low + 0.002, "qini_low": low, "qini_high": low + 0.004}}
    )
    return model


@pytest.mark.parametrize(
    ("low", "expected", "said"),
    [
        (0.0012, "uplift", "above zero"),
        (-0.0003, "probability", "includes zero"),
        (-0.0050, "probability", "below zero"),
        (None, "probability", "no held-out"),
    ],
)
def test_ranking_mode__auto_ranks_by_uplift_only_once_its_held_out_qini_interval_is_above_zero(
    config, low, expected, said
):
    from serving.actions import ranking_mode

    assert config.uplift.ranking == "auto", "the shipped default"
    mode, why = ranking_mode(_Bundle(_proven(low)), config)
    assert mode == expected and said in why
    assert ranking_mode(_Bundle(None), config)[0] == "probability", "no uplift models: today's ranking"
    assert ranking_mode(_Bundle(_proven(-0.0003)), config, "uplift")[0] == "uplift", "asked for: obeyed"
    # and the list follows it: the unproven model leaves the playbook's action and its rule
    args = (
        np.zeros((2, 2)),
        np.full(2, 0.3),
        np.full(2, 5_000.0),
        np.array(["retention_call", "retention_call"], dtype=object),
        np.array(["competitive", "competitive"], dtype=object),
        np.ones(2, dtype=bool),
        config,
    )
    out = choose(_Bundle(_proven(low)), *args)
    assert ("playbook rule" in out["action_why"][0]) == (expected == "probability")


def test_uplift_candidates__below_the_threshold_only_where_the_best_action_saves_the_floor(config):
    from serving.actions import uplift_candidates

    names = list(config.playbook.actions)
    cost = config.playbook.actions["retention_call"].cost
    table = {a: np.full(4, -0.01) for a in names}
    table["retention_call"] = np.full(4, 0.01)  # one point of churn taken away
    floor = config.uplift.candidate_saving
    # worth: saves the floor exactly; the second just under it; the third above the threshold
    # (listed anyway); the fourth a loss
    value = np.array([100 * (floor + cost), 100 * (floor + cost) - 1, 1e6, 10.0])
    reportable = np.array([False, False, True, False])
    uplift = config.with_uplift(ranking="uplift")

    class _ByRow(_FixedUplift):  # the rows asked for: x's first column is the row number
        def uplift(self, x, probability, effects, pooled=False):
            rows = x[:, 0].astype(int)
            return {a: self.table[a][rows] for a in effects}

    bundle = _Bundle(_ByRow(table))
    args = (np.arange(4.0)[:, None], np.full(4, 0.03), value, reportable)
    assert uplift_candidates(bundle, *args, uplift).tolist() == [True, False, False, False]
    assert not uplift_candidates(bundle, *args, config, ranking="probability").any()
    off = uplift.with_uplift(candidate_saving=None)
    assert not uplift_candidates(bundle, *args, off).any()
    assert not uplift_candidates(_Bundle(None), *args, uplift).any()


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


def test_choose__a_playbook_action_its_kind_does_not_allow_keeps_the_playbook_figures(config):
    """`choose: playbook` with a rule that picks an action the kind of churn does not allow (a bank's
    own playbook): the row keeps the playbook's action and saving, not an arbitrary one at -inf."""
    assert config.uplift.choose == "playbook", "the shipped default"
    names = list(config.playbook.actions)
    out = choose(
        _Bundle(_FixedUplift({a: np.full(2, 0.05) for a in names})),
        np.zeros((2, 2)),
        np.full(2, 0.3),
        np.full(2, 5_000.0),
        np.array(["rate_offer", "rate_offer"], dtype=object),
        np.array(["natural", "competitive"], dtype=object),  # natural allows no rate offer
        np.ones(2, dtype=bool),
        config,
        ranking="uplift",
    )
    offer = config.playbook.actions["rate_offer"]
    assert out["action"].tolist() == ["rate_offer", "rate_offer"]
    assert out["expected_saving"][0] == pytest.approx(0.3 * offer.effect * 5_000 - offer.cost)
    assert "playbook rule" in out["action_why"][0] and "learned" in out["action_why"][1]
    assert np.isfinite(out["expected_saving"]).all() and not out["sleeping_dog"].any()


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
