"""The effect models' fits: the R-loss of `training.uplift`, as weighted ridge (or lasso)
regressions of each row's outcome on the effect basis (module docstring there)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from serving.uplift_model import CONTROL, apply_effect
from training.uplift_eval import (
    CROSS_FOLDS,
    cluster_interval,
    design_weights,
    propensity,
    qini,
    within_fold_rank,
)

MIN_RISK = 0.002  # the least churn probability an effect is taken relative to


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


def r_loss_rows(
    y: np.ndarray, treated: np.ndarray, e: np.ndarray, m: np.ndarray, init: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(informative, label, weight): the rows whose group holds both treated and control rows (the
    rest carry no information), and on those rows the R-loss's label, each outcome's residual over
    the treatment's (less `init`, what is already explained), and its weight, the treatment
    residual squared over the churn variance, risk (1 - risk): a low-risk row's outcome is less
    noisy, and without this the safe customers (most of the exploration) would count for almost
    nothing."""
    risk = np.clip(m, MIN_RISK, 1 - MIN_RISK)
    resid = (treated.astype(float) - e) * risk
    informative = (e > 0.01) & (e < 0.99)
    resid, risk = resid[informative], risk[informative]
    label = (y[informative] - m[informative]) / resid - (0.0 if init is None else init[informative])
    return informative, label, resid**2 / (risk * (1 - risk))


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

    informative, label, weight = r_loss_rows(y, treated, e, m, init)
    z = z[informative]
    if penalty == "lasso":
        fit = LassoCV(alphas=30, cv=5, random_state=0, max_iter=20_000, tol=1e-3)
    else:
        fit = RidgeCV(alphas=np.logspace(0, 6, 13) * len(label) / 1000)
    fit.fit(z, label, sample_weight=weight / weight.mean())
    return {"b": float(fit.intercept_), "w": fit.coef_.tolist(), "alpha": float(fit.alpha_)}


def fitting_contacts(
    arm: np.ndarray, choice: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fits, pair, keyed): the rows whose action was the playbook's `choice` for them; those and
    the controls with a choice (rows without one, None, are in neither); each row's randomised
    `group` keyed by its choice. The design's propensity of a fitting contact is the share of the
    rows with the same key that got it: valid where the campaigns drew each contact's action at
    random, whatever the customer (as the bank's campaigns do)."""
    chosen = np.asarray(choice, dtype=object)
    has = np.array([c is not None for c in chosen], dtype=bool)
    fits = has & (np.asarray(arm) == chosen.astype(str))
    keyed = np.char.add(np.char.add(np.asarray(group).astype(str), "|"), chosen.astype(str))
    return fits, fits | (has & (np.asarray(arm) == CONTROL)), keyed


def judged_rows(
    arm: np.ndarray, choice: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair, treated, weight): the rows that judge a model of the playbook's choice, as a mask (the
    fitting contacts and the controls with a choice, `fitting_contacts`), which of those rows are
    fitting contacts, and their design weights by randomised group and choice."""
    fits, pair, keyed = fitting_contacts(arm, choice, group)
    return pair, fits[pair], design_weights(fits[pair], keyed[pair])


def fit_playbook_effect(
    z: np.ndarray,
    y: np.ndarray,
    arm: np.ndarray,
    group: np.ndarray,
    choice: np.ndarray,
    m: np.ndarray,
    penalty: str = "ridge",
    least: int = 1,
) -> tuple[dict[str, Any] | None, int, int]:
    """(the relative effect of a contact whose action was the playbook's `choice` for the row,
    against the controls with a choice, with each chosen action's offset on it under "offsets"
    (`playbook_offsets`); the fitting contacts; their churners). The effect is None with fewer
    than `least` fitting contacts, no churner among them, or no row whose group and choice hold
    both fitting contacts and controls (`fitting_contacts`)."""
    fits, pair, keyed = fitting_contacts(arm, choice, group)
    treated = fits[pair]
    contacts, churners = int(treated.sum()), int(y[pair][treated].sum())
    e = propensity(treated, keyed[pair])
    if contacts < max(least, 1) or churners == 0 or not ((e > 0.01) & (e < 0.99)).any():
        return None, contacts, churners
    z, y, m = z[pair], y[pair], m[pair]
    effect = fit_effect(z, y, treated, e, m, penalty=penalty)
    chosen = np.asarray(choice, dtype=object)[pair]
    effect["offsets"] = playbook_offsets(y, treated, e, m, chosen, apply_effect(z, effect))
    return effect, contacts, churners


def playbook_offsets(
    y: np.ndarray, treated: np.ndarray, e: np.ndarray, m: np.ndarray, chosen: np.ndarray, base: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per action the playbook chose, on the rows that judge the model of its choice (the fitting
    contacts, `treated`, and the controls with a choice, `chosen`): what a fitting contact of that
    action adds to that model's relative effect (`base`, per row), a constant, by the same R-loss
    on the rows whose choice it was, with its standard error, then shrunk toward no offset as far
    as the actions' offsets differ by more than their noise (empirical Bayes: the spread between
    actions by DerSimonian and Laird's moments, each offset kept in the share spread / (spread +
    its own variance)). {action: {"b": the shrunk offset, "raw", "se", "share", "events" (the
    fewer of the churners among those contacts and among those controls)}}; an action with no
    churner on either side, or no group holding both, has none. One shared effect values a weak
    action like a strong one: the offset is how the list tells them apart where the campaigns
    show it (docs/uplift-benchmarks.md)."""
    informative, label, weight = r_loss_rows(y, treated, e, m, base)
    churned, judged = y.astype(bool), chosen[informative]
    found: dict[str, dict[str, float]] = {}
    for action in sorted({c for c in chosen if c is not None}):
        mine = chosen == action
        events = min(int((churned & mine & treated).sum()), int((churned & mine & ~treated).sum()))
        w, its = weight[judged == action], label[judged == action]
        if events == 0 or w.sum() <= 0:
            continue
        raw = float((w * its).sum() / w.sum())  # the intercept-only weighted least squares
        se = float(np.sqrt((w**2 * (its - raw) ** 2).sum()) / w.sum())  # robust (sandwich)
        found[str(action)] = {"raw": raw, "se": max(se, 1e-9), "events": events}
    spread = _between_spread([f["raw"] for f in found.values()], [f["se"] for f in found.values()])
    for f in found.values():
        f["share"] = spread / (spread + f["se"] ** 2)
        f["b"] = f["share"] * f["raw"]
    return found


def _between_spread(estimates: list[float], errors: list[float]) -> float:
    """The variance of the true offsets between actions beyond their noise, by DerSimonian and
    Laird's method of moments (0 where they differ no more than their standard errors explain)."""
    if len(estimates) < 2:
        return 0.0
    x, v = np.asarray(estimates), 1.0 / np.asarray(errors) ** 2
    centre = (v * x).sum() / v.sum()
    q = (v * (x - centre) ** 2).sum()
    return float(max(0.0, (q - (len(x) - 1)) / (v.sum() - (v**2).sum() / v.sum())))


def playbook_held_out(
    arm: np.ndarray,
    choice: np.ndarray,
    group: np.ndarray,
    churn: np.ndarray,
    estimate: np.ndarray,
    risk: np.ndarray,
    least: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | str:
    """The held-out rows that judge the model of the playbook's choice, as `qini` and
    `bootstrap_qini` take them (its `estimate` of each row's uplift, fitting contact or not,
    churned, design weight by group and choice, and each row's `risk` by a model that never saw it,
    the baseline), or why there are none: fewer than `least` fitting contacts or controls."""
    pair, treated, weight = judged_rows(arm, choice, group)
    contacts, controls = int(treated.sum()), int((~treated).sum())
    if contacts < least or controls < least:
        return (
            f"uplift: {contacts} contacts in the held-out months were the playbook's choice, "
            f"against {controls} controls (need {least} each): no held-out figure "
            "for the model of that choice"
        )
    return estimate[pair], treated, np.asarray(churn)[pair].astype(bool), weight, np.asarray(risk)[pair]


class PlaybookCrossFit:
    """The cross-fitted Qini of the model of the playbook's choice, over every campaign month: in
    each customer fold, the fitting contacts and the controls with a choice (`fitting_contacts`)
    ranked by the model fitted without the fold (`rank`, within the fold), then every fold's rows
    pooled, each outcome less its risk by the fold's outcome model, with an interval from
    resampling whole customers (`figures`): the any-contact headline's method, on the rows that
    judge the model which values the playbook's action (`uplift.playbook_effect: auto`)."""

    EVALUATION = (
        f"cross-fitted: {CROSS_FOLDS} folds of customers, every campaign month, the contacts that were "
        "the playbook's choice against the controls with a choice, each outcome less its risk"
    )

    def __init__(self, arm: np.ndarray, choice: np.ndarray, group: np.ndarray, least: int = 20):
        self.pair, self.treated, self.weight = judged_rows(arm, choice, group)
        self.score = np.full(len(arm), np.nan)
        self.least = least
        self.missing = 0  # folds without a model of the choice

    def rank(
        self, fold: np.ndarray, effect: dict[str, Any] | None, risk: np.ndarray, basis: np.ndarray
    ) -> None:
        """Rank the fold's (`fold`, a mask of every row) rows of the pair by `effect` (the model
        fitted without them; None: there was none), `risk` and `basis` being the fold's rows'."""
        mine = self.pair[fold]
        if effect is None:
            self.missing += 1
            return
        estimate = -risk[mine] * apply_effect(basis[mine], effect)
        self.score[np.flatnonzero(fold)[mine]] = within_fold_rank(estimate)

    def figures(
        self, churn: np.ndarray, risk: np.ndarray, customers: np.ndarray, reps: int, seed: int
    ) -> tuple[pd.DataFrame, dict[str, float]] | str:
        """(the Qini curve, {"": coefficient, "_low", "_high": its 95% interval}), or why there is
        none: a fold without a model of the choice, or too few fitting contacts or controls."""
        pair, treated, weight = self.pair, self.treated, self.weight
        contacts, controls = int(treated.sum()), int((~treated).sum())
        if self.missing or contacts < self.least or controls < self.least:
            return (
                f"uplift: {contacts} campaign contacts were the playbook's choice against {controls} controls"
                f"{' (in a fold too few fitting contacts, no churner or no group to compare)' if self.missing else ''}"
                ": no cross-fitted figure for the model of that choice (`playbook_effect: auto` then "
                "values the playbook's action by any contact's effect plus its own)"
            )
        churned = np.asarray(churn)[pair].astype(bool)
        curve, coefficient = qini(self.score[pair], treated, churned, weight, baseline=risk[pair])
        low, high = cluster_interval(
            self.score[pair], treated, churned, weight, customers[pair], reps, seed, baseline=risk[pair]
        )
        return curve, {"": coefficient, "_low": low, "_high": high}


__all__ = [
    "MIN_RISK",
    "PlaybookCrossFit",
    "basis_spec",
    "fit_effect",
    "fit_playbook_effect",
    "fitting_contacts",
    "judged_rows",
    "playbook_held_out",
    "playbook_offsets",
    "r_loss_rows",
]
