"""Behaviour of the hyperparameter search on a table with a planted effect the defaults underfit."""

import numpy as np
import pandas as pd
import pytest
import yaml

from churn.config import load_config
from training.byo import train_from_table

ROWS = 5000
TRIALS = 10


def planted_interaction_table(n: int = ROWS, seed: int = 11) -> pd.DataFrame:
    """Churn is high when an odd number of three thresholds is crossed (a three-way interaction
    with no main effect), plus a mild linear effect and two noise columns. With the configured
    parameters, early stopping gives up before the trees find the interaction on this sample."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"x{k}": rng.random(n) for k in range(6)})
    odd = (frame["x0"] > 0.5) ^ (frame["x1"] > 0.5) ^ (frame["x2"] > 0.5)
    logit = -2.2 + 2.4 * odd.to_numpy() + 1.0 * frame["x3"].to_numpy()
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["id"] = np.arange(n)
    return frame


@pytest.fixture(scope="module")
def planted_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted")
    planted_interaction_table().to_csv(tmp / "table.csv", index=False)

    def config(**tuning):
        path = tmp / "config.yaml"
        source = {"table": str(tmp / "table.csv"), "id_column": "id", "label_column": "churned"}
        path.write_text(yaml.safe_dump({"source": source, "training": {"tuning": tuning}}))
        return load_config(path, environ={})

    return config


def test_search__improves_held_out_log_loss_over_the_defaults_on_a_planted_interaction(planted_config):
    # given the table, the configured parameters, and a search whose ceiling the defaults fit under
    # (600 rounds x 15 leaves), so the comparison is of the search alone
    defaults, _ = train_from_table(planted_config())
    # when the search runs for a few trials
    tuned, _ = train_from_table(planted_config(enabled=True, trials=TRIALS, max_tree_leaves=10_000))
    # then the held-out (test split) log-loss of the calibrated model is clearly lower
    before, after = defaults.metrics["log_loss"], tuned.metrics["log_loss"]
    assert after < 0.97 * before, f"held-out log-loss {before:.4f} -> {after:.4f}"
    assert tuned.metrics["roc_auc"] > defaults.metrics["roc_auc"]
    search = tuned.extra["tuning"]
    assert search.trials[0].number == 0 and len(search.trials) == TRIALS
    assert tuned.bundle.meta["training"]["churn_params"] == search.params.model_dump()


def test_search__the_chosen_model_respects_the_explanation_ceiling(planted_config):
    # given a ceiling well below what the configured parameters may grow to (600 x 15 = 9,000)
    ceiling = 600
    # when the search runs under it
    tuned, _ = train_from_table(planted_config(enabled=True, trials=4, max_tree_leaves=ceiling))
    # then the trained booster's trees x leaves stay under it, and so does every finished trial's
    assert tuned.metrics["tree_leaves"] <= ceiling
    search = tuned.extra["tuning"]
    assert all(t.tree_leaves <= ceiling for t in search.trials if t.tree_leaves is not None)
    assert search.params.num_boost_round * search.params.num_leaves <= ceiling
    assert tuned.metrics["shap_rows_per_s"] > 0
