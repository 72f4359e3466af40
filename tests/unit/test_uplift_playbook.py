"""The model of the playbook's own choice: fitted on the contacts that were it, judged on the
held-out ones, and used only where the list keeps the playbook's action."""

from __future__ import annotations

import numpy as np
import pytest

from serving.actions import choose
from tests.unit.test_uplift import _Bundle, _FixedUplift, _model
from training.uplift_effects import fit_effect
from training.uplift_eval import propensity, qini


def _fitting_campaigns(n: int = 80_000, seed: int = 11):
    """Two randomised groups: a campaign contacting 80% of its risky customers, mostly with action
    A, and an exploration contacting 20% of its safe ones, mostly with B. The playbook would choose
    A for most of the campaign's customers and B for most of the exploration's. A contact halves
    the risk where its action is the playbook's choice and does nothing otherwise. Controls the
    playbook has no action for churn far more (they must not count)."""
    rng = np.random.default_rng(seed)
    campaign = rng.random(n) < 0.5
    choice = np.where(rng.random(n) < np.where(campaign, 0.9, 0.2), "A", "B").astype(object)
    contacted = rng.random(n) < np.where(campaign, 0.8, 0.2)
    action = np.where(rng.random(n) < np.where(campaign, 0.8, 0.1), "A", "B")
    arm = np.where(contacted, action, "control").astype(object)
    none = ~contacted & (rng.random(n) < 0.2)
    choice[none] = None
    risk = np.where(campaign, 0.3, 0.1)
    p = np.where(none, 0.9, risk * np.where(arm == choice, 0.5, 1.0))
    group = np.where(campaign, "campaign", "explore")
    return arm, choice, group, risk, (rng.random(n) < p).astype(float)


def test_fit_playbook_effect__recovers_the_fitting_contacts_effect_that_any_contact_averages_away():
    from training.uplift_effects import fit_playbook_effect

    arm, choice, group, risk, churn = _fitting_campaigns()
    z = np.zeros((arm.size, 1))
    effect, contacts, churners = fit_playbook_effect(z, churn, arm, group, choice, risk)
    assert effect["b"] == pytest.approx(-0.5, abs=0.06), effect
    fits = arm == choice
    assert contacts == int(fits.sum()) and churners == int(churn[fits].sum())
    known = np.array([c is not None for c in choice])
    # any contact averages the fitting contacts with those that do nothing
    contacted = arm != "control"
    e = propensity(contacted[known], group[known])
    assert fit_effect(z[known], churn[known], contacted[known], e, risk[known])["b"] > -0.45


def test_fit_playbook_effect__none_without_enough_fitting_contacts_or_any_group_to_compare():
    from training.uplift_effects import fit_playbook_effect

    arm, choice, group, risk, churn = _fitting_campaigns(4_000)
    z = np.zeros((arm.size, 1))
    effect, contacts, _ = fit_playbook_effect(z, churn, arm, group, choice, risk, least=10**6)
    assert effect is None and contacts > 0, "fewer than `least` fitting contacts"
    controls = np.full(arm.size, "control", dtype=object)
    assert fit_playbook_effect(z, churn, controls, group, choice, risk)[0] is None
    # fitting contacts only where that choice has no controls: nothing to compare, no crash
    arm = np.array(["A", "A", "control", "control"], dtype=object)
    choice = np.array(["A", "A", "B", "B"], dtype=object)
    y = np.array([1.0, 0.0, 1.0, 0.0])
    assert fit_playbook_effect(np.zeros((4, 1)), y, arm, np.full(4, "g"), choice, np.full(4, 0.3))[0] is None


def test_playbook_held_out__weighs_by_group_and_choice_and_says_when_too_few():
    from training.uplift_effects import playbook_held_out

    arm, choice, group, risk, churn = _fitting_campaigns()
    fits = arm == choice
    truth = np.where(np.array([c is not None for c in choice]), 0.5 * risk, 0.0)  # a fitting contact's saving
    score, treated, churned, weight, baseline = playbook_held_out(
        arm, choice, group, churn, truth + 0.0, risk
    )
    assert treated.sum() == fits.sum() and (~treated).sum() == ((arm == "control") & (choice != None)).sum()  # noqa: E711
    assert qini(score, treated, churned, weight)[1] > 0.005
    assert qini(-score, treated, churned, weight)[1] < -0.005
    # each kept row's own risk, for the adjustment (the pair's rows, in order)
    pair = fits | ((arm == "control") & np.array([c is not None for c in choice]))
    np.testing.assert_array_equal(baseline, risk[pair])
    assert qini(score, treated, churned, weight, baseline=baseline)[1] > 0.005
    said = playbook_held_out(arm[:30], choice[:30], group[:30], churn[:30], truth[:30], risk[:30])
    assert isinstance(said, str) and "no held-out figure" in said


def test_uplift_model__pooled_values_every_modelled_action_by_the_playbook_choice_model():
    from serving.uplift_model import PLAYBOOK

    model = _model({"rate_offer": 0.5, "retention_call": 0.5}, contact=-0.1, action=-0.1)
    model.meta["effects"][PLAYBOOK] = {"b": -0.6, "w": [0.5, 0.0]}
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    p = np.array([0.2, 0.4])
    pooled = model.learned(x, p, pooled=True)
    assert set(pooled) == {"rate_offer", "retention_call"}, "only actions with evidence of their own"
    np.testing.assert_allclose(pooled["rate_offer"], [0.2 * 0.6, 0.4 * 0.1])
    np.testing.assert_allclose(model.learned(x, p)["rate_offer"], p * 0.2)  # any contact + its own
    blended = model.uplift(x, p, {"rate_offer": 0.3, "hardship_support": 0.1}, pooled=True)
    np.testing.assert_allclose(blended["rate_offer"], 0.5 * pooled["rate_offer"] + 0.5 * p * 0.3)
    np.testing.assert_allclose(blended["hardship_support"], p * 0.1)
    del model.meta["effects"][PLAYBOOK]
    np.testing.assert_allclose(model.learned(x, p, pooled=True)["rate_offer"], p * 0.2)


class _PooledUplift(_FixedUplift):
    """Uplift 0.05 for every action, 0.2 for every action when asked for the pooled figure; a model
    of the playbook's choice whose cross-fitted Qini interval has `low` for its lower bound (None:
    no cross-fitted figure)."""

    def __init__(self, table, low: float | None = 0.001):
        super().__init__(table)
        from serving.uplift_model import PLAYBOOK

        held = (
            {} if low is None else {PLAYBOOK: {"qini": low + 0.01, "qini_low": low, "qini_high": low + 0.02}}
        )
        self.meta = {"effects": {PLAYBOOK: {"b": -0.3, "w": [0.0]}}, "held_out": held}

    def uplift(self, x, probability, effects, pooled=False, offsets=True):
        return {a: np.full(len(x), (0.2 if offsets else 0.12) if pooled else 0.05) for a in effects}


def _choose_retention_calls(config, low: float | None, settings, n: int = 2) -> dict:
    """`choose` in uplift mode for `n` customers at risk 0.3 and value 4,000 whose playbook action
    is a retention call, on `_PooledUplift` (its cross-fitted lower bound `low`), under `settings`."""
    return choose(
        _Bundle(_PooledUplift(dict.fromkeys(config.playbook.actions), low)),
        np.zeros((n, 1)),
        np.full(n, 0.3),
        np.full(n, 4_000.0),
        np.full(n, "retention_call", dtype=object),
        np.full(n, "unclear", dtype=object),
        np.ones(n, dtype=bool),
        settings,
        ranking="uplift",
    )


@pytest.mark.parametrize(
    ("choose_mode", "playbook_effect", "low", "lift"),
    [
        ("playbook", "pooled", -0.01, 0.2),
        ("playbook", "per_action", 0.01, 0.05),
        ("best", "pooled", 0.01, 0.05),
        ("playbook", "auto", 0.001, 0.2),
        ("playbook", "auto", -0.001, 0.05),
        ("playbook", "auto", None, 0.05),
    ],
)
def test_choose__the_playbook_action_valued_by_the_pooled_model_only_when_it_keeps_the_playbook(
    config, choose_mode, playbook_effect, low, lift
):
    """`auto` takes the pooled model only where its own cross-fitted Qini interval is above zero;
    `pooled` and `per_action` are taken as configured, whatever the figures."""
    out = _choose_retention_calls(
        config, low, config.with_uplift(choose=choose_mode, playbook_effect=playbook_effect)
    )
    np.testing.assert_allclose(out["uplift"], lift)
    cost = config.playbook.actions[out["action"][0]].cost
    np.testing.assert_allclose(out["expected_saving"], lift * 4_000.0 - cost)


def test_choose__the_pooled_model_adds_each_actions_offset_unless_configured_off(config):
    lifts = []
    for offsets in (True, False):
        settings = config.with_uplift(choose="playbook", playbook_effect="pooled", playbook_offsets=offsets)
        lifts.append(_choose_retention_calls(config, 0.001, settings)["uplift"].tolist())
    assert lifts == [[0.2, 0.2], [0.12, 0.12]]


def test_list_valuation__says_whether_the_pooled_model_adds_the_actions_offsets(config):
    from serving.actions import list_valuation
    from serving.uplift_model import PLAYBOOK

    uplift = _PooledUplift({}, 0.01)
    pooled = config.with_uplift(ranking="uplift", choose="playbook", playbook_effect="pooled")
    assert list_valuation(_Bundle(uplift), pooled)["playbook_effect"].startswith(
        "pooled, one shared effect for every action ("
    ), "a model fitted before the offsets has none"
    uplift.meta["effects"][PLAYBOOK]["offsets"] = {"rate_offer": {"b": 0.1}, "retention_call": {"b": 0.2}}
    assert list_valuation(_Bundle(uplift), pooled)["playbook_effect"].startswith(
        "pooled, with 2 actions' own offsets ("
    )
    off = pooled.with_uplift(playbook_offsets=False)
    assert "one shared effect" in list_valuation(_Bundle(uplift), off)["playbook_effect"]


def test_uplift_model__the_pooled_model_plus_each_chosen_actions_offset():
    from serving.uplift_model import PLAYBOOK

    model = _model({"rate_offer": 1.0, "retention_call": 1.0}, contact=-0.1, action=-0.1)
    offsets = {"retention_call": {"b": 0.4, "raw": 0.5, "events": 400, "share": 0.8}}
    model.meta["effects"][PLAYBOOK] = {"b": -0.5, "w": [0.0, 0.0], "offsets": offsets}
    x, p = np.zeros((2, 2)), np.array([0.2, 0.4])
    pooled = model.learned(x, p, pooled=True)
    np.testing.assert_allclose(pooled["rate_offer"], p * 0.5)  # no offset of its own: the shared effect
    np.testing.assert_allclose(pooled["retention_call"], p * 0.1)  # -0.5 + 0.4
    shared = model.learned(x, p, pooled=True, offsets=False)
    np.testing.assert_allclose(shared["retention_call"], p * 0.5)
    blended = model.uplift(x, p, {"retention_call": 0.15}, pooled=True)
    np.testing.assert_allclose(blended["retention_call"], p * 0.1)


def _two_choices(a_saves: float, b_saves: float, n: int = 120_000, seed: int = 3):
    """The playbook chooses A or B at random; half the customers are contacted, with A or B at
    random; a fitting contact of A takes `a_saves` of the risk away, one of B `b_saves`."""
    rng = np.random.default_rng(seed)
    choice = np.where(rng.random(n) < 0.5, "A", "B").astype(object)
    contacted = rng.random(n) < 0.5
    arm = np.where(contacted, np.where(rng.random(n) < 0.5, "A", "B"), "control").astype(object)
    risk = np.full(n, 0.2)
    saves = np.where(arm == choice, np.where(choice == "A", a_saves, b_saves), 0.0)
    churn = (rng.random(n) < risk * (1 - saves)).astype(float)
    return np.zeros((n, 1)), churn, arm, np.full(n, "campaign", dtype=object), choice, risk


def test_playbook_offsets__tell_a_weak_chosen_action_from_a_strong_one():
    """A fitting contact of A halves the risk, one of B does nothing: the pooled model averages
    them; the offsets put A below it and B above, kept almost whole (they differ far beyond their
    noise)."""
    from training.uplift_effects import fit_playbook_effect

    z, churn, arm, group, choice, risk = _two_choices(0.5, 0.0)
    effect, _, _ = fit_playbook_effect(z, churn, arm, group, choice, risk)
    assert effect["b"] == pytest.approx(-0.25, abs=0.05), effect
    offsets = effect["offsets"]
    assert offsets["A"]["raw"] == pytest.approx(-0.25, abs=0.06), offsets
    assert offsets["B"]["raw"] == pytest.approx(0.25, abs=0.06), offsets
    assert 0.0 < offsets["B"]["se"] < 0.1 and offsets["B"]["share"] > 0.8, offsets
    assert effect["b"] + offsets["B"]["b"] == pytest.approx(0.0, abs=0.07), "B's fitting contacts do nothing"
    fits = arm == choice
    assert offsets["A"]["events"] == min(
        int(churn[fits & (choice == "A")].sum()), int(churn[(arm == "control") & (choice == "A")].sum())
    )
    none_chose_b = choice.copy()
    none_chose_b[choice == "B"] = None
    alone = fit_playbook_effect(z, churn, arm, group, none_chose_b, risk)[0]["offsets"]
    assert set(alone) == {"A"} and alone["A"]["b"] == 0.0, "one action: no spread to learn from"


def test_playbook_offsets__actions_that_differ_no_more_than_their_noise_keep_the_shared_effect():
    from training.uplift_effects import fit_playbook_effect

    z, churn, arm, group, choice, risk = _two_choices(0.3, 0.3, n=20_000, seed=8)
    offsets = fit_playbook_effect(z, churn, arm, group, choice, risk)[0]["offsets"]
    assert all(o["share"] < 0.5 for o in offsets.values()), offsets
    assert all(abs(o["b"]) <= abs(o["raw"]) / 2 for o in offsets.values()), offsets


def test_playbook_effect_mode__says_what_values_the_action_and_why(config):
    from serving.actions import playbook_effect_mode
    from serving.uplift_model import PLAYBOOK

    auto = config.with_uplift(choose="playbook", playbook_effect="auto")
    valued, why = playbook_effect_mode(_Bundle(_PooledUplift({}, 0.0042)), auto)
    assert valued == "pooled" and "above zero" in why and "0.0042" in why
    valued, why = playbook_effect_mode(_Bundle(_PooledUplift({}, -0.0042)), auto)
    assert valued == "per_action" and "-0.0042" in why
    without = _PooledUplift({}, 0.01)
    del without.meta["effects"][PLAYBOOK]
    assert playbook_effect_mode(_Bundle(without), auto) == (
        "per_action",
        "auto: the uplift models have no model of the playbook's choice",
    )
    assert playbook_effect_mode(_Bundle(None), auto)[0] == "per_action"


def _heterogeneous_campaigns(n: int = 60_000, seed: int = 5):
    """`_fitting_campaigns` where a fitting contact halves the risk only of the customers whose
    trait `s` (the effect basis) is above 0.5, and does nothing for the rest."""
    arm, choice, group, risk, _ = _fitting_campaigns(n, seed)
    rng = np.random.default_rng(seed + 1)
    s = rng.random(n)
    fits = arm == choice
    none = np.array([c is None for c in choice])
    p = np.where(none, 0.9, risk * np.where(fits & (s > 0.5), 0.5, 1.0))
    return arm, choice, group, risk, (rng.random(n) < p).astype(float), s[:, None]


def _cross_fitted(effect: dict, data) -> tuple:
    from training.uplift_effects import PlaybookCrossFit
    from training.uplift_eval import customer_folds

    arm, choice, group, risk, churn, z = data
    ids = np.arange(arm.size)
    fold = customer_folds(ids)
    crossed = PlaybookCrossFit(arm, choice, group)
    for k in range(fold.max() + 1):
        mine = fold == k
        crossed.rank(mine, effect, risk[mine], z[mine])
    return crossed.figures(churn, risk, ids, reps=60, seed=0)


def test_playbook_cross_fit__ranks_a_model_of_who_responds_above_risk_alone_and_the_reverse_below_zero():
    """The figure judges the ranking of absolute uplift, risk x relative effect, as the any-contact
    headline does: a model with one effect for everyone ranks by risk, which here finds the fitting
    contacts' savings too (they are proportional to the risk), so it is positive; a model of who
    responds ranks better, and the reverse worse than random."""
    data = _heterogeneous_campaigns()
    curve, responders = _cross_fitted({"b": 0.0, "w": [-1.0]}, data)
    _, risk_only = _cross_fitted({"b": -0.5, "w": [0.0]}, data)
    _, reversed_ = _cross_fitted({"b": 0.0, "w": [1.0]}, data)
    assert responders[""] > risk_only[""] + 0.002 > 0.002, (responders, risk_only)
    assert responders["_low"] > 0, "a model that ranks the responders first is told apart from random"
    assert reversed_["_high"] < 0
    for figures in (responders, risk_only, reversed_):
        assert figures["_low"] <= figures[""] <= figures["_high"]
    assert not curve.empty


def test_playbook_cross_fit__no_figure_where_a_fold_had_no_model_or_too_few_rows():
    from training.uplift_effects import PlaybookCrossFit

    arm, choice, group, risk, churn, z = _heterogeneous_campaigns(4_000)
    ids = np.arange(arm.size)
    half = ids < 2_000
    crossed = PlaybookCrossFit(arm, choice, group)
    crossed.rank(half, {"b": 0.0, "w": [-1.0]}, risk[half], z[half])
    crossed.rank(~half, None, risk[~half], z[~half])
    said = crossed.figures(churn, risk, ids, reps=10, seed=0)
    assert (
        isinstance(said, str)
        and "in a fold too few fitting contacts" in said
        and "any contact's effect" in said
    )
    few = PlaybookCrossFit(arm[:30], choice[:30], group[:30])
    few.rank(np.ones(30, dtype=bool), {"b": 0.0, "w": [-1.0]}, risk[:30], z[:30])
    assert "no cross-fitted figure" in few.figures(churn[:30], risk[:30], ids[:30], reps=10, seed=0)


def test_agreed_choice__only_the_rows_both_sides_choose_alike_judge_the_models_of_the_choice():
    from training.uplift_compare import agreed_choice, left_out
    from training.uplift_effects import judged_rows

    mine = np.array(["rate_offer", "rate_offer", None, "retention_call", "rate_offer", None], dtype=object)
    theirs = np.array(
        ["rate_offer", "retention_call", "rate_offer", "retention_call", None, None], dtype=object
    )
    agreed = agreed_choice(mine, theirs)
    assert list(agreed) == ["rate_offer", None, None, "retention_call", None, None]
    # row 1 fits the challenger's choice only, row 4 is a control only the challenger gives a
    # choice: the challenger's choice alone would judge both; the agreed choice judges neither
    arm = np.array(
        ["rate_offer", "rate_offer", "retention_call", "control", "control", "control"], dtype=object
    )
    group = np.zeros(6, dtype=int)
    alone, _, _ = judged_rows(arm, mine, group)
    pair, treated, _ = judged_rows(arm, agreed, group)
    assert list(alone) == [True, True, False, True, True, False]
    assert list(pair) == [True, False, False, True, False, False] and list(treated) == [True, False]
    # what was left out: rows 1 and 4 by the challenger's choice; row 2's contact fits neither side
    assert left_out(arm, mine, theirs) == 2 == left_out(arm, mine, theirs, agreed)
    assert left_out(arm, theirs, theirs) == 0
