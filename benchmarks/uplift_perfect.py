"""A perfect uplift score from the generator's truth, and its Qini on a bank's campaign rows: how
much the bank's randomised history can show at all, whatever the learner (`benchmarks.uplift`,
`benchmarks.qini_noise`). Reads `truth/`, so it is for benchmarks only, never the product."""

from __future__ import annotations

import pandas as pd


def perfect_score(truth: pd.DataFrame, customer_id: pd.Series):
    """A perfect uplift score for each row's customer: the planted response type, persuadable
    first (1) and sleeping dogs last (-1), ties in random order."""
    import numpy as np

    kind = truth["uplift_type"].reindex(customer_id).astype(str).to_numpy()
    score = np.select([kind == "persuadable", kind == "sleeping_dog"], [1.0, -1.0], 0.0)
    return score + np.random.default_rng(0).normal(0, 1e-3, len(score))


def perfect_qini(tables: dict, config, truth: pd.DataFrame, cross_fit: pd.DataFrame | None) -> dict:
    """The Qini coefficient (with its 95% interval, resampling customers) of a perfect uplift
    score: the generator's planted response types (persuadable first, sleeping dogs last) on every
    campaign row, with the same design weights as the learned models' cross-fitted headline, and,
    where training's cross-fitted rows are cached (`cross_fit`), each outcome less the same
    held-out risk as the headline. It says how much the bank's randomised history can show at all,
    whatever the learner."""

    from features.campaigns import CONTROL, campaign_rows
    from training.uplift_eval import cluster_interval, design_weights, qini, randomised_groups

    if cross_fit is not None:
        rows, risk = cross_fit, cross_fit["risk"].to_numpy()
        treated, churn, weight = (cross_fit[c].to_numpy() for c in ("treated", "churn", "weight"))
    else:
        rows, risk = campaign_rows(tables, config), None
        group, _ = randomised_groups(rows, config.uplift.exploration_campaigns)
        treated = (rows["arm"] != CONTROL).to_numpy()
        churn = rows["churn"].to_numpy().astype(bool)
        weight = design_weights(treated, group)
    score = perfect_score(truth, rows["customer_id"])
    value = qini(score, treated, churn, weight, baseline=risk)[1]
    low, high = cluster_interval(
        score, treated, churn, weight, rows["customer_id"].to_numpy(), config.uplift.bootstrap, 1, risk
    )
    return {
        "perfect_qini": value,
        "perfect_qini_low": low,
        "perfect_qini_high": high,
        "perfect_qini_adjusted": risk is not None,
    }


__all__ = ["perfect_qini", "perfect_score"]
