"""Promotion's uplift comparison: the challenger's and the champion's uplift models rank the same
held-out randomised campaigns, and the two Qini coefficients are compared with a paired interval.

A fair comparison needs rows that neither model learned from. The challenger's final models saw
every campaign month, so its side is the any-contact effect model it fitted without its held-out
months (`meta["held_out"]["effects"]`, the one its held-out Qini was measured with); the
champion's side is its deployed model, on the held-out months it was not trained on (a champion
trained a month ago has not seen last month's campaigns). Each ranks by its own bundle's churn
probability times its relative effect of a contact, as the list's first decision (whom to
contact at all) does (the held-out Qini of training took the risk from the uplift outcome model
instead, so the two figures differ). A list that values the playbook's action by the model of
the playbook's choice (`uplift.playbook_effect: pooled`, or `auto` where that model's own
cross-fitted Qini interval is above zero) ranks by that model, and `compare_playbook` compares
the two sides' models of that choice the same way, on the rows that judge them: the held-out
months' contacts that were the playbook's choice for the customer and the controls with a choice.

The comparison leans toward the champion: with three held-out months and a champion one month
older, the champion's side learned from two of the three months the challenger's side did not,
and only the newest month is compared. So the promotion gate blocks only a challenger whose
interval of the difference lies wholly below zero. When no held-out month is new to the champion
(both trained on the same history) there is nothing fair to compare, and the comparison says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from churn.config import AppConfig
from serving.uplift_model import CONTACT, CONTROL, PLAYBOOK, apply_effect, basis_take_up, effect_basis
from training.uplift_eval import design_weights, qini, randomised_groups


def contact_score(
    bundle: Any,
    rows: pd.DataFrame,
    effects: Mapping[str, Any],
    take_up: Any | None = None,
    effect: str = CONTACT,
) -> np.ndarray:
    """The uplift per row of any contact (or of the `effect` named, `PLAYBOOK`: a contact that was
    the playbook's choice): churn probability x the learned relative effect (which reads the
    `take_up` booster's score where its input is the take-up score)."""
    prepared = bundle.prepare(rows[bundle.feature_names])
    x = bundle.matrix(prepared)
    index = {name: j for j, name in enumerate(bundle.feature_names)}
    z = effect_basis(x, effects["basis"], index, basis_take_up(effects["basis"], take_up, x))
    return -bundle.churn_probability(prepared) * apply_effect(z, effects[effect])


def paired_qini(
    a: np.ndarray,
    b: np.ndarray,
    treated: np.ndarray,
    churn: np.ndarray,
    weight: np.ndarray,
    reps: int,
    seed: int,
) -> dict[str, float]:
    """Both scores' Qini coefficients on the same rows and their difference (a - b), with a 95%
    percentile interval from resampling the rows once for both."""
    qa, qb = qini(a, treated, churn, weight)[1], qini(b, treated, churn, weight)[1]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        pick = rng.integers(0, len(a), len(a))
        t, y, w = treated[pick], churn[pick], weight[pick]
        draws.append(qini(a[pick], t, y, w)[1] - qini(b[pick], t, y, w)[1])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return {"challenger": qa, "champion": qb, "difference": qa - qb, "low": float(low), "high": float(high)}


def comparable_months(challenger: Any, champion: Any) -> tuple[list[str], str | None]:
    """The challenger's held-out campaign months ("YYYY-MM") the champion did not train on, or
    why there is nothing to compare (then the months are empty)."""
    mine = (challenger.uplift.meta.get("held_out") or {}) if challenger.uplift is not None else {}
    if champion is None or champion.uplift is None or "effects" not in mine:
        return [], "no uplift models on both sides with held-out figures: not compared"
    seen = set(champion.uplift.meta.get("campaign_months", []))
    months = [m for m in challenger.uplift.meta.get("held_out_months", []) if m not in seen]
    if not months:
        return [], (
            "every held-out campaign month of the challenger trained the champion too: "
            "no fair comparison (the challenger's own held-out figures decide)"
        )
    return months, None


def _months_rows(
    rows: pd.DataFrame, challenger: Any, champion: Any
) -> tuple[list[str], pd.DataFrame, str | None]:
    """The comparable months, the campaign rows of those months, or why there is nothing to compare."""
    months, note = comparable_months(challenger, champion)
    if note is not None:
        return [], rows.iloc[:0], note
    if not rows.empty:
        rows = rows[pd.to_datetime(rows["as_of"]).dt.strftime("%Y-%m").isin(months)]
    if rows.empty:
        return months, rows, f"no campaign rows in {', '.join(months)}: not compared"
    return months, rows, None


def _paired(rows, sides, effect, treated, churn, weight, config) -> dict[str, Any]:
    """Both sides' scores of `rows` by their `effect` model, and the paired Qini figures."""
    from serving.model_bundle import FeatureSchemaError

    scores = []
    for side, bundle, effects, take_up in sides:
        try:
            scores.append(contact_score(bundle, rows, effects, take_up, effect))
        except (FeatureSchemaError, KeyError, TypeError, ValueError, IndexError) as exc:
            return {"note": f"the {side} cannot score these campaign rows ({exc!r}): not compared"}
    return paired_qini(*scores, treated, churn, weight, config.uplift.bootstrap, config.training.seed)


def _sides(challenger: Any, champion: Any) -> tuple[tuple[str, Any, Mapping[str, Any], Any], ...]:
    """(side, bundle, effects, take-up model): the challenger's fitted without its held-out months,
    the champion's deployed."""
    return (
        (
            "challenger",
            challenger,
            challenger.uplift.meta["held_out"]["effects"],
            challenger.uplift.held_out_take_up_model,
        ),
        ("champion", champion, champion.uplift.meta.get("effects") or {}, champion.uplift.take_up_model),
    )


def compare_uplift(rows: pd.DataFrame, challenger: Any, champion: Any, config: AppConfig) -> dict[str, Any]:
    """The paired comparison on the challenger's held-out months that the champion did not train
    on (`comparable_months`), among the campaign rows `rows` (`features.campaigns.campaign_rows`;
    rows of other months are left out): `{"months", "rows", "challenger", "champion",
    "difference", "low", "high"}`, or `{"note": why not}`."""
    months, rows, note = _months_rows(rows, challenger, champion)
    if note is not None:
        return {"note": note}
    treated = (rows["arm"] != CONTROL).to_numpy()
    group, _ = randomised_groups(rows, config.uplift.exploration_campaigns)
    churn = rows["churn"].to_numpy().astype(bool)
    figures = _paired(
        rows, _sides(challenger, champion), CONTACT, treated, churn, design_weights(treated, group), config
    )
    return figures if "note" in figures else {"months": months, "rows": len(rows)} | figures


def agreed_choice(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Each row's playbook choice where both sides' models choose the same action, None where
    they differ or either has none: the rows that judge both models of the playbook's choice,
    chosen by neither side alone."""
    mine, theirs = np.asarray(mine, dtype=object), np.asarray(theirs, dtype=object)
    same = np.array([a is not None and a == b for a, b in zip(mine, theirs, strict=True)], dtype=bool)
    return np.where(same, mine, None)


def left_out(arm: np.ndarray, mine: np.ndarray, theirs: np.ndarray, agreed: np.ndarray | None = None) -> int:
    """How many rows one side's choice alone would have judged (a fitting contact or a control
    with a choice, `training.uplift_effects.fitting_contacts`) that the `agreed` choice
    (`agreed_choice(mine, theirs)` where not given) does not."""
    from training.uplift_effects import fitting_contacts

    agreed = agreed_choice(mine, theirs) if agreed is None else agreed
    group = np.zeros(len(arm), dtype=int)  # the pair does not depend on the group
    judged = [fitting_contacts(arm, choice, group)[1] for choice in (mine, theirs, agreed)]
    return int(((judged[0] | judged[1]) & ~judged[2]).sum())


def compare_playbook(
    rows: pd.DataFrame, challenger: Any, champion: Any, config: AppConfig, least: int = 20
) -> dict[str, Any]:
    """The same paired comparison for the models of the playbook's choice, on the rows that judge
    them: in the same months, the contacts whose action was the playbook's choice for the customer
    and the controls with a choice, each weighed by the design's propensity within its randomised
    group and choice (`training.uplift_effects.judged_rows`). The choice is the one both sides'
    models make (`agreed_choice`: each side's churn model and reasons decide it as its list would),
    so neither side picks the rows it is judged on. Each side ranks them by its own churn
    probability x its effect of such a contact. `{"months", "rows", "contacts", "disagreed",
    "challenger", "champion", "difference", "low", "high"}` (`disagreed`: the rows one side's
    choice alone would have judged, left out because the other chose differently, `left_out`),
    or `{"note": why not}`: a side without that model or unable to score the rows, or fewer than
    `least` fitting contacts or controls."""
    from serving.model_bundle import FeatureSchemaError
    from serving.scoring import playbook_choice
    from training.uplift_effects import judged_rows

    months, rows, note = _months_rows(rows, challenger, champion)
    if note is not None:
        return {"note": note}
    sides = _sides(challenger, champion)
    missing = [side for side, _, effects, _ in sides if PLAYBOOK not in effects]
    if missing:
        return {
            "note": f"no model of the playbook's choice on the {' and '.join(missing)} side: not compared"
        }
    segment = rows["segment"].to_numpy() if "segment" in rows else np.full(len(rows), None, dtype=object)
    choices = []
    for side, bundle, _, _ in sides:
        try:
            x = bundle.matrix(bundle.prepare(rows[bundle.feature_names]))
            choices.append(playbook_choice(bundle, x, segment, config))
        except (FeatureSchemaError, KeyError, TypeError, ValueError, IndexError) as exc:
            return {"note": f"the {side} cannot score these campaign rows ({exc!r}): not compared"}
    arm = rows["arm"].to_numpy()
    agreed = agreed_choice(*choices)
    disagreed = left_out(arm, *choices, agreed)
    group, _ = randomised_groups(rows, config.uplift.exploration_campaigns)
    pair, treated, weight = judged_rows(arm, agreed, group)
    contacts, controls = int(treated.sum()), int((~treated).sum())
    if contacts < least or controls < least:
        return {
            "note": f"{contacts} contacts in {', '.join(months)} were the playbook's choice by both "
            f"models, against {controls} controls (need {least} each; {disagreed} rows where the "
            "models chose differently left out): not compared"
        }
    churn = rows["churn"].to_numpy().astype(bool)[pair]
    figures = _paired(rows[pair], sides, PLAYBOOK, treated, churn, weight, config)
    if "note" in figures:
        return figures
    return {"months": months, "rows": int(pair.sum()), "contacts": contacts, "disagreed": disagreed} | figures


__all__ = [
    "agreed_choice",
    "comparable_months",
    "compare_playbook",
    "compare_uplift",
    "contact_score",
    "paired_qini",
]
