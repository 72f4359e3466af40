"""Which action for whom, and what it is expected to save.

Ranking modes (`uplift.ranking`, or `churn score --ranking`; `ranking_mode` resolves them):

- `uplift` (when the bundle carries learned uplift models): the customer's action is valued at
  P(churn) x value x uplift - cost, in the form `value x uplift(action, customer) - cost`, where
  uplift is the learned reduction of the churn probability (`serving.uplift_model`, shrunk toward
  the playbook's effect where the evidence is thin). With `uplift.choose: playbook` (the default)
  the action is the playbook's, valued by the learned effect of the playbook's own choice
  (`uplift.playbook_effect: pooled`) or by any contact's plus the action's (`per_action`);
  `auto` (the default) takes the former where its own cross-fitted Qini interval is above zero
  (`playbook_effect_mode`); with `best`, the best of the actions the kind of churn allows
  (`uplift.allowed`). A customer whose allowed action(s) are all expected to raise their churn is
  a predicted sleeping dog and is not contacted; with `uplift.take_up_floor`, so is one whose
  predicted take-up is below the model's floor ("unlikely to respond", `_unlikely_to_respond`).
  With `uplift.take_up_weight`, the saving's value term is weighed by the customer's take-up
  factor (`UpliftModel.take_up_factor`): value x uplift x factor - cost.
- `probability`: the playbook's rule chooses the action and the saving is P(churn) x value x the
  playbook's effect - cost (the ranking before uplift models).
- `auto` (the default): `uplift` when the bundle's uplift models have shown incremental value on
  held-out randomised rows (the lower bound of their cross-fitted Qini interval above zero), `probability`
  otherwise, so a bank whose experiments cannot yet show what works keeps today's ranking.

In uplift mode the list is drawn from the customers above the reporting threshold and from those
below it whose best action is expected to save at least `uplift.candidate_saving`
(`uplift_candidates`); in probability mode from those above the threshold alone.

Either way each row says why: the uplift used, where it comes from, and the next best action. A
list ranked by probability also says what the uplift models expect of the playbook's action
(`_learned_beside`), deciding nothing, so both figures can be compared on every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from churn.config import AppConfig
from churn.retention_config import UpliftConfig
from serving.policy import action_attributes
from serving.uplift_model import PLAYBOOK


def _why_playbook(action: Any, effect: float, saving: float) -> str | None:
    if action is None:
        return None
    return (
        f"playbook rule for the kind and cause: {action} (assumed effect {effect:.0%}), saving {saving:,.0f}"
    )


def resolve_ranking(mode: str, has_models: bool, held: Mapping[str, Any]) -> tuple[str, str]:
    """(the ranking a list uses, why) from the figures alone: the asked-for `mode`, whether the
    model has uplift models, and their held-out figures (`qini_low`, `qini_high`). `ranking_mode`
    reads them off a bundle and promotion (`training.promotion_rules.decide`) off a challenger's scores,
    so the gate judges the ranking the list would use."""
    if mode == "probability":
        return mode, "configured"
    if not has_models:
        return "probability", f"{mode}: the model has no uplift models (too little randomised history)"
    if mode == "uplift":
        return mode, "configured"
    if "qini_low" not in held:
        return "probability", "auto: the uplift models have no held-out figures"
    above, where = _interval(held)
    return ("uplift" if above else "probability"), f"auto: the uplift models' held-out Qini interval {where}"


def ranking_mode(bundle: Any, config: AppConfig, ranking: str | None = None) -> tuple[str, str]:
    """(the ranking the list uses, why): `ranking` or the config's, `auto` resolved for `bundle`."""
    model = getattr(bundle, "uplift", None)
    held = (getattr(model, "meta", None) or {}).get("held_out") or {}
    return resolve_ranking(ranking or config.uplift.ranking, model is not None, held)


def _interval(held: Mapping[str, Any], judged: str = "they rank") -> tuple[bool, str]:
    """(whether a Qini interval's lower bound is above zero, where it lies, in words with the
    bound; `judged`: who ranks, for the words): what `auto` reads, for the ranking and for the
    playbook's action alike."""
    low, high = float(held["qini_low"]), float(held.get("qini_high", 0.0))
    if low > 0:
        return True, f"is above zero (lower bound {low:.4f})"
    where = f"lies below zero: {judged} worse than random" if high < 0 else "includes zero"
    return False, f"{where} (lower bound {low:.4f})"


def resolve_playbook_effect(
    uplift: UpliftConfig, has_choice_model: bool, held: Mapping[str, Any]
) -> tuple[str, str]:
    """(what values the playbook's action, why) from the figures alone: the settings, whether the
    model has a model of the playbook's choice, and that model's cross-fitted figures. Shared by
    `playbook_effect_mode` (a bundle) and promotion (a challenger's scores)."""
    if uplift.choose != "playbook":
        return "per_action", "choose: best values every action by any contact's effect plus its own"
    if uplift.playbook_effect != "auto":
        return uplift.playbook_effect, "configured"
    if not has_choice_model:
        return "per_action", "auto: the uplift models have no model of the playbook's choice"
    if "qini_low" not in held:
        return "per_action", "auto: the model of the playbook's choice has no cross-fitted figure"
    above, where = _interval(held, "it ranks")
    return ("pooled" if above else "per_action"), f"auto: its cross-fitted Qini interval {where}"


def playbook_effect_mode(bundle: Any, config: AppConfig) -> tuple[str, str]:
    """(what values the playbook's action, why): `pooled` (the model of the playbook's own choice)
    or `per_action` (any contact's effect plus the action's). `uplift.playbook_effect: auto`
    takes the pooled model only where its own cross-fitted Qini interval is above zero
    (`held_out.playbook_action`, `training.uplift_effects.PlaybookCrossFit`): the model that values
    the list must itself have shown it ranks randomised rows it was not fitted on."""
    meta = getattr(getattr(bundle, "uplift", None), "meta", None) or {}
    held = (meta.get("held_out") or {}).get(PLAYBOOK) or {}
    return resolve_playbook_effect(config.uplift, PLAYBOOK in (meta.get("effects") or {}), held)


def take_up_floor_state(bundle: Any, config: AppConfig, mode: str) -> str:
    """What the take-up floor does to a list ranked by `mode`, in words (the list's `run.json` and
    summary keep it beside the ranking): the floor applies in uplift mode only, and only where the
    model has a take-up model and its reference population."""
    share = config.uplift.take_up_floor
    if mode != "uplift":
        return "not applied: the list ranks by probability"
    if share <= 0:
        return "off (uplift.take_up_floor 0)"
    model = getattr(bundle, "uplift", None)
    floor = model.take_up_floor(share) if model is not None else None
    if floor is None:
        return "off: the uplift models have no take-up model (too few recorded contact outcomes)"
    return (
        f"below {floor:.0%} predicted take-up not contacted (the lowest {share:.0%} of the customers at risk)"
    )


def uplift_candidates(
    bundle: Any,
    x: np.ndarray,
    probability: np.ndarray,
    value: np.ndarray,
    reportable: np.ndarray,
    config: AppConfig,
    ranking: str | None = None,
) -> np.ndarray:
    """Rows below the reporting threshold that an uplift-ranked list considers as well: those whose
    best action (any action: the kind of churn is not diagnosed yet) is expected to save at least
    `uplift.candidate_saving`, value x uplift (x the take-up factor, `uplift.take_up_weight`) -
    cost. Ranking by the churn probability first would
    leave out a valuable customer at moderate risk who responds, the customer uplift ranking is
    for. None in probability mode, without uplift models, or with `candidate_saving: null`."""
    out = np.zeros(len(probability), dtype=bool)
    floor = config.uplift.candidate_saving
    mode, _ = ranking_mode(bundle, config, ranking)
    rows = np.flatnonzero(~np.asarray(reportable, dtype=bool))
    if floor is None or mode != "uplift" or bundle.uplift is None or rows.size == 0:
        return out
    # the best of every action, before the kind of churn (and so the allowed actions and the
    # playbook's choice) is known: it lets in a few more customers than end up listed, never fewer
    _, values, _ = _action_values(
        bundle, x[rows], probability[rows], np.nan_to_num(value[rows], nan=0.0), config
    )
    out[rows] = values.max(axis=1) >= floor
    return out


def _action_values(
    bundle: Any, x: np.ndarray, probability: np.ndarray, worth: np.ndarray, config: AppConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(uplift, value x uplift x take-up factor - cost, the factor or None) of every playbook
    action (columns, in the playbook's order) for each row, the uplift shrunk toward the
    playbook's effect (`UpliftModel.uplift`; with `choose: playbook` and `playbook_effect: pooled`,
    the model of the playbook's own choice), the factor `UpliftModel.take_up_factor` (None: off)."""
    actions, u = config.playbook.actions, config.uplift
    pooled = playbook_effect_mode(bundle, config)[0] == "pooled"
    estimates = bundle.uplift.uplift(
        x,
        probability,
        {name: a.effect for name, a in actions.items()},
        pooled=pooled,
        offsets=u.playbook_offsets,
    )
    lift = np.column_stack([estimates[name] for name in actions])
    weight = u.take_up_weight
    factor = bundle.uplift.take_up_factor(x, weight) if weight > 0 else None
    weighed = worth if factor is None else worth * factor
    costs = np.array([a.cost for a in actions.values()])[None, :]
    return lift, lift * weighed[:, None] - costs, factor


def _unlikely_to_respond(bundle: Any, x: np.ndarray, share: float) -> np.ndarray:
    """The contact rule's text for rows whose predicted take-up is below the model's floor for
    `share` (`UpliftModel.take_up_floor`), None for the rest and for all without a floor."""
    out = np.full(len(x), None, dtype=object)
    floor = bundle.uplift.take_up_floor(share) if share > 0 and len(x) else None
    if floor is None:
        return out
    take_up = bundle.uplift.take_up(x)
    low = take_up < floor
    out[low] = [
        f"unlikely to respond: predicted take-up {t:.0%}, below {floor:.0%} (the lowest {share:.0%} "
        "of the customers at risk)"
        for t in take_up[low]
    ]
    return out


def _learned_beside(
    bundle: Any,
    x: np.ndarray,
    probability: np.ndarray,
    worth: np.ndarray,
    action: np.ndarray,
    rows: np.ndarray,
    why: np.ndarray,
    config: AppConfig,
) -> None:
    """A list ranked by probability still says what the learned uplift models expect of each
    row's playbook action (appended to `why`), so the retention team and the model's owners see
    both figures side by side; the ranking, the saving and the contacts stay the playbook's."""
    names = list(config.playbook.actions)
    known = np.array([action[r] in config.playbook.actions for r in rows], dtype=bool)
    rows = rows[known]
    if rows.size == 0:
        return
    lift, values, factor = _action_values(bundle, x[rows], probability[rows], worth[rows], config)
    column = np.array([names.index(action[r]) for r in rows])
    share = bundle.uplift.learned_share
    for k, row in enumerate(rows):
        learned = share.get(action[row], 0.0)
        if learned <= 0:
            why[row] += (
                "; uplift models: no learned figure for this action yet (too little randomised evidence)"
            )
            continue
        weighed = "" if factor is None else f" x take-up factor {factor[k]:.2f}"
        why[row] += (
            f"; uplift models: {100 * lift[k, column[k]]:+.1f} points ({learned:.0%} learned){weighed}, "
            f"saving {values[k, column[k]]:,.0f} (not ranked by them)"
        )


def choose(
    bundle: Any,
    x: np.ndarray,
    probability: np.ndarray,
    value: np.ndarray,
    playbook_action: np.ndarray,
    churn_type: np.ndarray,
    reportable: np.ndarray,
    config: AppConfig,
    ranking: str | None = None,
) -> dict[str, np.ndarray]:
    """`action`, `uplift`, `expected_saving`, `action_why`, `sleeping_dog` and
    `unlikely_to_respond` (the contact rule's text, or None) per row."""
    playbook, u = config.playbook, config.uplift
    mode, _ = ranking_mode(bundle, config, ranking)
    n = len(probability)
    worth = np.nan_to_num(value, nan=0.0)
    costs = {name: a.cost for name, a in playbook.actions.items()}
    action = np.where(reportable, playbook_action, None)
    attribute = action_attributes(action, playbook)
    effect, cost = attribute["effect"].astype(float), attribute["cost"].astype(float)
    uplift = probability * effect
    saving = np.where(reportable, np.nan_to_num(uplift * worth, nan=0.0) - np.nan_to_num(cost), np.nan)
    why = np.array(
        [
            _why_playbook(a, e, s) if r else None
            for a, e, s, r in zip(action, effect, saving, reportable, strict=True)
        ],
        dtype=object,
    )
    dogs = np.zeros(n, dtype=bool)
    unlikely = np.full(n, None, dtype=object)
    rows = np.flatnonzero(reportable)
    chosen = {
        "action": action,
        "uplift": uplift,
        "expected_saving": saving,
        "action_why": why,
        "sleeping_dog": dogs,
        "unlikely_to_respond": unlikely,
    }
    if bundle.uplift is None or rows.size == 0:
        return chosen
    if mode != "uplift":
        _learned_beside(bundle, x, probability, worth, action, rows, why, config)
        return chosen

    unlikely[rows] = _unlikely_to_respond(bundle, x[rows], u.take_up_floor)
    names = list(playbook.actions)
    lift, values, factor = _action_values(bundle, x[rows], probability[rows], worth[rows], config)
    allowed = np.ones((rows.size, len(names)), dtype=bool)
    for kind, actions in u.allowed.items():
        mine = churn_type[rows] == kind
        allowed[mine] = np.isin(names, actions)[None, :]
    if u.choose == "playbook":  # rank by learned uplift, keep the playbook's action (chosen by cause)
        allowed &= (
            np.array(names, dtype=object)[None, :] == np.asarray(playbook_action, dtype=object)[rows, None]
        )
    # a row no action is allowed for (the playbook chose none, or one its kind of churn does not
    # allow) keeps the playbook's rule and figures rather than an arbitrary action at -inf
    some = allowed.any(axis=1)
    rows, lift, values, allowed = rows[some], lift[some], values[some], allowed[some]
    factor = None if factor is None else factor[some]
    if rows.size == 0:
        return chosen
    values = np.where(allowed, values, -np.inf)
    order = np.argsort(-values, axis=1)
    best, second = order[:, 0], order[:, 1] if len(names) > 1 else order[:, 0]
    pick = np.arange(rows.size)
    action[rows] = np.array(names, dtype=object)[best]
    uplift[rows] = lift[pick, best]
    saving[rows] = values[pick, best]
    best_lift = np.where(allowed, lift, -np.inf).max(axis=1)
    dogs[rows] = best_lift < -u.sleeping_dog_harm
    share = bundle.uplift.learned_share
    for k, row in enumerate(rows):
        a, b = names[best[k]], names[second[k]]
        runner = (
            f"; next best {b} {values[k, second[k]]:,.0f}"
            if np.isfinite(values[k, second[k]]) and b != a
            else ""
        )
        weighed = "" if factor is None else f" x take-up factor {factor[k]:.2f}"
        why[row] = (
            f"{a}: uplift {100 * lift[k, best[k]]:+.1f} points ({share.get(a, 0.0):.0%} learned) x value "
            f"{worth[row]:,.0f}{weighed} - cost {costs[a]:,.0f} = {values[k, best[k]]:,.0f}{runner}"
        )
    return chosen


def list_valuation(bundle: Any, config: AppConfig) -> dict[str, str]:
    """How a list scored by `bundle` under `config` ranks (`mode`, `why`), what values the playbook's
    action (`playbook_effect`; in probability mode, only the uplift models' figure beside each row)
    and what the take-up floor does to it (`take_up_floor`), in words: the list's `run.json` keeps
    it, and promotion prints it for both sides (the `auto` gates read each bundle's own figures, so
    a promotion can change them with no change of config)."""
    mode, why = ranking_mode(bundle, config)
    out = {"mode": mode, "why": why}
    if getattr(bundle, "uplift", None) is not None:
        valued, reason = playbook_effect_mode(bundle, config)
        beside = (
            ""
            if mode == "uplift"
            else "; the list ranks by probability: only the uplift figure beside each row"
        )
        if valued == "pooled":
            offsets = bundle.uplift.meta["effects"][PLAYBOOK].get("offsets") or {}
            valued += (
                f", with {len(offsets)} actions' own offsets"
                if config.uplift.playbook_offsets and offsets
                else ", one shared effect for every action"
            )
        out["playbook_effect"] = f"{valued} ({reason}){beside}"
    return out | {"take_up_floor": take_up_floor_state(bundle, config, mode)}


__all__ = [
    "choose",
    "list_valuation",
    "playbook_effect_mode",
    "ranking_mode",
    "resolve_playbook_effect",
    "resolve_ranking",
    "uplift_candidates",
]
