"""Learned uplift: the Qini figure, the shrinkage toward the playbook, and how the list chooses."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from churn.config import load_config
from serving.actions import choose
from serving.uplift_model import BASE, CONTACT, UpliftModel
from training.uplift import qini


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


def _base_booster(value: float, features: int = 3) -> lgb.Booster:
    """A one-tree booster predicting `value` (log-odds) everywhere (the features and the selection flag)."""
    x = np.zeros((50, features))
    y = np.r_[np.ones(25), np.zeros(25)]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 2, "min_data_in_leaf": 1},
        lgb.Dataset(x, y, init_score=np.full(50, value)),
        num_boost_round=1,
    )
    return lgb.Booster(model_str=booster.model_to_string())


def _model(shares: dict[str, float], action_offset: float = -1.0) -> UpliftModel:
    actions = list(load_config().playbook.actions)
    linear = {
        "features": ["a", "b"],
        "mean": [0.0, 0.0],
        "scale": [1.0, 1.0],
        "offsets": {CONTACT: {"b": 0.0, "w": [0.5, 0.0]}}
        | {a: {"b": action_offset, "w": [0.0, 0.0]} for a in shares},
    }
    meta = {"actions": actions, "learned_share": shares, "linear": linear, "feature_names": ["a", "b"]}
    return UpliftModel(meta, {BASE: _base_booster(0.0)})


def test_uplift_model__shrinks_toward_the_playbook_by_the_evidence_and_round_trips(tmp_path):
    model = _model({"rate_offer": 0.25})
    x = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [2.0, 5.0]])
    learned = model.learned(x)
    base = 1 / (1 + np.exp(-model.boosters[BASE].predict(np.column_stack([x, np.zeros(4)]), raw_score=True)))
    np.testing.assert_allclose(
        learned["rate_offer"], base - 1 / (1 + np.exp(-(np.log(base / (1 - base)) + 0.5 * x[:, 0] - 1.0)))
    )
    assert set(learned) == {"rate_offer"}, "an action without an offset has no learned uplift"
    p = np.full(4, 0.2)
    blended = model.uplift(x, p, {"rate_offer": 0.3, "retention_call": 0.15})
    expected = 0.25 * learned["rate_offer"] + 0.75 * p * 0.3
    np.testing.assert_allclose(blended["rate_offer"], expected)
    np.testing.assert_allclose(blended["retention_call"], p * 0.15)  # no model: the playbook's effect
    loaded = UpliftModel.load(model.save(tmp_path / "uplift"))
    np.testing.assert_allclose(loaded.uplift(x, p, {"rate_offer": 0.3})["rate_offer"], expected)
    assert UpliftModel.load(tmp_path / "nothing") is None


class _Bundle:
    def __init__(self, uplift):
        self.uplift = uplift


class _FixedUplift:
    """Uplift per action as given (columns), every share learned."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table, self.learned_share = table, dict.fromkeys(table, 1.0)

    def uplift(self, x, probability, effects):
        return {a: self.table.get(a, np.full(len(x), -1.0)) for a in effects}


@pytest.fixture(scope="module")
def config():
    return load_config()


def test_choose__the_best_allowed_action_never_a_rate_offer_for_a_service_failure(config):
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
