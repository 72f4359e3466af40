"""Learned uplift per action, from the bank's randomised retention campaigns.

Every campaign in the `contacts` table holds back a random control group, and the bank mixed its
actions at random within a campaign (and explored across risk levels with random actions), so
within the campaigns' customers, who got which action (or none) is random given what the bank
saw. For each campaign month whose horizon the data confirms, the rows are the campaign's
customers with their features at the first of that month (before the contact) and whether they
churned within the horizon after it.

Controls: the campaigns' own control groups, and a sample of the contactable customers the
month's exploration did not draw (it drew at random from them; `features.campaigns`).

The model: a base LightGBM model of churn without a contact, on the control rows, that also sees
whether the bank's targeting chose the row (its risk view saw more than the features, so targeted
customers are compared with targeted controls); then L2-penalised linear offsets on the base's
log-odds, fitted on the contacted rows: one for any contact, and one per action on top of it.
uplift(a, x) = P(churn | x, no contact) - P(churn | x, contact with a), with the base read as for
a customer drawn at random. Chosen over one LightGBM model per arm (a T-learner), whose
per-arm trees stopped after a handful of rounds on so few churners and learned almost no
heterogeneity, and over an S-learner (the action as a feature), whose trees split on the action
late or never: the risk is non-linear and gets the trees, the effect of a contact varies smoothly
with a few traits (tenure, digital use, complaints, competition) and gets a penalised linear form
that a few hundred churners can fit. Where an action has little evidence, `serving.uplift_model`
shrinks toward the playbook's effect.

Evaluation: the latest `test_months` campaign months are held out; per action, the Qini curve of
its rows and the controls ranked by predicted uplift, the Qini coefficient (the area between the
curve and random targeting, as a share of the action's customers) with a bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.campaigns import NOT_DRAWN, campaign_rows
from serving.uplift_model import BASE, CONTACT, CONTROL, UpliftModel, apply_offset, standardise

CUTS = np.linspace(0.0, 1.0, 21)


@dataclass
class UpliftResult:
    model: UpliftModel | None
    metrics: dict[str, float]
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _fit_arm(x: np.ndarray, y: np.ndarray, params: Any, seed: int, categorical: list[int]) -> lgb.Booster:
    """The base: churn within the horizon without a contact, a small binary booster."""
    rng = np.random.default_rng(seed)
    valid = rng.random(len(y)) < 0.2
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


def standardiser(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(z, axis=0)
    scale = np.nanstd(z, axis=0)
    return np.nan_to_num(mean), np.where(np.nan_to_num(scale) > 0, np.nan_to_num(scale), 1.0)


def fit_offset(z: np.ndarray, y: np.ndarray, init: np.ndarray, l2: float) -> dict[str, Any]:
    """Logistic regression of `y` on `z` with `init` as a fixed offset (log-odds) and an L2 penalty
    on the weights: how an arm's churn log-odds differ from the model above it, smoothly in z."""
    from scipy.optimize import minimize

    design = np.column_stack([np.ones(len(y)), z])

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        margin = init + design @ theta
        value = float(np.sum(np.logaddexp(0.0, margin) - y * margin) + 0.5 * l2 * theta[1:] @ theta[1:])
        grad = design.T @ (1.0 / (1.0 + np.exp(-margin)) - y)
        grad[1:] += l2 * theta[1:]
        return value, grad

    theta = minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x
    return {"b": float(theta[0]), "w": theta[1:].tolist()}


def qini(score: np.ndarray, treated: np.ndarray, churn: np.ndarray) -> tuple[pd.DataFrame, float]:
    """Qini curve (customers kept in the top share, against the controls of the same share) and
    its coefficient: the mean gap between the curve and random targeting, per treated customer."""
    order = np.argsort(-score, kind="stable")
    t, y = treated[order], churn[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    churn_t, churn_c = np.cumsum(y * t), np.cumsum(y * ~t)
    points = []
    for cut in CUTS:
        k = int(round(cut * len(order)))
        if k == 0:
            points.append(0.0)
            continue
        nt, nc = n_t[k - 1], n_c[k - 1]
        points.append(float(churn_c[k - 1] * nt / nc - churn_t[k - 1]) if nc else 0.0)
    curve = pd.DataFrame({"share": CUTS, "kept": points})
    total = max(int(treated.sum()), 1)
    coefficient = float(np.mean(np.array(points) - CUTS * points[-1]) / total)
    return curve, coefficient


def _bootstrap_qini(
    groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], reps: int, seed: int
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of each action's Qini coefficient and of their average weighted
    by treated customers (`pooled`), from the same resamples."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in [*groups, "pooled"]}
    weights = np.array([int(t.sum()) for _, t, _ in groups.values()], dtype=float)
    for _ in range(reps):
        values = []
        for name, (score, treated, churn) in groups.items():
            pick = rng.integers(0, len(score), len(score))
            values.append(qini(score[pick], treated[pick], churn[pick])[1])
            draws[name].append(values[-1])
        draws["pooled"].append(float(np.average(values, weights=weights)))
    return {name: tuple(float(v) for v in np.percentile(d, [2.5, 97.5])) for name, d in draws.items()}


def fit_uplift(rows: pd.DataFrame, bundle: Any, config: AppConfig) -> UpliftResult:
    """The arm models, the evidence shares, and the held-out Qini figures."""
    u = config.uplift
    playbook_actions = list(config.playbook.actions) if config.playbook else []
    if rows.empty or (rows["arm"] == CONTROL).sum() < u.min_arm_rows:
        n = 0 if rows.empty else int((rows["arm"] == CONTROL).sum())
        return UpliftResult(
            None, {}, notes=[f"uplift: {n} randomised control rows (need {u.min_arm_rows}): playbook effects"]
        )
    months = np.sort(rows["as_of"].unique())
    held = months[-u.test_months :] if len(months) > u.test_months + 2 else months[:0]
    test = rows["as_of"].isin(held).to_numpy()
    x_all = bundle.matrix(bundle.prepare(rows[bundle.feature_names]))
    categorical = [
        j for j, n in enumerate(bundle.feature_names) if bundle.meta["features"]["dtypes"][n] == "category"
    ]
    y = rows["churn"].to_numpy().astype(int)
    arm = rows["arm"].to_numpy()
    seed = config.training.seed

    numeric = [j for j in range(x_all.shape[1]) if j not in categorical]
    campaign = rows["campaign"].astype(str)
    targeted = (
        ~campaign.eq(NOT_DRAWN) & ~campaign.map(lambda name: fnmatch(name, u.exploration_campaigns))
    ).to_numpy(dtype=float)
    z_names = [bundle.feature_names[j] for j in numeric]

    def fitted(
        train_mask: np.ndarray,
    ) -> tuple[dict[str, lgb.Booster], dict[str, Any], dict[str, float], dict[str, int]]:
        shares, events = {}, {}
        control = train_mask & (arm == CONTROL)
        contacted = train_mask & (arm != CONTROL)
        control_events = int(y[control].sum())
        # the base sees whether the bank's targeting chose the row (its risk view saw more than the
        # features): treated rows are compared with controls chosen the same way
        with_selection = np.column_stack([x_all, targeted])
        boosters = {BASE: _fit_arm(with_selection[control], y[control], u.params, seed, categorical)}
        base = boosters[BASE].predict(with_selection, raw_score=True)
        scaling = standardiser(x_all[train_mask][:, numeric])
        z = standardise(x_all[:, numeric], scaling)
        offsets = {CONTACT: fit_offset(z[contacted], y[contacted], base[contacted], u.contact_l2)}
        contact = base + apply_offset(z, offsets[CONTACT])
        for action in playbook_actions:
            mine = train_mask & (arm == action)
            if mine.sum() < u.min_arm_rows or y[mine].sum() == 0:
                continue
            offsets[action] = fit_offset(z[mine], y[mine], contact[mine], u.action_l2)
            events[action] = min(int(y[mine].sum()), control_events)
            shares[action] = events[action] / (events[action] + u.prior_events)
        linear = {
            "features": z_names,
            "mean": scaling[0].tolist(),
            "scale": scaling[1].tolist(),
            "offsets": offsets,
        }
        return boosters, linear, shares, events

    metrics: dict[str, float] = {}
    curves: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    if test.any():
        boosters, linear, shares, _ = fitted(~test)
        probe = UpliftModel(
            {
                "actions": playbook_actions,
                "learned_share": shares,
                "linear": linear,
                "feature_names": bundle.feature_names,
            },
            boosters,
        )
        learned = probe.learned(x_all[test])
        test_arm, test_y = arm[test], y[test]
        groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for action, estimate in learned.items():
            mine = (test_arm == action) | (test_arm == CONTROL)
            treated = test_arm[mine] == action
            if treated.sum() < 20 or (~treated).sum() < 20:
                continue
            groups[action] = (estimate[mine], treated, test_y[mine].astype(bool))
            curves[action], metrics[f"uplift_qini_{action}"] = qini(*groups[action])
        if groups:
            weights = [int(g[1].sum()) for g in groups.values()]
            metrics["uplift_qini"] = float(
                np.average([metrics[f"uplift_qini_{a}"] for a in groups], weights=weights)
            )
            for name, (low, high) in _bootstrap_qini(groups, u.bootstrap, seed).items():
                key = "uplift_qini" if name == "pooled" else f"uplift_qini_{name}"
                metrics[f"{key}_low"], metrics[f"{key}_high"] = low, high
    else:
        notes.append(
            f"uplift: {len(months)} campaign months, too few to hold {u.test_months} out: no Qini figures"
        )
    boosters, linear, shares, events = fitted(np.ones(len(rows), dtype=bool))
    for action in playbook_actions:
        if action not in shares:
            notes.append(f"uplift: {action}: too little randomised evidence, the playbook's effect")
    meta = {
        "actions": playbook_actions,
        "learned_share": shares,
        "linear": linear,
        "feature_names": bundle.feature_names,
        "events": events,
        "rows": {a: int((arm == a).sum()) for a in [CONTROL, *playbook_actions]},
        "campaign_months": [f"{pd.Timestamp(m):%Y-%m}" for m in months],
        "held_out_months": [f"{pd.Timestamp(m):%Y-%m}" for m in held],
    }
    if "uplift_qini" in metrics:
        meta["held_out"] = {
            "qini": metrics["uplift_qini"],
            "qini_low": metrics["uplift_qini_low"],
            "qini_high": metrics["uplift_qini_high"],
        }
    metrics["uplift_rows"] = float(len(rows))
    metrics["uplift_control_rows"] = float((arm == CONTROL).sum())
    return UpliftResult(UpliftModel(meta, boosters), metrics, curves, notes)


__all__ = ["UpliftResult", "campaign_rows", "fit_uplift", "qini"]
