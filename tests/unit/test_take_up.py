"""The take-up model and what the list does with it: the "unlikely to respond" floor, the take-up
weight on the saving, and effect models that read the take-up score (`uplift.effect_input`)."""

from __future__ import annotations

import numpy as np
import pytest

from churn.config import load_config
from serving.actions import choose
from serving.uplift_model import CONTACT, UpliftModel
from tests.unit.test_uplift import _Bundle, _model


@pytest.fixture(scope="module")
def config():
    return load_config()


def _take_up_booster(seed: int = 4):
    """P(accepted) rising with the first feature: a real LightGBM take-up model."""
    import lightgbm as lgb

    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (4_000, 2))
    accepted = (rng.random(4_000) < 0.1 + 0.6 * x[:, 0]).astype(int)
    data = lgb.Dataset(x, accepted)
    return lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": seed}, data, 40), x


def test_take_up_model__its_floor_is_a_share_of_the_reference_and_round_trips(tmp_path):
    booster, x = _take_up_booster()
    model = _model({"rate_offer": 0.5})
    assert model.take_up_floor(0.3) is None, "no take-up model: no floor"
    model.take_up_model = booster
    assert model.take_up_floor(0.3) is None, "no reference population: no floor"
    model.take_up_reference(x, "every test row")
    take_up = model.take_up(x)
    assert np.mean(take_up < model.take_up_floor(0.3)) == pytest.approx(0.3, abs=0.03)
    assert model.take_up_floor(0.0) is None
    loaded = UpliftModel.load(model.save(tmp_path / "uplift"))
    np.testing.assert_allclose(loaded.take_up(x), take_up)
    assert loaded.take_up_floor(0.3) == pytest.approx(model.take_up_floor(0.3))


def test_take_up_floor__the_least_likely_responders_are_not_contacted_and_told_why(config):
    from serving.policy import decide_contacts

    booster, reference = _take_up_booster()
    model = _model({"retention_call": 1.0})
    model.take_up_model = booster
    model.take_up_reference(reference, "every test row")
    x = np.array([[0.05, 0.5], [0.95, 0.5], [0.9, 0.1]])  # the first unlikely to accept
    n = len(x)
    args = (
        x,
        np.full(n, 0.4),
        np.full(n, 20_000.0),
        np.full(n, "retention_call", dtype=object),
        np.full(n, "unclear", dtype=object),
        np.ones(n, dtype=bool),
    )
    off = config.with_uplift(take_up_floor=0.0)
    without = choose(_Bundle(model), *args, off, ranking="uplift")
    assert (without["unlikely_to_respond"] == None).all(), "0 is off"  # noqa: E711
    floored = config.with_uplift(take_up_floor=0.35)
    out = choose(_Bundle(model), *args, floored, ranking="uplift")
    assert out["unlikely_to_respond"][1:].tolist() == [None, None]
    assert out["unlikely_to_respond"][0].startswith("unlikely to respond: predicted take-up")
    decided = decide_contacts(
        {
            "reportable": np.ones(n, dtype=bool),
            "do_not_contact": np.zeros(n, dtype=bool),
            "control_group": np.zeros(n, dtype=bool),
            "days_since_last_contact": np.full(n, np.nan),
            "contacts_last_quarter": np.zeros(n),
            "expected_saving": out["expected_saving"],
            "sleeping_dog": out["sleeping_dog"],
            "unlikely_to_respond": out["unlikely_to_respond"],
            "owner": np.full(n, config.playbook.actions["retention_call"].owner, dtype=object),
            "branch_id": np.full(n, "1", dtype=object),
        },
        floored.contact_policy,
        floored.playbook,
    )
    assert decided["contact"].tolist() == [False, True, True]
    assert decided["contact_rule"][0] == out["unlikely_to_respond"][0]


def test_take_up_floor__the_list_says_whether_it_applied_and_counts_its_rule_once(config):
    import pandas as pd

    from serving.actions import take_up_floor_state
    from serving.list_summary import ListDigest

    booster, reference = _take_up_booster()
    model = _model({"retention_call": 1.0})
    bundle = _Bundle(model)
    assert take_up_floor_state(bundle, config, "probability").startswith("not applied")
    assert take_up_floor_state(bundle, config, "uplift").startswith("off: the uplift models have no take-up")
    model.take_up_model = booster
    model.take_up_reference(reference, "every test row")
    share = config.uplift.take_up_floor
    floor = model.take_up_floor(share)
    assert take_up_floor_state(bundle, config, "uplift") == (
        f"below {floor:.0%} predicted take-up not contacted (the lowest {share:.0%} of the customers at risk)"
    )
    off = config.with_uplift(take_up_floor=0.0)
    assert take_up_floor_state(bundle, off, "uplift") == "off (uplift.take_up_floor 0)"
    # the list's summary counts the floor's rule once, whatever each customer's predicted take-up
    x = np.column_stack([np.linspace(0.0, 0.3, 40), np.full(40, 0.5)])
    n = len(x)
    out = choose(
        bundle,
        x,
        np.full(n, 0.4),
        np.full(n, 20_000.0),
        np.full(n, "retention_call", dtype=object),
        np.full(n, "unclear", dtype=object),
        np.ones(n, dtype=bool),
        config,
        ranking="uplift",
    )
    rules = pd.Series(out["unlikely_to_respond"]).dropna()
    assert rules.nunique() > 3, "each customer's own take-up in the row's text"
    rows = pd.DataFrame(
        {
            "status": "scored",
            "contact": False,
            "list_rank": range(len(rules)),
            "risk_tier": "high",
            "value_at_risk": 1.0,
            "control_group": False,
            "segment": "mass",
            "region": "north",
            "reason_1_code": "FEES",
            "churn_type": "unclear",
            "contact_rule": rules.to_numpy(),
        }
    )
    decisions = ListDigest.of(rows).decisions
    assert decisions.to_dict() == {
        f"unlikely to respond: predicted take-up below {floor:.0%} (the lowest {share:.0%} of the customers at risk)": len(
            rules
        )
    }


def test_take_up_weight__weighs_the_saving_by_take_up_against_the_median_at_risk(config):
    booster, reference = _take_up_booster()
    model = _model({"retention_call": 1.0})
    model.take_up_model = booster
    model.take_up_reference(reference, "every test row")
    median = model.take_up_floor(0.5)
    x = np.array([[0.05, 0.5], [0.95, 0.5]])  # unlikely, likely to accept
    take_up = model.take_up(x)
    args = (
        x,
        np.full(2, 0.4),
        np.full(2, 20_000.0),
        np.full(2, "retention_call", dtype=object),
        np.full(2, "unclear", dtype=object),
        np.ones(2, dtype=bool),
    )
    plain = choose(_Bundle(model), *args, config, ranking="uplift")
    assert model.take_up_factor(x, 0.0) is None and "take-up factor" not in plain["action_why"][0]
    weighed = config.with_uplift(take_up_weight=1.0)
    out = choose(_Bundle(model), *args, weighed, ranking="uplift")
    cost = config.playbook.actions["retention_call"].cost
    factor = np.minimum(take_up / median, 2.0)
    assert factor[0] < 0.5 < 1.0 < factor[1], "the test's customers straddle the median"
    np.testing.assert_allclose(out["expected_saving"] + cost, (plain["expected_saving"] + cost) * factor)
    np.testing.assert_allclose(out["uplift"], plain["uplift"])  # the uplift shown is the learned one
    assert f"take-up factor {factor[0]:.2f}" in out["action_why"][0]
    squared = config.with_uplift(take_up_weight=2.0)
    np.testing.assert_allclose(model.take_up_factor(x, 2.0), np.minimum((take_up / median) ** 2, 2.0))
    assert (
        choose(_Bundle(model), *args, squared, ranking="uplift")["expected_saving"][0]
        < out["expected_saving"][0]
    )


def test_take_up_effect_input__the_effects_read_the_take_up_score_and_round_trip(tmp_path):
    booster, x = _take_up_booster()
    odds = np.log(booster.predict(x) / (1 - booster.predict(x)))
    basis = {"take_up": {"mean": float(odds.mean()), "scale": float(odds.std())}}
    # any contact takes away 10% of the risk at the mean take-up, 5 points more per scale above it
    effects = {"basis": basis, CONTACT: {"b": -0.1, "w": [-0.05]}, "rate_offer": {"b": 0.0, "w": [0.0]}}
    meta = {"actions": ["rate_offer"], "learned_share": {"rate_offer": 1.0}, "feature_names": ["a", "b"]}
    model = UpliftModel(meta | {"effects": effects}, booster, booster)
    rows = np.array([[0.05, 0.5], [0.5, 0.5], [0.95, 0.5]])  # unlikely .. likely to accept
    p = np.full(3, 0.4)
    lift = model.learned(rows, p)["rate_offer"]
    assert lift[0] < lift[1] < lift[2], "the likelier to accept, the more a contact takes away"
    z = (np.log(booster.predict(rows) / (1 - booster.predict(rows))) - basis["take_up"]["mean"]) / basis[
        "take_up"
    ]["scale"]
    np.testing.assert_allclose(lift, 0.4 * (0.1 + 0.05 * z))
    loaded = UpliftModel.load(model.save(tmp_path / "uplift"))
    np.testing.assert_allclose(loaded.learned(rows, p)["rate_offer"], lift)
    assert loaded.held_out_take_up_model is not None, "the promotion comparison's take-up model"
    with pytest.raises(ValueError, match="take-up"):
        UpliftModel(meta | {"effects": effects}).learned(rows, p)
