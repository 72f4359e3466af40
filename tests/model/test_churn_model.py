"""Behavioural checks of the trained models on the committed sample."""

import json

import numpy as np
import pandas as pd
import pytest
import shap

from tests.conftest import SAMPLE

# planted causes and the symptoms of leaving -> the observable features that carry their trace
PLANTED = {
    "complaints": {
        "unresolved_complaints",
        "complaints_90d",
        "complaints_365d",
        "days_since_last_complaint",
        "oldest_unresolved_complaint_days",
    },
    "money leaving": {
        "external_out_share_90d",
        "external_out_90d",
        "external_out_30d",
        "large_outflows_90d",
        "external_out_trend",
    },
    "maturities": {
        "days_to_next_maturity",
        "matured_not_renewed_60d",
        "matured_not_renewed_180d",
        "has_term_deposit",
    },
    "life events": {"age", "address_changes_180d", "missed_payments_90d", "pension_payments_90d"},
    "few products": {"product_count", "has_savings", "has_credit_card"},
    "balances falling": {"assets_change_1m", "assets_change_3m", "assets_drawdown_6m", "assets_slope_6m"},
}


def test_churn_model__beats_both_baselines_on_the_held_out_snapshot(trained):
    m = trained.metrics
    assert m["roc_auc"] > trained.baseline_metrics["one_rule"]["roc_auc"]
    assert m["pr_auc"] > trained.baseline_metrics["one_rule"]["pr_auc"]
    assert m["roc_auc"] > 0.70


def test_churn_model__is_calibrated(trained):
    m = trained.metrics
    assert m["ece"] <= 0.02, "0.30 should mean about 30%"
    assert m["mean_score"] == pytest.approx(m["base_rate"], abs=0.015)


def test_reasons_model__trains_with_its_own_settings_not_the_compact_churn_models(trained, config):
    from benchmarks.train import model_shape
    from training.settings import TrainingConfig

    training = config.training
    assert training.drivers is not None and training.drivers != training.churn, (
        "the shipped config keeps them apart"
    )
    bundle = trained.bundle
    assert bundle.meta["drivers"]["params"] == training.driver_params.model_dump()

    def shape(booster):  # (most leaves in a tree, deepest split)
        most = max(t["num_leaves"] for t in booster.dump_model()["tree_info"])
        return most, model_shape(booster)[2]

    churn_leaves, churn_depth = shape(bundle.churn_booster)
    assert churn_leaves <= training.churn.num_leaves and churn_depth <= training.churn.max_depth
    driver_leaves, driver_depth = shape(bundle.driver_booster)
    assert driver_leaves <= training.drivers.num_leaves and driver_depth <= training.drivers.max_depth
    assert (driver_leaves, driver_depth) > (churn_leaves, churn_depth), (
        "the reasons' model is not held to the churn model's size"
    )
    # a config without its own section trains the reasons' model as the churn model
    assert TrainingConfig(churn=training.churn).driver_params == training.churn


def test_contributions__lightgbm_pred_contrib_equals_shap_tree_explainer(trained):
    bundle = trained.bundle
    prepared = bundle.prepare(trained.extra["X_test"].head(200))
    ours = bundle.contributions(prepared)
    explainer = shap.TreeExplainer(bundle.churn_booster)
    theirs = explainer.shap_values(prepared)
    np.testing.assert_allclose(ours[bundle.feature_names].to_numpy(), theirs, atol=1e-6)
    np.testing.assert_allclose(ours.sum(axis=1), bundle.raw_margin(prepared), atol=1e-6)


def test_churn_model__planted_drivers_rank_among_the_top_global_drivers(trained):
    """Four of the six planted families in the top 15: on 2,500 customers a single product (0.6
    log-odds) and a lapsed deposit (rare) compete with the contact response the generator also
    plants (tenure, age and digital use decide who a contact pushes away)."""
    top = set(trained.global_shap.index[:15])
    found = {driver for driver, features in PLANTED.items() if top & features}
    assert {"complaints", "life events"} <= found
    assert len(found) >= 4, (
        f"only {sorted(found)} of {sorted(PLANTED)} in the top 15: {list(trained.global_shap.index[:15])}"
    )
    truth = json.loads((SAMPLE / "truth" / "drivers.json").read_text())
    assert truth["cause_hazard_weights"]["unresolved_service_complaints"] > 0  # what this test reads


def test_churn_model__more_unresolved_complaints_never_lowers_risk(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"]
    base = bundle.churn_probability(bundle.prepare(X))
    more = X.assign(
        unresolved_complaints=X["unresolved_complaints"] + 1, complaints_90d=X["complaints_90d"] + 1
    )
    assert (bundle.churn_probability(bundle.prepare(more)) >= base - 1e-12).all()


def test_churn_model__customer_id_does_not_change_a_score(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"].head(50)
    renamed = X.set_axis(pd.Index(np.arange(len(X)) + 10_000_000, name="customer_id"))
    np.testing.assert_array_equal(
        bundle.churn_probability(bundle.prepare(X)), bundle.churn_probability(bundle.prepare(renamed))
    )


def test_reasons__name_causes_in_plain_language_with_the_customers_own_values(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"]
    complained = X[X["unresolved_complaints"] >= 1].head(40)
    prepared = bundle.prepare(complained)
    diagnoses = bundle.diagnose(prepared, bundle.contributions(prepared))
    complaint = [r for d in diagnoses for r in d.reasons if r.code == "COMPLAINT"]
    assert complaint, "an unresolved complaint should be a top reason for some of these customers"
    assert all(
        r.text.endswith(" days") and "unresolved complaint(s) about the service" in r.text for r in complaint
    )
    assert all(len(d.reasons) <= 3 and all(r.contribution > 0 for r in d.reasons) for d in diagnoses)
    from features.causes import CAUSE_CODES

    codes = {r.code for d in diagnoses for r in d.reasons}
    assert codes <= set(CAUSE_CODES), (
        f"reasons name causes, never symptoms or context: {codes - set(CAUSE_CODES)}"
    )
    first = next(d for d in diagnoses if d.reasons and d.reasons[0].code == "COMPLAINT")
    assert first.churn_type in ("service_failure", "unclear")
    assert all("nan" not in e for d in diagnoses for e in d.evidence)


def test_next_products__never_recommends_a_product_already_held(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"].head(300)
    ranked = bundle.next_products(bundle.prepare(X))
    for (_, row), products in zip(X.iterrows(), ranked, strict=True):
        assert len(products) <= 3
        assert all(row[f"has_{p}"] == 0 for p, _ in products)


def test_next_products__personalised_and_at_least_as_good_as_popularity(trained):
    """The sample's test month has about 100 customers opening a product, too few to show the
    model's margin over popularity (a customer or two either way); so: not worse than popularity
    by more than three of those customers on the ranking metrics, and a ranking of its own (not
    popularity's order with held products masked)."""
    from training.models import popularity_ranking

    model, popularity = trained.next_product_metrics, trained.popularity_metrics
    assert model["map_at_3"] >= popularity["map_at_3"] - 0.03
    assert model["hit_rate_at_3"] >= popularity["hit_rate_at_3"] - 0.03
    bundle = trained.bundle
    X = trained.extra["X_test"].head(500)
    first = [p[0][0] if p else None for p in bundle.next_products(bundle.prepare(X))]
    products = tuple(bundle.meta["next_product"]["classes"][1:])
    by_popularity = popularity_ranking(X, trained.extra["train_frame"]["next_product"], products)
    differs = np.mean([f != (r[0] if r else None) for f, r in zip(first, by_popularity, strict=True)])
    assert differs > 0.1, f"only {differs:.0%} of first products differ from popularity's order"


def test_bundle__refuses_features_that_do_not_match_its_schema(trained):
    from serving.model_bundle import FeatureSchemaError

    X = trained.extra["X_test"].head(3)
    with pytest.raises(FeatureSchemaError, match="login_trend: feature missing"):
        trained.bundle.prepare(X.drop(columns="login_trend"))
    bad = X.astype({"region": str}).assign(region="Atlantis")
    with pytest.raises(FeatureSchemaError, match="region: unknown category 'Atlantis'"):
        trained.bundle.prepare(bad)


def test_bundle__save_and_load_give_the_same_numbers(trained, tmp_path):
    from serving.model_bundle import ModelBundle

    loaded = ModelBundle.load(trained.bundle.save(tmp_path / "bundle"))
    X = trained.extra["X_test"].head(100)
    np.testing.assert_allclose(
        loaded.churn_probability(loaded.prepare(X)),
        trained.bundle.churn_probability(trained.bundle.prepare(X)),
    )
    assert loaded.schema_hash == trained.bundle.schema_hash
    assert isinstance(pd.Series(loaded.value(loaded.prepare(X))).sum(), float)


def test_plots__every_plot_is_its_own_figure(trained):
    """shap draws on the current figure; each plot must still be a separate, complete figure."""
    import matplotlib.pyplot as plt

    from training.plots import evaluation_figures, shap_figures

    figures = evaluation_figures(
        trained.extra["y_test"], {"model": trained.test_frame["churn_probability"].to_numpy()}
    )
    figures |= shap_figures(trained.test_contributions.head(300), trained.extra["X_test"].head(300))
    try:
        assert len({id(f) for f in figures.values()}) == len(figures)
        assert len(figures["gain_lift.png"].axes) == 2, "nothing was drawn over the gain and lift panels"
        assert {
            "roc.png",
            "precision_recall.png",
            "calibration.png",
            "shap_beeswarm.png",
            "shap_bar.png",
        } <= set(figures)
    finally:
        for figure in figures.values():
            plt.close(figure)
