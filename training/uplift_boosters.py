"""The boosters beside the uplift effect models (`training.uplift`): the outcome model m(x) =
P(churn | x) the R-loss's residuals are taken from, and the take-up model P(offer accepted |
reached) that the list's floor and weight read (`serving.actions`) and, with `uplift.effect_input:
take_up`, the effect models themselves (`take_up_basis`)."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from serving.uplift_model import effect_basis, take_up_log_odds
from training.uplift_eval import customer_folds


def _boost(x: np.ndarray, y: np.ndarray, params: Any, seed: int, categorical: list[int]) -> lgb.Booster:
    """A small binary booster with early stopping on a random fifth, cut to its best round."""
    settings = {
        "objective": "binary",
        "metric": "binary_logloss",
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "lambda_l2": params.lambda_l2,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }
    valid = np.random.default_rng(seed).random(len(y)) < 0.2
    train = lgb.Dataset(x[~valid], y[~valid], categorical_feature=categorical, free_raw_data=False)
    check = lgb.Dataset(x[valid], y[valid], categorical_feature=categorical, reference=train)
    booster = lgb.train(
        settings,
        train,
        num_boost_round=params.num_boost_round,
        valid_sets=[check],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    return booster.model_from_string(booster.model_to_string(num_iteration=max(booster.best_iteration, 1)))


def outcome_model(
    x: np.ndarray, y: np.ndarray, params: Any, seed: int, categorical: list[int]
) -> tuple[np.ndarray, list[lgb.Booster]]:
    """m(x) = P(churn | x) for every row, cross-fitted: each half predicted by a booster fitted on
    the other, so the residuals the effect is learned from are out of sample; and the two boosters."""
    half = np.random.default_rng(seed + 1).random(len(y)) < 0.5
    m = np.zeros(len(y))
    boosters = []
    for mine in (half, ~half):
        boosters.append(_boost(x[~mine], y[~mine], params, seed, categorical))
        m[mine] = boosters[-1].predict(x[mine])
    return m, boosters


def take_up_counts(rows: pd.DataFrame, u: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(which rows' offer was answered, accepted (1) or declined (0) for those, the counts); the
    counts say why there is no take-up model where either is fewer than `u.min_arm_rows`."""
    outcome = rows["outcome"].astype(str) if "outcome" in rows.columns else pd.Series("", index=rows.index)
    answered = outcome.isin(["accepted", "declined"]).to_numpy()
    accepted = (outcome == "accepted").to_numpy()[answered].astype(int)
    counts: dict[str, Any] = {
        "accepted": int(accepted.sum()),
        "declined": int(len(accepted) - accepted.sum()),
    }
    if min(counts["accepted"], counts["declined"]) < u.min_arm_rows:
        counts["reason"] = f"{counts['accepted']} accepted and {counts['declined']} declined offers"
    return answered, accepted, counts


def take_up_model(
    rows: pd.DataFrame, x: np.ndarray, u: Any, seed: int, categorical: list[int]
) -> tuple[lgb.Booster | None, dict[str, Any]]:
    """P(accepted | reached) on the features, from the contacts whose outcome was recorded as
    accepted or declined (`serving.uplift_model`), and its counts (`take_up_counts`); None with
    too few of either."""
    answered, accepted, counts = take_up_counts(rows, u)
    if "reason" in counts:
        return None, counts
    return _boost(x[answered], accepted, u.params, seed, categorical), counts


def take_up_basis(
    rows: pd.DataFrame, x: np.ndarray, u: Any, seed: int, categorical: list[int]
) -> tuple[dict[str, Any], np.ndarray] | None:
    """The effect models' input with `uplift.effect_input: take_up`: each row's take-up score
    from a take-up model fitted on the other half of the customers (a row's own recorded outcome
    must not be in its score: who accepted is partly who the contact kept), as log-odds,
    standardised; (the basis spec, the column). None where a half has too few outcomes."""
    half = customer_folds(rows["customer_id"], 2) == 0
    score = np.zeros(len(rows))
    for mine in (half, ~half):
        booster, _ = take_up_model(rows[~mine], x[~mine], u, seed, categorical)
        if booster is None:
            return None
        score[mine] = booster.predict(x[mine])
    odds = take_up_log_odds(score)
    spec = {"take_up": {"mean": float(odds.mean()), "scale": float(odds.std() or 1.0)}}
    return spec, effect_basis(x, spec, {}, score)


__all__ = ["outcome_model", "take_up_basis", "take_up_counts", "take_up_model"]
