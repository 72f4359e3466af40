"""benchmarks.uplift_observables: its regression ranks no customer by a model that saw their saving."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.uplift_observables import cross_fitted_saving
from training.uplift_eval import customer_folds


def test_cross_fitted_saving__learns_the_pattern_and_never_reads_a_customers_own_saving():
    rng = np.random.default_rng(5)
    n = 3000
    ids = np.arange(100_001, 100_001 + n)
    x = pd.DataFrame({"signal": rng.normal(size=n), "other": rng.normal(size=n)})
    saved = 0.02 * x["signal"].to_numpy() + rng.normal(0, 0.02, n)

    predicted = cross_fitted_saving(x, saved, ids)
    assert np.corrcoef(predicted, x["signal"])[0, 1] > 0.8

    # change the savings of one fold's customers: their predictions stay, everyone else's move
    fold = customer_folds(ids) == 0
    changed = np.where(fold, saved + 1.0, saved)
    again = cross_fitted_saving(x, changed, ids)
    np.testing.assert_array_equal(again[fold], predicted[fold])
    assert (np.abs(again[~fold] - predicted[~fold]) > 0.1).mean() > 0.9


def test_learned_from__a_randomised_test_shows_the_saving_in_expectation_only():
    from benchmarks.uplift_observables import learned_from

    rng = np.random.default_rng(2)
    n = 60_000
    ids = np.arange(100_001, 100_001 + n)
    x = pd.DataFrame({"risk": rng.normal(size=n), "other": rng.normal(size=n)})
    # one continuation: lost without the contact or not (likelier with risk), saved or pushed away
    lost = (rng.random(n) < 1 / (1 + np.exp(-2 * x["risk"].to_numpy()))).astype(float)
    saved = np.where(lost == 1, 1.0 * (rng.random(n) < 0.3), -1.0 * (rng.random(n) < 0.05))
    evidence = pd.DataFrame({"saved": saved, "lost": lost})
    np.testing.assert_array_equal(learned_from(evidence, "what-ifs", 0, x, ids), saved)
    naive = learned_from(evidence, "randomised", 0, x, ids)
    assert set(np.unique(naive)) <= {-2.0, 0.0, 2.0}, "one arm's outcome, scaled by the coin's odds"
    adjusted = learned_from(evidence, "randomised-baseline", 0, x, ids)
    for seen in (naive, adjusted):
        for group in (lost == 1, lost == 0):
            assert seen[group].mean() == pytest.approx(saved[group].mean(), abs=0.03)
    # the baseline takes out the part of the outcome the features foresee, not the saving
    assert adjusted.var() < 0.8 * naive.var()
