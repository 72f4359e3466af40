"""Behavioural checks of the learned uplift models trained on the committed sample: what they learn
from, what they read, and how each figure is held out."""

import copy

import numpy as np
import pytest


def test_uplift_models__learned_from_the_randomised_campaigns_and_shipped_in_the_bundle(
    trained, config, tmp_path
):
    from serving.model_bundle import ModelBundle

    uplift = trained.bundle.uplift
    assert uplift is not None, trained.extra["uplift"].notes
    rows = uplift.meta["rows"]
    assert rows["control"] > 400, "the campaigns' and the exploration's control groups"
    assert rows["control"] > 0.3 * sum(rows.values()), "the exploration holds back half its draw"
    assert all(0 <= share < 1 for share in uplift.learned_share.values())
    assert trained.metrics["uplift_rows"] == sum(rows.values())
    # the headline Qini ranks every campaign row, each by models fitted without its customer
    m, held = trained.metrics, uplift.meta["held_out"]
    assert m["uplift_qini_low"] <= m["uplift_qini"] <= m["uplift_qini_high"]
    assert held["qini_low"] == m["uplift_qini_low"] and "cross-fitted" in held["evaluation"]
    # ... each outcome less its held-out risk; the unadjusted figure beside it
    from training.uplift_eval import qini

    cross = trained.extra["uplift"].cross_fit
    ranked = [cross[c].to_numpy() for c in ("score", "treated", "churn", "weight")]
    assert m["uplift_qini"] == pytest.approx(qini(*ranked, baseline=cross["risk"].to_numpy())[1])
    assert m["uplift_qini_unadjusted"] == pytest.approx(qini(*ranked)[1])
    assert m["uplift_qini_unadjusted"] != pytest.approx(m["uplift_qini"])
    assert held["unadjusted"]["low"] == m["uplift_qini_unadjusted_low"]
    assert len(cross) == trained.metrics["uplift_rows"] and cross["risk"].between(0, 1).all()
    curves = trained.extra["uplift"].curves
    assert {"contact", "contact_latest_months"} <= set(curves), "every month, and the latest alone"
    assert "effects" in held and held["recent"]["qini"] == m["uplift_qini_recent"]
    reloaded = ModelBundle.load(trained.bundle.save(tmp_path / "bundle"))
    x = trained.bundle.matrix(trained.bundle.prepare(trained.extra["X_test"].head(50)))
    p = np.linspace(0.0, 1.0, 50)
    learned = uplift.learned(x, p)
    assert learned, "at least one action has randomised evidence of its own on the sample"
    for action, values in learned.items():
        np.testing.assert_allclose(reloaded.uplift.learned(x, p)[action], values)
        assert np.all(values <= p + 1e-12) and np.all(values >= -(1 - p) - 1e-12), action
    # the model of the playbook's own choice: fitted on the contacts that were it, the list's figure
    from serving.uplift_model import PLAYBOOK

    chosen = uplift.meta["playbook_choice"]
    assert chosen["contacts"] >= config.uplift.min_arm_rows and chosen["churners"] > 0, chosen
    assert PLAYBOOK in uplift.meta["effects"]
    pooled = uplift.learned(x, p, pooled=True)
    assert set(pooled) == set(learned) and not np.allclose(
        pooled[next(iter(pooled))], learned[next(iter(learned))]
    )
    np.testing.assert_allclose(
        reloaded.uplift.learned(x, p, pooled=True)[next(iter(pooled))], pooled[next(iter(pooled))]
    )
    # each chosen action's offset on it, kept with what it rests on and shrunk, never enlarged
    offsets = uplift.meta["effects"][PLAYBOOK]["offsets"]
    assert offsets and set(offsets) <= set(config.playbook.actions), offsets
    for action, o in offsets.items():
        assert o["se"] > 0 and 0 <= o["share"] <= 1 and o["events"] > 0, (action, o)
        assert o["b"] == pytest.approx(o["share"] * o["raw"]), (action, o)
    assert reloaded.uplift.meta["effects"][PLAYBOOK]["offsets"] == offsets
    # the sample's held-out months hold too few fitting contacts for a figure, and it says so
    assert "uplift_qini_playbook_action" not in m
    assert any("no held-out figure for the model of that choice" in n for n in trained.extra["uplift"].notes)
    # nor do its customer folds for the cross-fitted figure, so `playbook_effect: auto` does not
    # trust the model of the choice, and says why
    from serving.actions import playbook_effect_mode

    assert "uplift_qini_playbook_action_cross_fitted" not in m
    assert PLAYBOOK not in uplift.meta["held_out"]
    assert any(
        "no cross-fitted figure for the model of that choice" in n for n in trained.extra["uplift"].notes
    )
    auto = config.with_uplift(choose="playbook", playbook_effect="auto")
    assert playbook_effect_mode(trained.bundle, auto) == (
        "per_action",
        "auto: the model of the playbook's choice has no cross-fitted figure",
    )


def test_compare_uplift__challenger_and_an_older_champion_rank_the_same_held_out_campaigns(
    trained, sample, config
):
    import copy

    from features.campaigns import campaign_rows
    from serving.uplift_model import UpliftModel
    from training.uplift_compare import compare_uplift

    rows = campaign_rows(sample.tables, config)  # every month: the comparison keeps its own
    held = trained.bundle.uplift.meta["held_out_months"]
    assert held and "effects" in trained.bundle.uplift.meta["held_out"]
    # a champion trained before the challenger's held-out months: it had not seen their campaigns,
    # and its effect model is the one the challenger fitted without them
    older = copy.copy(trained.bundle)
    meta = copy.deepcopy(trained.bundle.uplift.meta)
    meta["campaign_months"] = [m for m in meta["campaign_months"] if m not in held]
    meta["effects"] = meta["held_out"]["effects"]
    uplift = trained.bundle.uplift  # with the take-up model those effects read
    older.uplift = UpliftModel(meta, uplift.held_out_take_up_model or uplift.take_up_model)
    figures = compare_uplift(rows, trained.bundle, older, config)
    assert figures["months"] == held and figures["rows"] > 200
    assert figures["challenger"] == figures["champion"], "the same model on the same rows"
    assert figures["low"] == figures["difference"] == figures["high"] == 0.0
    # with the deployed effects (trained on those months too) the champion ranks them differently
    meta["effects"] = trained.bundle.uplift.meta["effects"]
    older.uplift = UpliftModel(meta, uplift.take_up_model)
    figures = compare_uplift(rows, trained.bundle, older, config)
    assert figures["challenger"] != figures["champion"]
    assert figures["low"] <= figures["difference"] <= figures["high"]
    # the champion that trained on the same history: nothing fair to compare
    assert "trained the champion too" in compare_uplift(rows, trained.bundle, trained.bundle, config)["note"]


@pytest.mark.parametrize("ranking", ["auto", "uplift", "probability"])
def test_promotion_gates__read_the_ranking_and_valuation_the_list_would_use(trained, config, ranking):
    """Promotion judges a challenger from its scores; the list reads its bundle: the same answer."""
    import copy

    from serving.actions import playbook_effect_mode, ranking_mode
    from serving.uplift_model import PLAYBOOK, UpliftModel
    from training.promotion_rules import ranks_by_uplift, uplift_gate_scores, valued_by_choice

    bundle = trained.bundle
    without_figure = copy.copy(bundle)
    meta = copy.deepcopy(bundle.uplift.meta)
    meta["held_out"].pop("qini_low", None)
    (meta["held_out"].get(PLAYBOOK) or {}).pop("qini_low", None)
    without_figure.uplift = UpliftModel(meta, bundle.uplift.take_up_model)
    no_models = copy.copy(bundle)
    no_models.uplift = None
    for side in (bundle, without_figure, no_models):
        scores = uplift_gate_scores(side)
        for effect in ("auto", "pooled", "per_action"):
            for choose in ("playbook", "best"):
                settings = config.with_uplift(ranking=ranking, playbook_effect=effect, choose=choose)
                assert ranks_by_uplift(scores, settings) == (ranking_mode(side, settings)[0] == "uplift")
                valued = playbook_effect_mode(side, settings)[0] == "pooled"
                assert valued_by_choice(scores, settings) == valued


def test_list_change__says_when_a_promotion_switches_how_the_list_ranks_or_values(trained, config):
    import copy

    from serving.uplift_model import PLAYBOOK, UpliftModel
    from training.promote import list_change

    def with_bounds(low: float, chosen_low: float):
        bundle = copy.copy(trained.bundle)
        meta = copy.deepcopy(bundle.uplift.meta)
        meta["held_out"] |= {"qini_low": low, "qini_high": low + 0.01}
        meta["held_out"][PLAYBOOK] = (meta["held_out"].get(PLAYBOOK) or {}) | {
            "qini_low": chosen_low,
            "qini_high": chosen_low + 0.01,
        }
        bundle.uplift = UpliftModel(meta, bundle.uplift.take_up_model)
        return bundle

    proven, unproven = with_bounds(0.002, 0.003), with_bounds(-0.001, 0.003)
    assert (
        list_change(proven, unproven, config)
        == "ranked by probability -> ranked by uplift, action valued by pooled"
    )
    assert (
        list_change(unproven, proven, config)
        == "ranked by uplift, action valued by pooled -> ranked by probability"
    )
    weaker_choice = with_bounds(0.002, -0.001)
    assert list_change(weaker_choice, proven, config).endswith(
        "-> ranked by uplift, action valued by per_action"
    )
    assert list_change(proven, with_bounds(0.004, 0.001), config) == "", "the same list: nothing to say"
    assert list_change(proven, None, config) == "", "a first model changes no list"
    assert list_change(proven, unproven, config.with_uplift(ranking="probability")) == ""


def test_compare_playbook__the_models_of_the_playbooks_choice_on_the_same_fitting_contacts(
    trained, sample, config
):
    import copy

    from features.campaigns import campaign_rows
    from serving.uplift_model import PLAYBOOK, UpliftModel
    from training.uplift_compare import compare_playbook

    rows = campaign_rows(sample.tables, config)
    held = trained.bundle.uplift.meta["held_out_months"]
    assert PLAYBOOK in trained.bundle.uplift.meta["held_out"]["effects"], "kept for the comparison"
    older = copy.copy(trained.bundle)
    meta = copy.deepcopy(trained.bundle.uplift.meta)
    meta["campaign_months"] = [m for m in meta["campaign_months"] if m not in held]
    meta["effects"] = meta["held_out"]["effects"]
    uplift = trained.bundle.uplift
    older.uplift = UpliftModel(meta, uplift.held_out_take_up_model or uplift.take_up_model)
    # the sample's held-out months hold too few fitting contacts for a comparison, and it says so
    thin = compare_playbook(rows, trained.bundle, older, config)
    assert "were the playbook's choice by both models" in thin["note"] and "(need 20 each;" in thin["note"]
    # with a lower floor: the fitting contacts and the controls with a choice, the same model on both
    # sides differs by exactly zero
    figures = compare_playbook(rows, trained.bundle, older, config, least=5)
    assert figures["months"] == held and 5 <= figures["contacts"] < figures["rows"]
    assert figures["disagreed"] == 0, "one churn model on both sides: the same choices"
    assert figures["low"] == figures["difference"] == figures["high"] == 0.0
    # with the deployed model (trained on those months too) the champion ranks them differently
    meta["effects"] = copy.deepcopy(trained.bundle.uplift.meta["effects"])  # deleted from below
    older.uplift = UpliftModel(meta, uplift.take_up_model)
    figures = compare_playbook(rows, trained.bundle, older, config, least=5)
    assert figures["challenger"] != figures["champion"]
    # a champion whose churn model puts these customers at another risk (here the reverse of the
    # challenger's, so that the risk tiers, and with them the playbook's rules, change) chooses other
    # actions for some: the rows either side alone would judge that the other does not are left out,
    # and counted
    shifted = copy.copy(older)
    shifted.churn_probability = lambda data: 1.0 - older.churn_probability(data)
    other = compare_playbook(rows, trained.bundle, shifted, config, least=5)
    assert other["disagreed"] > 0 and other["rows"] < figures["rows"], other
    # a champion that cannot score the campaign rows is not compared, and says why
    broken = copy.copy(older)
    broken.feature_names = [*older.feature_names, "a_feature_the_rows_lack"]
    assert (
        "the champion cannot score these campaign rows"
        in compare_playbook(rows, trained.bundle, broken, config)["note"]
    )
    # a side without the model of the playbook's choice (a bundle trained before it) is not compared
    del meta["effects"][PLAYBOOK]
    older.uplift = UpliftModel(meta, uplift.take_up_model)
    assert "on the champion side" in compare_playbook(rows, trained.bundle, older, config)["note"]


def test_uplift_effect_families__the_effect_models_read_only_those_families(trained, sample, config):
    from features.campaigns import campaign_rows
    from training.uplift import fit_uplift

    rows = campaign_rows(sample.tables, config)
    families = trained.bundle.meta["features"]["families"]
    on_features = {"effect_input": "features"}
    narrow = config.with_uplift(**on_features, effect_families=("profile", "engagement"))
    basis = fit_uplift(rows, trained.bundle, narrow).model.meta["effects"]["basis"]
    read = [*basis["numeric"], *basis["levels"]]
    assert read and {families[name] for name in read} == {"profile", "engagement"}
    assert len(trained.bundle.feature_names) > 2 * len(read)
    unknown = config.with_uplift(**on_features, effect_families=("horoscope",))
    with pytest.raises(ValueError, match="uplift.effect_families"):
        fit_uplift(rows, trained.bundle, unknown)


def test_uplift_effect_input_take_up__the_effects_read_a_cross_fitted_take_up_score(trained, sample, config):
    import copy

    from features.campaigns import campaign_rows
    from serving.uplift_model import CONTACT
    from training.uplift import fit_uplift
    from training.uplift_compare import compare_uplift

    rows = campaign_rows(sample.tables, config)
    reads = config.with_uplift(effect_input="take_up")
    result = fit_uplift(rows, trained.bundle, reads)
    model = result.model
    assert (
        set(model.meta["effects"]["basis"]) == {"take_up"} and len(model.meta["effects"][CONTACT]["w"]) == 1
    )
    assert "take_up" in model.meta["held_out"]["effects"]["basis"]
    assert model.take_up_model is not None and model.held_out_take_up_model is not None
    m = result.metrics
    assert m["uplift_qini_low"] <= m["uplift_qini"] <= m["uplift_qini_high"]
    # the challenger's held-out effects read the take-up model fitted without those months
    challenger, older = copy.copy(trained.bundle), copy.copy(trained.bundle)
    challenger.uplift = model
    meta = copy.deepcopy(trained.bundle.uplift.meta)
    held = model.meta["held_out_months"]
    meta["campaign_months"] = [month for month in meta["campaign_months"] if month not in held]
    older.uplift = type(model)(meta, trained.bundle.uplift.take_up_model)
    figures = compare_uplift(rows, challenger, older, config)
    assert figures.get("months") == held, figures
    held_out_take_up = model.held_out_take_up_model
    assert held_out_take_up.model_to_string() != model.take_up_model.model_to_string(), (
        "fitted on fewer months"
    )
    model.held_out_take_up_model = None  # the comparison reads that model, not the final one
    assert "cannot score" in compare_uplift(rows, challenger, older, config)["note"]
    model.held_out_take_up_model = held_out_take_up
    # no recorded outcomes, no take-up model: the effects read the features, and say so
    fallback = fit_uplift(rows.drop(columns="outcome"), trained.bundle, reads)
    assert "numeric" in fallback.model.meta["effects"]["basis"]
    assert any("effect_input take_up" in note for note in fallback.notes), fallback.notes


def test_uplift_headline__ranks_and_adjusts_each_customer_by_models_that_never_saw_their_outcomes(
    trained, sample, config
):
    from features.campaigns import campaign_rows
    from training.uplift import fit_uplift
    from training.uplift_eval import customer_folds

    rows = campaign_rows(sample.tables, config)
    first = fit_uplift(rows, trained.bundle, config).cross_fit
    # every outcome of one fold's customers reversed: their score and risk cannot move, every
    # other customer's models learned from the reversed outcomes
    fold = customer_folds(rows["customer_id"]) == 0
    reversed_ = rows.assign(churn=np.where(fold, 1 - rows["churn"], rows["churn"]))
    again = fit_uplift(reversed_, trained.bundle, config).cross_fit
    for column in ("score", "risk"):
        np.testing.assert_array_equal(again.loc[fold, column], first.loc[fold, column])
    for column in ("score", "risk"):  # so the check above could fail: both read the outcomes
        assert (again.loc[~fold, column] != first.loc[~fold, column]).mean() > 0.5, column


def test_uplift_playbook_cross_fit__judged_on_every_month_and_read_by_auto(trained, sample, config):
    """With evidence enough in every customer fold (a lower `min_arm_rows` than the sample's
    default allows), the model of the playbook's choice gets its cross-fitted Qini, kept in the
    bundle's meta beside the any-contact headline, and `playbook_effect: auto` reads that figure."""
    from features.campaigns import campaign_rows
    from serving.actions import playbook_effect_mode
    from serving.uplift_model import PLAYBOOK
    from training.promotion_rules import uplift_gate_scores
    from training.uplift import fit_uplift

    looser = config.with_uplift(min_arm_rows=30)
    result = fit_uplift(campaign_rows(sample.tables, looser), trained.bundle, looser)
    m, key = result.metrics, f"uplift_qini_{PLAYBOOK}_cross_fitted"
    assert m[f"{key}_low"] <= m[key] <= m[f"{key}_high"], m
    assert m[key] != m["uplift_qini"], "its own rows and ranking, not the any-contact headline's"
    held = result.model.meta["held_out"][PLAYBOOK]
    assert (held["qini"], held["qini_low"], held["qini_high"]) == (m[key], m[f"{key}_low"], m[f"{key}_high"])
    assert not result.curves[f"{PLAYBOOK}_cross_fitted"].empty
    bundle = copy.copy(trained.bundle)
    bundle.uplift = result.model
    valued, why = playbook_effect_mode(bundle, looser.with_uplift(choose="playbook", playbook_effect="auto"))
    assert valued == ("pooled" if held["qini_low"] > 0 else "per_action") and f"{held['qini_low']:.4f}" in why
    # promotion's gate reads the same figure (`training.promote.decide`)
    assert uplift_gate_scores(bundle)[f"uplift_qini_{PLAYBOOK}_low"] == held["qini_low"]
    sample = uplift_gate_scores(trained.bundle)
    assert f"uplift_qini_{PLAYBOOK}_low" not in sample, "the sample: no figure"
    assert sample["uplift_playbook_model"] == 1.0 and sample["uplift_models"] == 1.0, "but the model"
