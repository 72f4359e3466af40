"""The validation curves the dask engine early-stops on match LightGBM's own."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.iteration_curves import (
    auc_from_counts,
    early_stopping_iteration,
    iteration_losses,
    iteration_margin_counts,
)


def _data(classes: int, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(3000, 5)), columns=list("abcde"))
    logits = X.to_numpy() @ rng.normal(size=(5, classes))
    return X, (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)


TRAIN, VALID = slice(0, 2000), slice(2000, 3000)


def _train(params: dict, X: pd.DataFrame, y: np.ndarray, rounds: int, callback) -> lgb.Booster:
    """A booster on the first 2,000 rows, the last 1,000 its validation set."""
    return lgb.train(
        params,
        lgb.Dataset(X[TRAIN], y[TRAIN]),
        num_boost_round=rounds,
        valid_sets=[lgb.Dataset(X[VALID], y[VALID])],
        callbacks=[callback],
    )


@pytest.mark.parametrize("objective", ["binary", "multiclass"])
def test_iteration_losses__match_lightgbm_own_validation_curve_and_early_stop(objective):
    classes = 2 if objective == "binary" else 4
    X, y = _data(classes)
    params = {"objective": objective, "learning_rate": 0.3, "num_leaves": 7, "verbose": -1, "seed": 1}
    if objective == "multiclass":
        params["num_class"] = classes
    history: dict = {}
    booster = _train(params, X, y, 80, lgb.record_evaluation(history))
    metric = "binary_logloss" if objective == "binary" else "multi_logloss"
    expected = np.array(history["valid_0"][metric])
    losses = iteration_losses(booster, X[VALID], y[VALID], 1 if objective == "binary" else classes)
    np.testing.assert_allclose(losses / 1000, expected, rtol=1e-6)

    stopped = _train(params, X, y, 80, lgb.early_stopping(5, verbose=False))
    assert early_stopping_iteration(losses, 5) == stopped.best_iteration


def test_iteration_margin_counts__give_lightgbms_auc_curve_added_up_over_partitions_and_its_early_stop():
    X, y = _data(2, seed=5)
    params = {"objective": "binary", "metric": "auc", "learning_rate": 0.3, "num_leaves": 7, "verbose": -1}
    history: dict = {}
    booster = _train(params, X, y, 60, lgb.record_evaluation(history))
    expected = np.array(history["valid_0"]["auc"])
    # two partitions of the validation rows, counted apart and added up, as the workers do
    counts = iteration_margin_counts(booster, X[2000:2400], y[2000:2400])
    counts = counts + iteration_margin_counts(booster, X[2400:3000], y[2400:3000])
    assert counts.shape == (60, 2, 4096) and counts.sum(axis=(1, 2)).tolist() == [1000] * 60
    aucs = auc_from_counts(counts)
    np.testing.assert_allclose(aucs, expected, atol=2e-4)
    last = booster.predict(X[VALID], raw_score=True)
    assert aucs[-1] == pytest.approx(roc_auc_score(y[VALID], last), abs=2e-4)
    stopped = _train(params, X, y, 60, lgb.early_stopping(5, verbose=False))
    # where LightGBM stops on AUC, the curve from the counts stops too (a score is passed negated)
    assert early_stopping_iteration(-aucs, 5) == stopped.best_iteration
