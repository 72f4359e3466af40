"""How well learned uplift ranks customers, on randomised campaign rows the models did not see.

The Qini curve and coefficient (`qini`), weighted by the design's propensity so rows from
randomised groups that treated different shares compare fairly (`design_weights`), with bootstrap
intervals: row resamples for the per-action figures (`bootstrap_qini`), whole customers for the
cross-fitted headline (`cluster_interval`), since a customer is in several campaign months.

The headline is cross-fitted: the customers are cut into `CROSS_FOLDS` folds by a keyed hash of
their id (`customer_folds`), each fold ranked by models fitted on the others, so every campaign
row of every month is held out once, and each outcome is taken less the row's risk by the same
held-out outcome model (`qini`'s `baseline`). The folds split customers, not months: a fold's models have
seen other customers of the same months, so what is peculiar to a month can flatter the headline
a little as a forecast of future months; the latest months' figure beside it is forward in time,
and promotion compares on those months. Three held-out months alone were too few: on simulated
banks of 100,000 customers even the planted response types as the score had a Qini interval that
included zero there (docs/uplift-benchmarks.md).
"""

from __future__ import annotations

from fnmatch import fnmatch

import numpy as np
import pandas as pd

from features.campaigns import NOT_DRAWN, keyed_uniform

CUTS = np.linspace(0.0, 1.0, 21)
CROSS_FOLDS = 5
FOLD_KEY = 20_261_205  # the folds' hash key: the same customers in the same fold in every run


def propensity(treated: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The share of each row's randomised group that got the treatment (the design's propensity)."""
    codes, index = np.unique(group, return_inverse=True)
    share = np.bincount(index, weights=treated.astype(float), minlength=len(codes)) / np.bincount(
        index, minlength=len(codes)
    )
    return share[index]


def qini(
    score: np.ndarray,
    treated: np.ndarray,
    churn: np.ndarray,
    weight: np.ndarray | None = None,
    count: np.ndarray | None = None,
    baseline: np.ndarray | None = None,
) -> tuple[pd.DataFrame, float]:
    """Qini curve (customers kept in the top share, against the controls of the same share) and
    its coefficient: the mean gap between the curve and random targeting, per treated customer.

    `weight` (inverse propensity: 1/e for a treated row, 1/(1-e) for a control) balances rows from
    randomised groups that treated different shares: without it a score that ranks one group's
    customers first compares that group's treated with another group's controls. `count` (a
    bootstrap's draws of each row) repeats rows: the shares are then of the drawn rows.

    `baseline` (each row's churn risk by a model that never saw the row) is taken off every
    outcome, a regression adjustment: inside a randomised group the treated and the controls have
    the same risk in expectation, so the expected curve is the same, while the chance difference
    between the risk of the treated and of the controls at a cut, part of its noise, cancels."""
    order = np.argsort(-score, kind="stable")
    t = treated[order]
    y = churn[order].astype(float) - (0.0 if baseline is None else baseline[order])
    c = np.ones(len(order)) if count is None else np.asarray(count, dtype=float)[order]
    w = c if weight is None else weight[order] * c
    n_t, n_c = np.cumsum(w * t), np.cumsum(w * ~t)
    churn_t, churn_c = np.cumsum(w * y * t), np.cumsum(w * y * ~t)
    drawn = np.cumsum(c)
    points = []
    for cut in CUTS:
        k = int(np.searchsorted(drawn, round(cut * drawn[-1]), side="right")) if len(order) else 0
        if k == 0:
            points.append(0.0)
            continue
        nt, nc = n_t[k - 1], n_c[k - 1]
        points.append(float(churn_c[k - 1] * nt / nc - churn_t[k - 1]) if nc else 0.0)
    curve = pd.DataFrame({"share": CUTS, "kept": points})
    total = max(float(n_t[-1]), 1.0) if len(order) else 1.0
    coefficient = float(np.mean(np.array(points) - CUTS * points[-1]) / total)
    return curve, coefficient


def randomised_groups(rows: pd.DataFrame, exploration_campaigns: str) -> tuple[np.ndarray, np.ndarray]:
    """(each row's randomised group, whether the bank's targeting chose it): each targeted campaign
    is a group; each month's exploration joins its not-drawn sample in one."""
    campaign = rows["campaign"].astype(str)
    month = pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m")
    exploring = campaign.eq(NOT_DRAWN) | campaign.map(lambda name: fnmatch(name, exploration_campaigns))
    group = np.where(exploring, "explore " + month, "campaign " + campaign).astype(str)
    return group, (~exploring).to_numpy()


def design_weights(treated: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Inverse-propensity weights for `qini`: 1/e for a treated row, 1/(1-e) for a control, 0 for a
    row whose group is (almost) all treated or all control."""
    e = propensity(treated, group)
    informative = (e > 0.01) & (e < 0.99)
    return np.where(informative, np.where(treated, 1 / np.maximum(e, 0.01), 1 / np.maximum(1 - e, 0.01)), 0.0)


def adjusted_qini(group: tuple[np.ndarray, ...]) -> tuple[pd.DataFrame, float]:
    """`qini` of a held-out group (score, treated, churn, weight, risk), each outcome less its
    risk by the outcome model fitted without the held-out months: the headline's adjustment."""
    score, treated, churn, weight, risk = group
    return qini(score, treated, churn, weight, baseline=risk)


def bootstrap_qini(
    groups: dict[str, tuple[np.ndarray, ...]],
    reps: int,
    seed: int,
    pooled: list[str],
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of each group's Qini coefficient and, as `pooled`, of the average
    of the groups named in `pooled` (the actions) weighted by treated customers, from the same
    resamples. A group is (score, treated, churn, weight), or with a fifth, its rows' `baseline`
    risk (`qini`)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in [*groups, "pooled"]}
    weights = np.array([int(groups[name][1].sum()) for name in pooled], dtype=float)
    for _ in range(reps):
        for name, (score, treated, churn, weight, *baseline) in groups.items():
            pick = rng.integers(0, len(score), len(score))
            base = baseline[0][pick] if baseline else None
            draws[name].append(qini(score[pick], treated[pick], churn[pick], weight[pick], baseline=base)[1])
        draws["pooled"].append(float(np.average([draws[name][-1] for name in pooled], weights=weights)))
    return {name: tuple(float(v) for v in np.percentile(d, [2.5, 97.5])) for name, d in draws.items()}


def customer_folds(customer_id: pd.Series | np.ndarray, folds: int = CROSS_FOLDS) -> np.ndarray:
    """Each row's fold, 0 .. folds - 1, by a keyed hash of its customer: a customer's rows of every
    month share one fold, so no model ranks a customer whose outcomes it learned from."""
    ids = np.asarray(customer_id)
    return np.minimum((keyed_uniform(ids, FOLD_KEY, 0) * folds).astype(np.int64), folds - 1)


def within_fold_rank(score: np.ndarray) -> np.ndarray:
    """A fold's scores as their ranks in (0, 1), so the folds pool at equal quantiles: each fold
    is ranked by its own models, whose scale and average effect differ from fold to fold, and
    pooled raw the folds would be ranked against each other by that average rather than the
    customers by their uplift."""
    order = np.argsort(np.argsort(score, kind="stable"), kind="stable")
    return (order + 0.5) / max(len(score), 1)


def cluster_interval(
    score: np.ndarray,
    treated: np.ndarray,
    churn: np.ndarray,
    weight: np.ndarray,
    cluster: np.ndarray,
    reps: int,
    seed: int,
    baseline: np.ndarray | None = None,
) -> tuple[float, float]:
    """95% percentile interval of the Qini coefficient (adjusted by `baseline`, as in `qini`),
    resampling whole customers (`cluster`):
    each resample counts each customer's rows as many times as the customer was drawn. The
    scores are held fixed (the models are not refitted per resample): the interval is of the
    ranking these models make, not of the learning procedure."""
    _, index = np.unique(np.asarray(cluster), return_inverse=True)
    n = int(index.max()) + 1 if len(index) else 0
    # the ranking is the same in every resample: sorted once, each `qini` below finds it in order
    order = np.argsort(-score, kind="stable")
    if baseline is not None:
        churn = churn.astype(float) - baseline  # the same outcomes `qini` adjusts, once
    score, treated, churn, weight, index = (a[order] for a in (score, treated, churn, weight, index))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        times = np.bincount(rng.integers(0, n, n), minlength=n)[index]
        draws.append(qini(score, treated, churn, weight, count=times)[1])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return float(low), float(high)


__all__ = [
    "CROSS_FOLDS",
    "adjusted_qini",
    "bootstrap_qini",
    "cluster_interval",
    "customer_folds",
    "design_weights",
    "propensity",
    "qini",
    "randomised_groups",
    "within_fold_rank",
]
