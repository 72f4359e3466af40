"""Behavioural checks of the trained models on the committed sample."""

import json

import numpy as np
import pandas as pd
import pytest
import shap

from tests.conftest import SAMPLE

# hidden hazard drivers -> the observable features that carry their trace
PLANTED = {
    "complaints": {"unresolved_complaints", "complaints_90d", "complaints_365d", "days_since_last_complaint"},
    "competitor gap / drain": {
        "external_out_share_90d",
        "external_out_90d",
        "external_out_30d",
        "large_outflows_90d",
        "external_out_trend",
    },
    "salary stopped": {"salary_stopped", "days_since_last_salary", "salary_count_180d", "salary_amount_90d"},
    "engagement": {"logins_30d", "logins_90d", "login_trend", "days_since_last_login"},
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


def test_contributions__lightgbm_pred_contrib_equals_shap_tree_explainer(trained):
    bundle = trained.bundle
    prepared = bundle.prepare(trained.extra["X_test"].head(200))
    ours = bundle.contributions(prepared)
    explainer = shap.TreeExplainer(bundle.churn_booster)
    theirs = explainer.shap_values(prepared)
    np.testing.assert_allclose(ours[bundle.feature_names].to_numpy(), theirs, atol=1e-6)
    np.testing.assert_allclose(ours.sum(axis=1), bundle.raw_margin(prepared), atol=1e-6)


def test_churn_model__planted_drivers_rank_among_the_top_global_drivers(trained):
    top = set(trained.global_shap.index[:15])
    found = {driver for driver, features in PLANTED.items() if top & features}
    assert len(found) >= 5, (
        f"only {sorted(found)} of {sorted(PLANTED)} in the top 15: {list(trained.global_shap.index[:15])}"
    )
    truth = json.loads((SAMPLE / "truth" / "drivers.json").read_text())
    assert truth["hazard_weights"]["unresolved_complaints"] > 0  # the truth file is what this test reads


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


def test_reasons__plain_language_with_the_customers_own_values(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"]
    stopped = X[X["salary_stopped"] == 1].head(30)
    prepared = bundle.prepare(stopped)
    reasons = bundle.reasons(prepared, bundle.contributions(prepared))
    salary = [r for row in reasons for r in row if r.code == "SALARY"]
    assert salary, "salary stopping should be a top reason for some of these customers"
    assert all(r.text.startswith("Salary no longer paid in (last payment ") for r in salary)
    assert all(len(row) <= 3 and all(r.contribution > 0 for r in row) for row in reasons)
    row = stopped.iloc[[reasons.index(next(r for r in reasons if any(x.code == "SALARY" for x in r)))]]
    assert f"{row['days_since_last_salary'].iloc[0]:.0f} days ago" in next(
        x.text for r in reasons for x in r if x.code == "SALARY"
    )


def test_next_products__never_recommends_a_product_already_held(trained):
    bundle = trained.bundle
    X = trained.extra["X_test"].head(300)
    ranked = bundle.next_products(bundle.prepare(X))
    for (_, row), products in zip(X.iterrows(), ranked, strict=True):
        assert len(products) <= 3
        assert all(row[f"has_{p}"] == 0 for p, _ in products)
    assert trained.next_product_metrics["map_at_3"] > trained.popularity_metrics["map_at_3"]


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
