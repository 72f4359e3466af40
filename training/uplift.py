"""Learned uplift per action, from the bank's randomised retention campaigns.

Every campaign in the `contacts` table holds back a random control group, and the bank mixed its
actions at random within a campaign (and explored across risk levels with random actions), so
within each campaign, who got which action (or none) is random given what the bank saw. For each
campaign month whose horizon the data confirms, the rows are the campaign's customers with their
features at the first of that month (before the contact) and whether they churned within the
horizon after it.

Controls: the campaigns' own control groups, and a sample of the contactable customers the
month's exploration did not draw (it drew at random from them; `features.campaigns`), which join
that month's exploration campaign as one randomised group.

The learner: an R-learner on LightGBM. The treatment propensity is known from the design: the
share of a randomised group (a campaign; a month's exploration with its not-drawn sample) that
got the treatment, counted from the rows. The outcome model m(x) = P(churn | x) is a small binary
booster on every row (it also sees whether the bank's targeting chose the row), cross-fitted on
two halves. The effect tau(x) = P(churn | x, treated) - P(churn | x, not) = m(x) r(x), a relative change of
the risk, minimises the R-loss sum ((y - m(x)) - (t - e) m(x) r(x))^2: a weighted ridge regression (or lasso,
`uplift.effect_penalty`, by 5-fold cross-validation) of (y - m) / ((t - e) m) on the standardised
features (the ridge penalty by generalised cross-validation,
each row also weighed by the inverse of its churn variance): first for any contact against the
controls, then for each action against the controls on top of the any-contact effect, so an
action with few rows stays near it. With a known propensity the R-loss is unbiased whatever the
outcome model's errors (they cost variance, not bias), which is why it replaced a base model with
offsets on its log-odds: the base, fitted on the few controls, was miscalibrated on the targeted
customers and the offsets absorbed its error as a harmful effect of contacting them. Chosen over
one booster per arm (a T-learner), whose per-arm trees learned almost no heterogeneity on so few
churners, and over the action as a feature (an S-learner), whose trees split on it late or never.
uplift(a, x) = -P(churn) r_a(x). Where an action has little evidence, `serving.uplift_model` shrinks
toward the playbook's effect.

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
from serving.uplift_model import CONTACT, CONTROL, UpliftModel, apply_effect, effect_basis

CUTS = np.linspace(0.0, 1.0, 21)
MIN_RISK = 0.002  # the least churn probability an effect is taken relative to


@dataclass
class UpliftResult:
    model: UpliftModel | None
    metrics: dict[str, float]
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


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


def propensity(treated: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The share of each row's randomised group that got the treatment (the design's propensity)."""
    codes, index = np.unique(group, return_inverse=True)
    share = np.bincount(index, weights=treated.astype(float), minlength=len(codes)) / np.bincount(
        index, minlength=len(codes)
    )
    return share[index]


def basis_spec(
    x: np.ndarray, names: list[str], categorical: list[int], keep: set[str] | None = None
) -> dict[str, Any]:
    """How the effect models read the features (those in `keep`, or all): numeric ones centred and
    scaled as in these rows, categorical ones as indicators of the levels seen
    (`serving.uplift_model.effect_basis`)."""
    chosen = [j for j in range(x.shape[1]) if keep is None or names[j] in keep]
    numeric = [j for j in chosen if j not in categorical]
    categorical = [j for j in categorical if j in chosen]
    mean = np.nan_to_num(np.nanmean(x[:, numeric], axis=0))
    scale = np.nan_to_num(np.nanstd(x[:, numeric], axis=0))
    levels = {names[j]: sorted(float(v) for v in np.unique(x[:, j][~np.isnan(x[:, j])])) for j in categorical}
    return {
        "numeric": [names[j] for j in numeric],
        "mean": mean.tolist(),
        "scale": np.where(scale > 0, scale, 1.0).tolist(),
        "levels": {k: v[1:] for k, v in levels.items() if len(v) > 1},  # the first level is the reference
    }


def fit_effect(
    z: np.ndarray,
    y: np.ndarray,
    treated: np.ndarray,
    e: np.ndarray,
    m: np.ndarray,
    init: np.ndarray | None = None,
    penalty: str = "ridge",
) -> dict[str, Any]:
    """r(x) = b + w.z, the treatment's relative change of P(churn) (tau(x) = m(x) r(x)), by the
    R-loss (module docstring) with a ridge penalty chosen by generalised cross-validation; with
    `init`, what an action adds to it. Rows whose group is all treated or all control carry no
    information and are left out."""
    from sklearn.linear_model import LassoCV, RidgeCV

    risk = np.clip(m, MIN_RISK, 1 - MIN_RISK)
    resid = (treated.astype(float) - e) * risk
    informative = (e > 0.01) & (e < 0.99)
    z, resid, y, risk = z[informative], resid[informative], y[informative], risk[informative]
    label = (y - m[informative]) / resid - (0.0 if init is None else init[informative])
    # each row's squared residual weighed by the inverse of its churn variance, risk (1 - risk): a
    # low-risk row's outcome is less noisy, and without this the safe customers (most of the
    # exploration) would count for almost nothing; scaled to a mean of one
    weight = resid**2 / (risk * (1 - risk))
    if penalty == "lasso":
        fit = LassoCV(alphas=30, cv=5, random_state=0, max_iter=20_000, tol=1e-3)
    else:
        fit = RidgeCV(alphas=np.logspace(0, 6, 13) * len(y) / 1000)
    fit.fit(z, label, sample_weight=weight / weight.mean())
    return {"b": float(fit.intercept_), "w": fit.coef_.tolist(), "alpha": float(fit.alpha_)}


def qini(
    score: np.ndarray, treated: np.ndarray, churn: np.ndarray, weight: np.ndarray | None = None
) -> tuple[pd.DataFrame, float]:
    """Qini curve (customers kept in the top share, against the controls of the same share) and
    its coefficient: the mean gap between the curve and random targeting, per treated customer.

    `weight` (inverse propensity: 1/e for a treated row, 1/(1-e) for a control) balances rows from
    randomised groups that treated different shares: without it a score that ranks one group's
    customers first compares that group's treated with another group's controls."""
    order = np.argsort(-score, kind="stable")
    t, y = treated[order], churn[order]
    w = np.ones(len(order)) if weight is None else weight[order]
    n_t, n_c = np.cumsum(w * t), np.cumsum(w * ~t)
    churn_t, churn_c = np.cumsum(w * y * t), np.cumsum(w * y * ~t)
    points = []
    for cut in CUTS:
        k = int(round(cut * len(order)))
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


def _bootstrap_qini(
    groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], reps: int, seed: int
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of each group's Qini coefficient and of the actions' average
    weighted by treated customers (`pooled`; every group but CONTACT), from the same resamples."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in [*groups, "pooled"]}
    actions = [name for name in groups if name != CONTACT]
    weights = np.array([int(groups[name][1].sum()) for name in actions], dtype=float)
    for _ in range(reps):
        for name, (score, treated, churn, weight) in groups.items():
            pick = rng.integers(0, len(score), len(score))
            draws[name].append(qini(score[pick], treated[pick], churn[pick], weight[pick])[1])
        draws["pooled"].append(float(np.average([draws[name][-1] for name in actions], weights=weights)))
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
    penalty = u.effect_penalty

    group, targeted = randomised_groups(rows, u.exploration_campaigns)
    with_selection = np.column_stack([x_all, targeted.astype(float)])
    feature_index = {name: j for j, name in enumerate(bundle.feature_names)}
    families = bundle.meta["features"]["families"]
    effect_features = (
        {name for name in bundle.feature_names if families.get(name) in u.effect_families}
        if u.effect_families
        else None
    )
    if effect_features is not None and not effect_features:
        raise ValueError(f"uplift.effect_families: no feature of {list(u.effect_families)} in the model")

    def fitted(
        train_mask: np.ndarray,
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, int], list[lgb.Booster]]:
        """The effect models (`serving.uplift_model`'s `meta["effects"]`), evidence shares and events,
        and the outcome model's two boosters, from the rows in `train_mask`."""
        shares, events = {}, {}
        control_events = int(y[train_mask & (arm == CONTROL)].sum())
        idx = np.flatnonzero(train_mask)
        m, outcome = outcome_model(with_selection[idx], y[idx], u.params, seed, categorical)
        spec = basis_spec(x_all[idx], bundle.feature_names, categorical, effect_features)
        z = effect_basis(x_all[idx], spec, feature_index)
        arms, groups, ys = arm[idx], group[idx], y[idx]
        contacted = arms != CONTROL
        effects: dict[str, Any] = {"basis": spec}
        effects[CONTACT] = fit_effect(z, ys, contacted, propensity(contacted, groups), m, penalty=penalty)
        any_contact = apply_effect(z, effects[CONTACT])
        for action in playbook_actions:
            mine = train_mask & (arm == action)
            if mine.sum() < u.min_arm_rows or y[mine].sum() == 0:
                continue
            pair = (arms == action) | (arms == CONTROL)
            treated = arms[pair] == action
            e = propensity(treated, groups[pair])
            effects[action] = fit_effect(
                z[pair], ys[pair], treated, e, m[pair], init=any_contact[pair], penalty=penalty
            )
            events[action] = min(int(y[mine].sum()), control_events)
            shares[action] = events[action] / (events[action] + u.prior_events)
        return effects, shares, events, outcome

    metrics: dict[str, float] = {}
    curves: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    probe_effects: dict[str, Any] = {}
    if test.any():
        effects, shares, _, outcome = fitted(~test)
        probe_effects = {"basis": effects["basis"], CONTACT: effects[CONTACT]}
        probe = UpliftModel(
            {
                "actions": playbook_actions,
                "learned_share": shares,
                "feature_names": bundle.feature_names,
                "effects": effects,
            }
        )
        # the effects are relative to the churn risk, read for the held-out rows from the outcome model
        risk = np.mean([b.predict(with_selection[test]) for b in outcome], axis=0)
        learned = probe.learned(x_all[test], risk)
        test_arm, test_y, test_group = arm[test], y[test], group[test]
        groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for action, estimate in learned.items():
            mine = (test_arm == action) | (test_arm == CONTROL)
            treated = test_arm[mine] == action
            if treated.sum() < 20 or (~treated).sum() < 20:
                continue
            weight = design_weights(treated, test_group[mine])
            groups[action] = (estimate[mine], treated, test_y[mine].astype(bool), weight)
            curves[action], metrics[f"uplift_qini_{action}"] = qini(*groups[action])
        if groups:
            weights = [int(g[1].sum()) for g in groups.values()]
            metrics["uplift_qini_actions"] = float(
                np.average([metrics[f"uplift_qini_{a}"] for a in groups], weights=weights)
            )
            # the headline: whom to contact at all, every held-out row, ranked by the learned
            # uplift of any contact (the list's first decision; the per-action curves split the
            # same controls between the actions and say which action, with less power each)
            z = effect_basis(x_all[test], effects["basis"], feature_index)
            contact = -risk * apply_effect(z, effects[CONTACT])
            treated = test_arm != CONTROL
            groups[CONTACT] = (contact, treated, test_y.astype(bool), design_weights(treated, test_group))
            curves[CONTACT], metrics["uplift_qini"] = qini(*groups[CONTACT])
            intervals = _bootstrap_qini(groups, u.bootstrap, seed)
            for name, (low, high) in intervals.items():
                key = {"pooled": "uplift_qini_actions", CONTACT: "uplift_qini"}.get(
                    name, f"uplift_qini_{name}"
                )
                metrics[f"{key}_low"], metrics[f"{key}_high"] = low, high
    else:
        notes.append(
            f"uplift: {len(months)} campaign months, too few to hold {u.test_months} out: no Qini figures"
        )
    effects, shares, events, _ = fitted(np.ones(len(rows), dtype=bool))
    for action in playbook_actions:
        if action not in shares:
            notes.append(f"uplift: {action}: too little randomised evidence, the playbook's effect")
    meta = {
        "actions": playbook_actions,
        "learned_share": shares,
        "learner": "r-learner, linear relative effects",
        "effects": effects,
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
            # the any-contact model fitted without the held-out months: promotion ranks the same
            # held-out campaigns with it and with the champion's models (training.uplift_compare)
            "effects": probe_effects,
        }
    metrics["uplift_rows"] = float(len(rows))
    metrics["uplift_control_rows"] = float((arm == CONTROL).sum())
    return UpliftResult(UpliftModel(meta), metrics, curves, notes)


__all__ = ["UpliftResult", "campaign_rows", "fit_uplift", "qini"]
