"""benchmarks.uplift_observables: its regression ranks no customer by a model that saw their saving."""

import numpy as np
import pandas as pd

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
