"""The benchmarks' cached bundles: an uplift refit keeps only what still holds, and a bundle from
before the model of the playbook's choice is trained again."""

from __future__ import annotations

import numpy as np
import pytest


def test_benchmark_refit_uplift__keeps_the_take_up_floor_only_for_the_same_take_up_model(
    trained, sample, config
):
    import copy

    from benchmarks.cached import refit_uplift
    from features.campaigns import campaign_rows

    rows = campaign_rows(sample.tables, config)
    floor = trained.bundle.uplift.take_up_floor(0.5)
    assert floor is not None, "training keeps the floor's reference population"
    bundle = copy.copy(trained.bundle)
    on_features = config.with_uplift(effect_input="features")
    learned = refit_uplift(bundle, rows, on_features)
    assert bundle.uplift is learned.model and "numeric" in learned.model.meta["effects"]["basis"]
    assert bundle.uplift.take_up_floor(0.5) == pytest.approx(floor), "the floor a benchmark's list applies"
    # a bundle whose take-up model is not the one the rows give: its floor does not carry over
    import lightgbm as lgb

    x = trained.bundle.matrix(trained.bundle.prepare(rows[trained.bundle.feature_names]))
    accepted = (np.arange(len(x)) % 3 == 0).astype(int)
    another = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, accepted), 5)
    other = copy.copy(trained.bundle)
    other.uplift = copy.copy(trained.bundle.uplift)
    other.uplift.take_up_model = another
    with pytest.raises(ValueError, match="take-up model differs"):
        refit_uplift(other, rows, on_features)
    other.uplift = type(trained.bundle.uplift)({**trained.bundle.uplift.meta, "take_up": {}}, another)
    with pytest.raises(ValueError, match="no take-up model and reference"):
        refit_uplift(other, rows, on_features)


def test_benchmark_cache__a_bundle_trained_with_other_booster_settings_is_stale(trained, config, tmp_path):
    from benchmarks.cached import stale

    saved = trained.bundle.save(tmp_path / "bundle")
    assert not stale(saved, config), "trained with the settings asked for: kept"
    training = config.training
    for changed in (
        training.model_copy(update={"churn": training.churn.model_copy(update={"num_leaves": 31})}),
        training.model_copy(update={"drivers": training.driver_params.model_copy(update={"max_depth": 8})}),
    ):
        assert stale(saved, config.model_copy(update={"training": changed})), (
            "a benchmark must not time the old model"
        )


def test_benchmark_cache__uplift_models_from_before_the_playbook_choice_model_or_its_gate_are_stale(
    trained, tmp_path
):
    import json

    from benchmarks.cached import stale

    saved = trained.bundle.save(tmp_path / "bundle")
    assert not stale(saved) and not stale(tmp_path / "none")
    kept = saved / "uplift" / "uplift.json"
    meta = json.loads(kept.read_text())
    assert meta["playbook_choice"]["cross_fitted"] is False, "the sample's folds are too small for it"
    del meta["playbook_choice"]["cross_fitted"]
    kept.write_text(json.dumps(meta))
    assert stale(saved), "cached before the cross-fitted figure of the playbook's choice: trained again"
    del meta["playbook_choice"]
    kept.write_text(json.dumps(meta))
    assert stale(saved), "cached before the model of the playbook's choice: trained again"
