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

The playbook's own choice: each row's action as the playbook would have chosen it that month
(`serving.scoring.playbook_choice`: the bundle's risk, value, reasons and kind of churn), and one
more R-learner effect, of a contact whose action was that choice against the controls with one
(`fit_playbook_effect`; the propensity is the share of the rows with the same group and choice
that got it). The campaigns mixed their actions at random, so most contacts did not fit the
customer's cause: any contact's effect, and an action's offset on it, describe the average
contact, while a list that keeps the playbook's action makes the fitting one. On the design bank
the fitting contacts' relative effect by fifth of the take-up score was +23%, -15%, -32%, -8% and
-16% (standard errors 10-13%), any contact's -2% to -8% (docs/uplift-benchmarks.md).

What r reads (`uplift.effect_input`): the take-up score alone (`take_up`, the default), or the
standardised features (`features`). The take-up score is P(offer accepted | reached), a booster
fitted on the offers the campaigns recorded as accepted or declined (`take_up_model`). A contact's outcome is a far denser signal of
who a contact moves than the churn it changes, and one input costs the R-loss far less variance
than a hundred. Each row's score comes from a take-up model fitted on the other half of the
customers (`take_up_basis`): a row's own outcome is partly whether the contact kept it.

Evaluation (`training/uplift_eval.py`, which says how the headline is cross-fitted and adjusted
for risk; the unadjusted figure is kept as `uplift_qini_unadjusted`). The latest `test_months`
campaign months are also held out, models fitted before them: any contact's figure there
(`_recent`), each action's, and the fitting contacts' of the playbook-choice model
(`uplift_qini_playbook_action`); promotion compares challenger and champion on those months
(`training/uplift_compare.py`). That model also gets a cross-fitted figure over every month
(`uplift_qini_playbook_action_cross_fitted`, `training.uplift_effects.PlaybookCrossFit`): the one
`uplift.playbook_effect: auto` reads before it lets that model value the list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.campaigns import campaign_rows
from serving.scoring import playbook_choice
from serving.uplift_model import (
    CONTACT,
    CONTROL,
    PLAYBOOK,
    UpliftModel,
    apply_effect,
    basis_take_up,
    effect_basis,
)
from training.uplift_boosters import outcome_model, take_up_basis, take_up_counts, take_up_model
from training.uplift_effects import (
    PlaybookCrossFit,
    basis_spec,
    fit_effect,
    fit_playbook_effect,
    fitting_contacts,
    playbook_held_out,
)
from training.uplift_eval import (
    CROSS_FOLDS,
    adjusted_qini,
    bootstrap_qini,
    cluster_interval,
    customer_folds,
    design_weights,
    propensity,
    qini,
    randomised_groups,
    within_fold_rank,
)

RECENT = "contact_latest_months"  # the any-contact figures of the held-out latest months


@dataclass
class UpliftResult:
    model: UpliftModel | None
    metrics: dict[str, float]
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # every campaign row as the cross-fitted headline ranked it: score (the rank within its fold),
    # risk (the outcome model's, fitted without the row's customer), treated, churn, design weight
    cross_fit: pd.DataFrame | None = None


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
    # what the playbook would have chosen for each row that month, as the list decides it
    segment = rows["segment"].to_numpy() if "segment" in rows else np.full(len(rows), None, dtype=object)
    choice = playbook_choice(bundle, x_all, segment, config) if playbook_actions else None
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
        train_mask: np.ndarray, contact_only: bool = False, final: bool = False
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, int], list[lgb.Booster], lgb.Booster | None]:
        """The effect models (`serving.uplift_model`'s `meta["effects"]`; with `contact_only`, any
        contact's alone), evidence shares and events, the outcome model's two boosters, and the
        take-up model (for the `final` models or where the effects read it; None where there are
        too few outcomes), from the rows in `train_mask`."""
        shares, events = {}, {}
        control_events = int(y[train_mask & (arm == CONTROL)].sum())
        idx = np.flatnonzero(train_mask)
        m, outcome = outcome_model(with_selection[idx], y[idx], u.params, seed, categorical)
        reads_take_up = u.effect_input == "take_up"
        take_up, basis = None, None
        if final or reads_take_up:
            take_up, _ = take_up_model(rows.iloc[idx], x_all[idx], u, seed, categorical)
        if reads_take_up and take_up is not None:
            basis = take_up_basis(rows.iloc[idx], x_all[idx], u, seed, categorical)
        if basis is not None:
            spec, z = basis
        else:
            spec = basis_spec(x_all[idx], bundle.feature_names, categorical, effect_features)
            z = effect_basis(x_all[idx], spec, feature_index)
        arms, groups, ys = arm[idx], group[idx], y[idx]
        contacted = arms != CONTROL
        effects: dict[str, Any] = {"basis": spec}
        effects[CONTACT] = fit_effect(z, ys, contacted, propensity(contacted, groups), m, penalty=penalty)
        any_contact = apply_effect(z, effects[CONTACT])
        if choice is not None:  # the cross-fit (`contact_only`) judges this model too
            fitted_choice, _, _ = fit_playbook_effect(
                z, ys, arms, groups, choice[idx], m, penalty, least=u.min_arm_rows
            )
            if fitted_choice is not None:
                effects[PLAYBOOK] = fitted_choice
        for action in [] if contact_only else playbook_actions:
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
        return effects, shares, events, outcome, take_up

    def held_out(
        mask: np.ndarray, effects: dict[str, Any], outcome: list[lgb.Booster], take_up: lgb.Booster | None
    ):
        """(P(churn) by the outcome model, the learned uplift of any contact, the effect basis)
        for the rows in `mask`, by models fitted without them: the effects are relative to that
        risk."""
        risk = np.mean([b.predict(with_selection[mask]) for b in outcome], axis=0)
        score = basis_take_up(effects["basis"], take_up, x_all[mask])
        z = effect_basis(x_all[mask], effects["basis"], feature_index, score)
        return risk, -risk * apply_effect(z, effects[CONTACT]), z

    metrics: dict[str, float] = {}
    curves: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    cross_fit: pd.DataFrame | None = None
    probe_effects: dict[str, Any] = {}
    probe_take_up: lgb.Booster | None = None
    if test.any():
        effects, shares, _, outcome, probe_take_up = fitted(~test)
        # kept for promotion's paired comparisons (`training.uplift_compare`)
        probe_effects = {k: effects[k] for k in ("basis", CONTACT, PLAYBOOK) if k in effects}
        probe = UpliftModel(
            {
                "actions": playbook_actions,
                "learned_share": shares,
                "feature_names": bundle.feature_names,
                "effects": effects,
            },
            probe_take_up,
        )
        risk, contact, test_basis = held_out(test, effects, outcome, probe_take_up)
        learned = probe.learned(x_all[test], risk)
        test_arm, test_y, test_group = arm[test], y[test], group[test]
        groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for action, estimate in learned.items():
            mine = (test_arm == action) | (test_arm == CONTROL)
            treated = test_arm[mine] == action
            if treated.sum() < 20 or (~treated).sum() < 20:
                continue
            weight = design_weights(treated, test_group[mine])
            groups[action] = (estimate[mine], treated, test_y[mine].astype(bool), weight, risk[mine])
            curves[action], metrics[f"uplift_qini_{action}"] = adjusted_qini(groups[action])
        if groups:
            weights = [int(g[1].sum()) for g in groups.values()]
            metrics["uplift_qini_actions"] = float(
                np.average([metrics[f"uplift_qini_{a}"] for a in groups], weights=weights)
            )
            # any contact on the latest months alone (the models fitted before them): what the
            # newest campaigns say, with the least power
            treated = test_arm != CONTROL
            groups[RECENT] = (
                contact,
                treated,
                test_y.astype(bool),
                design_weights(treated, test_group),
                risk,
            )
            curves[RECENT], metrics["uplift_qini_recent"] = adjusted_qini(groups[RECENT])
            intervals = bootstrap_qini(groups, u.bootstrap, seed, pooled=[a for a in groups if a != RECENT])
            for name, (low, high) in intervals.items():
                key = {"pooled": "uplift_qini_actions", RECENT: "uplift_qini_recent"}.get(
                    name, f"uplift_qini_{name}"
                )
                metrics[f"{key}_low"], metrics[f"{key}_high"] = low, high
        if choice is not None and PLAYBOOK in effects:
            # the list's own figure: the contacts that were the playbook's choice against the
            # controls, ranked by the model of that choice (fitted without these months)
            estimate = -risk * apply_effect(test_basis, effects[PLAYBOOK])
            found = playbook_held_out(test_arm, choice[test], test_group, test_y, estimate, risk)
            if isinstance(found, str):
                notes.append(found)
            else:
                key = f"uplift_qini_{PLAYBOOK}"
                curves[PLAYBOOK], metrics[key] = adjusted_qini(found)
                interval = bootstrap_qini({PLAYBOOK: found}, u.bootstrap, seed, [PLAYBOOK])[PLAYBOOK]
                metrics[f"{key}_low"], metrics[f"{key}_high"] = interval
    else:
        notes.append(
            f"uplift: {len(months)} campaign months, too few to hold {u.test_months} out: no figures "
            "for the latest months"
        )

    # the headline: whom to contact at all, every campaign row ranked by the learned uplift of any
    # contact from models fitted without its customer (the list's first decision; the per-action
    # figures split the same controls between the actions and say which action, with less power)
    fold = customer_folds(rows["customer_id"])
    treated = arm != CONTROL
    if all(treated[fold == k].sum() >= 20 and (~treated[fold == k]).sum() >= 20 for k in range(CROSS_FOLDS)):
        score, risk = np.zeros(len(rows)), np.zeros(len(rows))
        chosen = PlaybookCrossFit(arm, choice, group) if choice is not None else None
        for k in range(CROSS_FOLDS):
            mine = fold == k
            effects, _, _, outcome, take_up = fitted(~mine, contact_only=True)
            risk[mine], uplift, basis = held_out(mine, effects, outcome, take_up)
            score[mine] = within_fold_rank(uplift)
            if chosen is not None:
                chosen.rank(mine, effects.get(PLAYBOOK), risk[mine], basis)
        weight, churned = design_weights(treated, group), y.astype(bool)
        customers = rows["customer_id"].to_numpy()
        # the headline: each outcome less its risk by the outcome model fitted without its
        # customer (a regression adjustment: the same figure in expectation, less noise;
        # docs/uplift.md), beside the unadjusted figure
        curves[CONTACT], metrics["uplift_qini"] = qini(score, treated, churned, weight, baseline=risk)
        metrics["uplift_qini_low"], metrics["uplift_qini_high"] = cluster_interval(
            score, treated, churned, weight, customers, u.bootstrap, seed, baseline=risk
        )
        metrics["uplift_qini_unadjusted"] = qini(score, treated, churned, weight)[1]
        metrics["uplift_qini_unadjusted_low"], metrics["uplift_qini_unadjusted_high"] = cluster_interval(
            score, treated, churned, weight, customers, u.bootstrap, seed
        )
        if chosen is not None:
            found = chosen.figures(y, risk, rows["customer_id"].to_numpy(), u.bootstrap, seed)
            if isinstance(found, str):
                notes.append(found)
            else:
                curves[f"{PLAYBOOK}_cross_fitted"], figures = found
                metrics |= {f"uplift_qini_{PLAYBOOK}_cross_fitted{s}": v for s, v in figures.items()}
        cross_fit = pd.DataFrame(
            {"customer_id": customers, "score": score, "risk": risk, "treated": treated}
            | {"churn": churned, "weight": weight, "group": group}
        )
    else:
        notes.append(
            f"uplift: too few treated or control rows for {CROSS_FOLDS} customer folds: no Qini figures"
        )
    effects, shares, events, _, take_up = fitted(np.ones(len(rows), dtype=bool), final=True)
    take_up_meta = take_up_counts(rows, u)[2]
    if take_up is None:
        notes.append(f"uplift: {take_up_meta['reason']}: no take-up model, so no take-up floor or weight")
    if u.effect_input == "take_up" and "take_up" not in effects["basis"]:
        notes.append("uplift: effect_input take_up, too few recorded outcomes: the effects read the features")
    for action in playbook_actions:
        if action not in shares:
            notes.append(f"uplift: {action}: too little randomised evidence, the playbook's effect")
    # every row's: the final models' fitting contacts and their churners
    fits = np.zeros(len(rows), dtype=bool) if choice is None else fitting_contacts(arm, choice, group)[0]
    playbook_rows = (int(fits.sum()), int(y[fits].sum()))
    if choice is not None and PLAYBOOK not in effects:
        notes.append(
            f"uplift: {playbook_rows[0]} campaign contacts were the playbook's choice for the customer "
            f"(need {u.min_arm_rows}, and a churner): the playbook's action is valued by any contact's "
            "effect plus its own"
        )
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
        "take_up": take_up_meta,
        "playbook_choice": {
            "contacts": playbook_rows[0],
            "churners": playbook_rows[1],
            "cross_fitted": f"uplift_qini_{PLAYBOOK}_cross_fitted" in metrics,
        },
    }
    held_out: dict[str, Any] = {}
    if "uplift_qini" in metrics:
        held_out |= {
            "qini": metrics["uplift_qini"],
            "qini_low": metrics["uplift_qini_low"],
            "qini_high": metrics["uplift_qini_high"],
            "evaluation": f"cross-fitted: {CROSS_FOLDS} folds of customers, every campaign month, "
            "each outcome less its risk by the outcome model fitted without its customer",
            "unadjusted": {
                k: metrics[f"uplift_qini_unadjusted{s}"]
                for k, s in (("qini", ""), ("low", "_low"), ("high", "_high"))
            },
        }
    crossed = f"uplift_qini_{PLAYBOOK}_cross_fitted"
    if crossed in metrics:
        # the model that values the playbook's action judged by itself (`uplift.playbook_effect: auto`)
        held_out[PLAYBOOK] = {
            k: metrics[f"{crossed}{s}"]
            for k, s in (("qini", ""), ("qini_low", "_low"), ("qini_high", "_high"))
        } | {"evaluation": PlaybookCrossFit.EVALUATION}
    if "uplift_qini_recent" in metrics:
        held_out["recent"] = {
            k: metrics[f"uplift_qini_recent{s}"]
            for k, s in (("qini", ""), ("low", "_low"), ("high", "_high"))
        }
        # the any-contact model fitted without the held-out months: promotion ranks the same
        # held-out campaigns with it and with the champion's models (training.uplift_compare)
        held_out["effects"] = probe_effects
    if held_out:
        meta["held_out"] = held_out
    metrics["uplift_rows"] = float(len(rows))
    metrics["uplift_control_rows"] = float((arm == CONTROL).sum())
    held_out_take_up = probe_take_up if "take_up" in probe_effects.get("basis", {}) else None
    return UpliftResult(UpliftModel(meta, take_up, held_out_take_up), metrics, curves, notes, cross_fit)


__all__ = ["UpliftResult", "campaign_rows", "fit_uplift", "qini"]
