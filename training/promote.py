"""Champion/challenger promotion: compare both on the same labelled snapshot, move the alias or not."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churn.config import AppConfig
from serving.model_bundle import ModelBundle
from serving.registry import load_bundle
from serving.uplift_model import PLAYBOOK
from training.metrics import churn_metrics
from training.promotion_rows import PromotionRows
from training.promotion_rules import decide, uplift_gate_scores
from training.tracking import configure_tracking
from training.uplift_compare import comparable_months, compare_playbook, compare_uplift

PROMOTION_EXPERIMENT_SUFFIX = "-promotion"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger_scores: dict[str, float]
    champion_scores: dict[str, float]
    # the uplift models on the same held-out campaigns (training.uplift_compare), or why not
    uplift_comparison: dict[str, Any] = field(default_factory=dict)
    # how each side's daily list would rank and value its actions (`serving.actions.list_valuation`)
    valuation: dict[str, str] = field(default_factory=dict)
    # the models of the playbook's choice on the same held-out campaigns (`compare_playbook`), or why not
    playbook_comparison: dict[str, Any] = field(default_factory=dict)
    # how promoting the challenger changes the list's ranking or valuation (`list_change`), or ""
    list_change: str = ""


def _valuation_words(bundle: ModelBundle, config: AppConfig) -> str:
    """How a list scored by `bundle` would rank and value its actions, in one line."""
    from serving.actions import list_valuation

    state = list_valuation(bundle, config)
    words = f"ranked by {state['mode']} ({state['why']})"
    if state["mode"] == "uplift":
        valued = f", action valued by {state['playbook_effect']}" if "playbook_effect" in state else ""
        words += f"{valued}, take-up floor {state['take_up_floor']}"
    return words


def _list_form(bundle: ModelBundle, config: AppConfig) -> str:
    """How `bundle`'s list ranks, and what values its actions when it ranks by uplift, in words."""
    from serving.actions import playbook_effect_mode, ranking_mode

    mode, _ = ranking_mode(bundle, config)
    if mode != "uplift":  # an uplift ranking implies uplift models, so the valuation below applies
        return f"ranked by {mode}"
    return f"ranked by uplift, action valued by {playbook_effect_mode(bundle, config)[0]}"


def list_change(challenger: ModelBundle, champion: ModelBundle | None, config: AppConfig) -> str:
    """ "before -> after" where promoting `challenger` would change how the daily list ranks or
    values its actions, else "". `auto` reads each bundle's own figures, and nothing holds a mode
    once taken (no hysteresis), so a model near a gate's bound can switch the list at a promotion
    with no change of config: this says so before anyone reads the next list."""
    if champion is None:
        return ""
    before, after = _list_form(champion, config), _list_form(challenger, config)
    return "" if before == after else f"{before} -> {after}"


def net_saving(
    y: np.ndarray, value: np.ndarray, value_at_risk: np.ndarray, capacity: int, save_rate: float, cost: float
) -> float:
    """Realised net saving of contacting the top `capacity` customers by value at risk."""
    top = np.argsort(-value_at_risk, kind="stable")[: min(capacity, len(y))]
    return float((y[top] * value[top]).sum() * save_rate - len(top) * cost)


def score_bundle(
    bundle: ModelBundle, features: pd.DataFrame, labels: pd.DataFrame, config: AppConfig
) -> dict[str, float]:
    """Metrics of one bundle on one labelled snapshot, including money and per-segment AUC."""
    prepared = bundle.prepare(features)
    y = labels["churn"].reindex(features.index).to_numpy()
    p = bundle.churn_probability(prepared)
    value = bundle.value(prepared)
    evaluation, promotion = config.evaluation, config.promotion
    scores = churn_metrics(y, p, capacity=evaluation.contact_capacity, top_shares=evaluation.top_shares)
    scores["net_saving"] = net_saving(
        y, value, p * value, evaluation.contact_capacity, promotion.save_rate, promotion.contact_cost
    )
    for column in ("segment", "region"):
        if column not in features.columns:
            continue
        groups = features[column].astype(str).to_numpy()
        for group in np.unique(groups):
            mask = groups == group
            if y[mask].sum() >= promotion.min_segment_positives and (1 - y[mask]).sum() > 0:
                scores[f"auc.{column}.{group}"] = float(roc_auc_score(y[mask], p[mask]))
    return scores | uplift_gate_scores(bundle)


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def read_for_promotion(config: AppConfig, runner=None) -> Callable[[list[str]], PromotionRows]:
    """What `promote` reads from the bank, given the campaign months its uplift comparison needs:
    the bank's partitions on `runner` (`training.promotion_rows`), or the held-out rows of a table
    the bank brought (`source:` in the config; it has no campaigns)."""
    if config.source is not None:
        from training.byo import evaluation_rows

        return lambda months: PromotionRows(*evaluation_rows(config), campaigns=pd.DataFrame())
    from training.promotion_rows import promotion_rows

    return lambda months: promotion_rows(config, runner, months)


def promote(config: AppConfig, read: Callable[[list[str]], PromotionRows], force: bool = False) -> Decision:
    """Compare the `challenger` with the `champion` on the latest labelled snapshot and decide.

    `read(months)` gives the evaluation snapshot and the campaign rows of `months` ("YYYY-MM"),
    the months the uplift comparison needs (`read_for_promotion`); it is called once, after both
    models are known, so the bank is read once.

    The decision, both models' scores and the reason are logged as a run of the
    `<experiment>-promotion` experiment and as tags on the challenger's model version.

    Raises:
        ValueError: no challenger is registered.
    """
    import mlflow
    from mlflow.entities import Metric, Param, RunTag

    from serving.model_bundle import FeatureSchemaError

    configure_tracking(config)
    client = mlflow.MlflowClient()
    name = config.mlflow.model_name
    challenger_version = _alias_version(client, name, "challenger")
    if challenger_version is None:
        raise ValueError(f"no model version of {name} has the alias 'challenger': run `churn train` first")
    champion_version = _alias_version(client, name, "champion")
    challenger = load_bundle(config, challenger_version)
    champion = load_bundle(config, champion_version) if champion_version is not None else None
    months: list[str] = []
    if champion is not None and champion_version != challenger_version:
        months, _ = comparable_months(challenger, champion)
    rows = read(months)
    features, labels, evaluated_on = rows.features, rows.labels, rows.evaluated_on

    challenger_scores = score_bundle(challenger, features, labels, config)
    champion_scores = None
    schema_note = ""
    comparison: dict[str, Any] = {"note": "no champion: not compared"}
    chosen: dict[str, Any] = {"note": "no champion: not compared"}
    if champion is not None:
        try:
            champion_scores = score_bundle(champion, features, labels, config)
        except FeatureSchemaError as exc:
            schema_note = f"the champion cannot score these rows ({exc})"
        if champion_version == challenger_version:
            comparison = chosen = {"note": "the challenger is already the champion: not compared"}
        elif champion_scores is None:
            comparison = chosen = {"note": "the champion cannot score the evaluation rows: not compared"}
        else:
            comparison = compare_uplift(rows.campaigns, challenger, champion, config)
            chosen = compare_playbook(rows.campaigns, challenger, champion, config)
            for key, figures in (("uplift_qini", comparison), (f"uplift_qini_{PLAYBOOK}", chosen)):
                if "difference" in figures:
                    challenger_scores[f"{key}_same_rows"] = figures["challenger"]
                    champion_scores[f"{key}_same_rows"] = figures["champion"]
                    challenger_scores[f"{key}_gain_low"] = figures["low"]
                    challenger_scores[f"{key}_gain_high"] = figures["high"]
    valuation = {"challenger": _valuation_words(challenger, config)}
    if champion is not None:
        valuation["champion"] = _valuation_words(champion, config)
    if champion_version == challenger_version:
        promote_it, reason = False, f"version {challenger_version} is already the champion"
    elif schema_note:
        promote_it, reason = (
            force,
            ("forced: " if force else "not compared, use --force to replace it: ") + schema_note,
        )
    else:
        promote_it, reason = decide(challenger_scores, champion_scores, config, force)
    if promote_it:
        client.set_registered_model_alias(name, "champion", challenger_version)
    decision = Decision(
        promote_it,
        reason,
        challenger_version,
        champion_version,
        challenger_scores,
        champion_scores or {},
        comparison,
        valuation,
        chosen,
        list_change(challenger, champion, config) if champion_version != challenger_version else "",
    )

    # an explicit client run: `mlflow run` sets MLFLOW_RUN_ID for the training run, and the
    # promotion record belongs to its own experiment
    experiment_id = configure_tracking(
        config, experiment=config.mlflow.experiment + PROMOTION_EXPERIMENT_SUFFIX
    )
    run = client.create_run(experiment_id, run_name=f"promote-v{challenger_version}")
    params = {
        "challenger_version": challenger_version,
        "champion_version": champion_version or "none",
        "evaluated_on": evaluated_on,
        "force": str(force),
        "uplift_comparison": comparison.get(
            "note", f"{comparison.get('rows')} rows of {comparison.get('months')}"
        ),
        "playbook_comparison": chosen.get(
            "note",
            f"{chosen.get('rows')} rows of {chosen.get('months')} ({chosen.get('disagreed')} where the "
            "two models' choices differed left out)",
        ),
    } | {f"{side}_list": words[:6000] for side, words in valuation.items()}
    if decision.list_change:
        params["list_change"] = decision.list_change
    metrics = {f"challenger.{k}": v for k, v in challenger_scores.items() if np.isfinite(v)}
    metrics |= {f"champion.{k}": v for k, v in (champion_scores or {}).items() if np.isfinite(v)}
    client.log_batch(
        run.info.run_id,
        params=[Param(k, v) for k, v in params.items()],
        metrics=[Metric(k, float(v), int(time.time() * 1000), 0) for k, v in metrics.items()],
        tags=[
            RunTag(
                "decision",
                "promoted" if promote_it else ("kept champion" if champion_version else "no champion"),
            ),
            RunTag("reason", reason[:5000]),
        ],
    )
    client.set_terminated(run.info.run_id)
    client.set_model_version_tag(
        name, challenger_version, "promotion_decision", "promoted" if promote_it else "rejected"
    )
    client.set_model_version_tag(name, challenger_version, "promotion_reason", reason[:4000])
    return decision
