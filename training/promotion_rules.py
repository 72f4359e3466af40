"""The promotion rule: the sanity gates a challenger must pass, on its own figures and against
the champion, and whether it is better (`decide`). Pure functions of both sides' scores
(`training.promote.score_bundle`); `training.promote` reads the bundles and moves the alias."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from churn.config import AppConfig
from serving.model_bundle import ModelBundle
from serving.uplift_model import PLAYBOOK


def uplift_gate_scores(bundle: ModelBundle) -> dict[str, float]:
    """What the uplift gates read: whether the bundle has uplift models (`uplift_models`) and a
    model of the playbook's choice (`uplift_playbook_model`), 1 or 0, and the lower bounds of their
    own cross-fitted Qini intervals, `uplift_qini_low` and `uplift_qini_playbook_action_low`, each
    where the bundle has it (a model without its figure has shown nothing)."""
    meta = bundle.uplift.meta if bundle.uplift is not None else {}
    held_out = meta.get("held_out") or {}
    scores = {
        "uplift_models": float(bundle.uplift is not None),
        "uplift_playbook_model": float(PLAYBOOK in (meta.get("effects") or {})),
    }
    if "qini_low" in held_out:
        scores["uplift_qini_low"] = float(held_out["qini_low"])
    if "qini_low" in (held_out.get(PLAYBOOK) or {}):
        scores[f"uplift_qini_{PLAYBOOK}_low"] = float(held_out[PLAYBOOK]["qini_low"])
    return scores


def _bound(low: float) -> str:
    """A Qini interval's lower bound for a gate's reason, or that there is none."""
    return "no cross-fitted figure" if not np.isfinite(low) else f"Qini lower bound {low:.4f} <= 0"


def _own_gates(challenger: Mapping[str, float], config: AppConfig) -> list[str]:
    """The sanity gates a model must pass on its own figures, with or without a champion:
    calibration, and the uplift models the list would use showing incremental value."""
    failures = []
    promotion, u = config.promotion, config.uplift
    if challenger["ece"] > promotion.max_ece:
        failures.append(f"calibration error {challenger['ece']:.4f} > {promotion.max_ece}")
    # a list ranked by learned uplift needs uplift models that show incremental value (a model
    # without the figure has shown nothing: it is blocked too)
    low = challenger.get("uplift_qini_low", float("nan"))
    if u.ranking == "uplift" and challenger.get("uplift_models", 0.0) > 0 and not low > 0:
        failures.append(
            f"uplift models show no incremental value on held-out campaigns ({_bound(low)}) while "
            "the list ranks by uplift"
        )
    # a list that values the playbook's action by the model of that choice, forced by the config
    # (`auto` takes that model only above zero), needs that model to show incremental value too
    chosen_low = challenger.get(f"uplift_qini_{PLAYBOOK}_low", float("nan"))
    forced = u.choose == "playbook" and u.playbook_effect == "pooled"
    has_choice_model = challenger.get("uplift_playbook_model", 0.0) > 0
    if ranks_by_uplift(challenger, config) and forced and has_choice_model and not chosen_low > 0:
        failures.append(
            f"the model of the playbook's choice shows no incremental value on its cross-fitted "
            f"campaigns ({_bound(chosen_low)}) while playbook_effect: pooled values the list's actions by it"
        )
    return failures


def _held(challenger: Mapping[str, float], key: str) -> dict[str, float]:
    return {"qini_low": challenger[key]} if key in challenger else {}


def ranks_by_uplift(challenger: Mapping[str, float], config: AppConfig) -> bool:
    """Whether the challenger's list would rank by uplift: `serving.actions.resolve_ranking` on its scores."""
    from serving.actions import resolve_ranking

    has_models = challenger.get("uplift_models", 0.0) > 0
    held = _held(challenger, "uplift_qini_low")
    return resolve_ranking(config.uplift.ranking, has_models, held)[0] == "uplift"


def valued_by_choice(challenger: Mapping[str, float], config: AppConfig) -> bool:
    """Whether the model of the playbook's choice would value the challenger's list's actions:
    `serving.actions.resolve_playbook_effect` on its scores."""
    from serving.actions import resolve_playbook_effect

    has_choice_model = challenger.get("uplift_playbook_model", 0.0) > 0
    held = _held(challenger, f"uplift_qini_{PLAYBOOK}_low")
    return resolve_playbook_effect(config.uplift, has_choice_model, held)[0] == "pooled"


def _against_champion(
    challenger: Mapping[str, float], champion: Mapping[str, float], config: AppConfig
) -> list[str]:
    """The gates that compare the challenger with the champion: per-segment ROC-AUC, and the
    uplift models the list would use ranking the same held-out campaigns no worse."""
    failures = []
    for key, value in challenger.items():
        if (
            key.startswith("auc.")
            and key in champion
            and value < champion[key] - config.promotion.max_segment_auc_drop
        ):
            failures.append(
                f"{key} fell {champion[key] - value:.3f} (from {champion[key]:.3f} to {value:.3f})"
            )
    # no worse than the champion's on the same held-out campaigns, where that is fair: any
    # contact's model, and the model of the playbook's choice where it values the list's actions
    by_uplift = ranks_by_uplift(challenger, config)
    for key, which, applies in (
        ("uplift_qini", "uplift models", by_uplift),
        (
            f"uplift_qini_{PLAYBOOK}",
            "models of the playbook's choice",
            by_uplift and valued_by_choice(challenger, config),
        ),
    ):
        if applies and challenger.get(f"{key}_gain_high", 0.0) < 0:
            failures.append(
                f"its {which} rank the same held-out campaigns worse than the champion's (Qini "
                f"{challenger[f'{key}_same_rows']:.4f} vs {champion.get(f'{key}_same_rows', float('nan')):.4f}, "
                f"difference interval {challenger[f'{key}_gain_low']:.4f} .. {challenger[f'{key}_gain_high']:.4f})"
            )
    return failures


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    config: AppConfig,
    force: bool = False,
) -> tuple[bool, str]:
    """The promotion rule. Returns (promote?, reason).

    The first model of a registry passes the gates on its own figures (calibration, uplift models
    that show value where the list would use them) or the registry stays without a champion: the
    daily list and the API then refuse to run rather than use a model nobody checked."""
    promotion = config.promotion
    gate_failures = _own_gates(challenger, config)
    if champion is None:
        if force:
            return (
                True,
                f"forced: no champion yet (problems overridden: {'; '.join(gate_failures) or 'none'})",
            )
        if gate_failures:
            return False, (
                "no champion yet, and the first model fails the sanity gates: "
                + "; ".join(gate_failures)
                + " (the registry keeps no champion until a model passes them; `churn promote --force` overrides)"
            )
        return True, "no champion yet: the first model passes the sanity gates and becomes champion"
    gate_failures += _against_champion(challenger, champion, config)
    # better = strictly higher on every listed metric, by at least its margin
    shortfalls = [
        f"{metric} {challenger[metric]:.4f} vs champion {champion[metric]:.4f} (needs more than +{gain:g})"
        for metric, gain in promotion.min_gain.items()
        if challenger[metric] - champion[metric] <= 0 or challenger[metric] - champion[metric] < gain
    ]
    if force:
        problems = "; ".join(gate_failures + shortfalls) or "none"
        return True, f"forced (problems overridden: {problems})"
    if gate_failures:
        return False, "sanity gates failed: " + "; ".join(gate_failures)
    if shortfalls:
        return False, "not better than the champion: " + "; ".join(shortfalls)
    gains = ", ".join(f"{m} {challenger[m] - champion[m]:+.4f}" for m in promotion.min_gain)
    return True, f"better than the champion ({gains}) and passes the sanity gates"


__all__ = ["decide", "ranks_by_uplift", "uplift_gate_scores", "valued_by_choice"]
