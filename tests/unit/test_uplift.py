"""Learned uplift: the shrinkage toward the playbook, the effect fit, and how the list chooses."""

from __future__ import annotations

import numpy as np
import pytest

from churn.config import load_config
from serving.actions import choose
from serving.uplift_model import CONTACT, UpliftModel


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

    def uplift(self, x, probability, effects, pooled=False, offsets=True):
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

    def uplift(self, x, probability, effects, pooled=False, offsets=True):
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
        def uplift(self, x, probability, effects, pooled=False, offsets=True):
            rows = x[:, 0].astype(int)
            return {a: self.table[a][rows] for a in effects}

    bundle = _Bundle(_ByRow(table))
    args = (np.arange(4.0)[:, None], np.full(4, 0.03), value, reportable)
    assert uplift_candidates(bundle, *args, uplift).tolist() == [True, False, False, False]
    assert not uplift_candidates(bundle, *args, config, ranking="probability").any()
    off = uplift.with_uplift(candidate_saving=None)
    assert not uplift_candidates(bundle, *args, off).any()
    assert not uplift_candidates(_Bundle(None), *args, uplift).any()


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
