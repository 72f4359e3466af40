"""The hyperparameter search's space (what is searched, in which ranges, given the data) and its
explanation budget (rounds under the ceiling, and what a model costs to explain)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.settings import TuningConfig

if TYPE_CHECKING:
    import lightgbm as lgb


def search_space(X: pd.DataFrame, y: np.ndarray, tuning: TuningConfig) -> dict[str, Any]:
    """Optuna distributions of the searched parameters, given the data they are searched on.

    Categorical handling is searched only when there are categorical columns, the treatment of
    zeros only when there are missing values, and class re-weighting only when the config allows it.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    rows = len(X)
    space: dict[str, Any] = {
        "learning_rate": FloatDistribution(0.02, 0.3, log=True),
        "num_leaves": IntDistribution(4, 64, log=True),
        "max_depth": IntDistribution(3, tuning.max_depth),
        # a leaf of 200 rows is a lot for a table of a few thousand: the upper end follows the size
        "min_child_samples": IntDistribution(5, int(np.clip(rows // 50, 20, 300)), log=True),
        "feature_fraction": FloatDistribution(0.4, 1.0),
        "bagging_fraction": FloatDistribution(0.5, 1.0),
        "lambda_l1": FloatDistribution(1e-8, 10.0, log=True),
        "lambda_l2": FloatDistribution(1e-8, 30.0, log=True),
    }
    if any(isinstance(X[c].dtype, pd.CategoricalDtype) for c in X.columns):
        space |= {
            "cat_smooth": FloatDistribution(1.0, 100.0, log=True),
            "cat_l2": FloatDistribution(1.0, 50.0, log=True),
            "min_data_per_group": IntDistribution(5, 200, log=True),
        }
    if X.isna().to_numpy().any():
        space["zero_as_missing"] = CategoricalDistribution([False, True])
    positives = int(np.sum(y))
    if tuning.search_scale_pos_weight and 0 < positives < len(y) / 2:
        space["scale_pos_weight"] = FloatDistribution(1.0, (len(y) - positives) / positives, log=True)
    return space


def describe_space(space: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The search space as plain JSON (Optuna's own distribution encoding)."""
    from optuna.distributions import distribution_to_json

    return {name: json.loads(distribution_to_json(d)) for name, d in space.items()}


def rounds_within_budget(num_leaves: int, tuning: TuningConfig) -> int:
    """The most boosting rounds a model of `num_leaves` leaves per tree may have under the ceiling."""
    return max(1, tuning.max_tree_leaves // num_leaves)


def suggest(trial: Any, name: str, distribution: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)


def clipped(value: Any, distribution: Any) -> Any:
    """The default value, moved into the distribution's range (lambda_l1 = 0 -> 1e-8)."""
    if hasattr(distribution, "choices"):
        return value
    return type(value)(min(max(value, distribution.low), distribution.high))


def tree_leaves(booster: lgb.Booster, num_iteration: int | None = None) -> int:
    """All leaves of the model's trees (trees x leaves), up to `num_iteration`."""
    return model_size(booster, num_iteration)[0]


def shap_cost(booster: lgb.Booster, num_iteration: int | None = None) -> int:
    """Exact TreeSHAP's work per explained row, up to a constant: each tree's leaves x its depth
    squared, summed over the trees up to `num_iteration` (the algorithm is O(leaves x depth^2) per
    tree). Trees x leaves alone would rate a deep model with as many leaves as a shallow one."""
    return model_size(booster, num_iteration)[1]


def model_size(booster: lgb.Booster, num_iteration: int | None = None) -> tuple[int, int]:
    """(`tree_leaves`, `shap_cost`) from one dump of the model."""
    trees = booster.dump_model(num_iteration=num_iteration)["tree_info"]
    leaves = sum(t["num_leaves"] for t in trees)
    return leaves, sum(t["num_leaves"] * max(tree_depth(t["tree_structure"]), 1) ** 2 for t in trees)


def tree_depth(node: dict) -> int:
    """The depth of a tree of LightGBM's `dump_model` from this node (a lone leaf: 0)."""
    if "leaf_index" in node or "left_child" not in node:
        return 0
    return 1 + max(tree_depth(node["left_child"]), tree_depth(node["right_child"]))
