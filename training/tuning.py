"""Hyperparameter search for the churn model (Optuna), under an explanation budget.

Exact TreeSHAP costs about trees x leaves x depth^2 per explained row, and the daily list and the
API explain every customer they show, so the search is bounded by model size, not only guided
by quality:
- every trial's boosting rounds are capped at `max_tree_leaves // num_leaves`, so no trial (and
  no retrain with the chosen parameters) can grow past trees x leaves = `max_tree_leaves`, and
  depth is searched up to `tuning.max_depth`;
- among the finished trials whose validation ROC-AUC is within `auc_tolerance` of the best
  trial's, the one cheapest to explain is chosen (`shap_cost`: each tree's leaves x depth^2).

Each trial is LightGBM's own cross-validation (`lightgbm.cv`) over the folds it is given: the
bank's out-of-time validation snapshots, a table's out-of-time validation period, or stratified
folds of a table without snapshots. Early stopping watches the validation ROC-AUC, as in the
final fit, so the chosen parameters retrain to the same model; Optuna's median pruner stops
unpromising trials on the curve of the objective's metric (for `log_loss`, the raw log-loss: each
trial is compared with the others at the same round). A finished trial is judged on its held-out
rows by ROC-AUC and, for `log_loss`, by the log-loss after the calibrator the final fit would fit
there (`training.models.shipped_log_loss`), not on the raw scale the calibrator resets. The
defaults are always the first trial, so the search can only choose something that validates at
least as well (within the AUC tolerance).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from training.models import churn_settings, shipped_log_loss
from training.settings import BoosterParams, TrainingConfig, TuningConfig
from training.tuning_space import (
    clipped,
    describe_space,
    model_size,
    rounds_within_budget,
    search_space,
    suggest,
)

logger = logging.getLogger(__name__)

Fold = tuple[np.ndarray, np.ndarray]  # positions of the fitting rows and of the validation rows
COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"
# Pruning waits this many boosting rounds: slow learning rates start behind and catch up.
PRUNER_WARMUP_ROUNDS = 30
PRUNER_STARTUP_TRIALS = 5


@dataclass(frozen=True)
class TrialSummary:
    """One trial of the search, as logged to MLflow."""

    number: int
    state: str
    params: dict[str, Any]
    started: dt.datetime
    finished: dt.datetime
    value: float | None = None
    roc_auc: float | None = None
    log_loss: float | None = None
    trees: float | None = None  # mean over folds, at the early-stopped round
    tree_leaves: float | None = None  # trees x leaves: all leaves of the model, mean over folds
    shap_cost: float | None = None  # each tree's leaves x depth^2, summed (`shap_cost`), mean over folds
    rounds: int = 0  # the cap from the explanation budget
    last_round: int | None = None  # where a pruned trial stopped


@dataclass(frozen=True)
class TuningResult:
    """What the search found: the chosen parameters ready for `fit_churn_model`, and its record."""

    params: BoosterParams
    best_params: BoosterParams
    objective: str
    best_trial: int
    chosen_trial: int
    search_space: dict[str, dict[str, Any]]
    trials: list[TrialSummary]
    seconds: float
    folds: int
    settings: dict[str, Any]
    study: Any = field(repr=False)  # optuna.Study, for its plots
    # a table searched on folds: the chosen trial and the defaults (trial 0) refit on the final
    # split, scored on its validation rows; the defaults are kept when the chosen one is worse
    split_check: dict[str, Any] | None = None

    def trial(self, number: int) -> TrialSummary:
        return next(t for t in self.trials if t.number == number)

    def counts(self) -> dict[str, int]:
        return {state: sum(t.state == state for t in self.trials) for state in (COMPLETE, PRUNED, FAILED)}

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (bundle metadata, MLflow, the CLI)."""
        best, chosen = self.trial(self.best_trial), self.trial(self.chosen_trial)
        return {
            "objective": self.objective,
            "trials": len(self.trials),
            **{f"trials_{state}": n for state, n in self.counts().items()},
            "seconds": round(self.seconds, 1),
            "folds": self.folds,
            "best_trial": {"number": best.number, "value": best.value, "roc_auc": best.roc_auc},
            "chosen_trial": {
                "number": chosen.number,
                "value": chosen.value,
                "roc_auc": chosen.roc_auc,
                "trees": chosen.trees,
                "tree_leaves": chosen.tree_leaves,
            },
            "budget": self.settings,
            "split_check": self.split_check,
        }


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[Fold]:
    """Stratified K folds of rows without a time order (a table brought without snapshots)."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(fit, valid) for fit, valid in splitter.split(np.zeros(len(y)), y)]


def out_of_time_fold(train_rows: int, validation_rows: int) -> list[Fold]:
    """The one fold of an out-of-time split: rows are the training rows, then the validation rows."""
    return [(np.arange(train_rows), np.arange(train_rows, train_rows + validation_rows))]


def _params_for(base: BoosterParams, values: dict[str, Any], tuning: TuningConfig) -> BoosterParams:
    merged = base.model_dump() | values
    merged["num_boost_round"] = rounds_within_budget(merged["num_leaves"], tuning)
    return BoosterParams.model_validate(merged)


class _Objective:
    """One trial: LightGBM cross-validation over the folds, scored on the out-of-fold rows."""

    def __init__(self, X, y, folds, base, tuning, seed, monotone_increasing, space):
        self.X, self.y, self.folds, self.base, self.tuning = X, y, list(folds), base, tuning
        self.seed, self.monotone_increasing, self.space = seed, monotone_increasing, space
        self.datasets: dict[bool, lgb.Dataset] = {}  # binning depends only on zero_as_missing

    def dataset(self, zero_as_missing: bool) -> lgb.Dataset:
        if zero_as_missing not in self.datasets:
            # no pre-filter: trials change min_child_samples on the same binned data
            self.datasets[zero_as_missing] = lgb.Dataset(
                self.X,
                self.y,
                params={"feature_pre_filter": False, "zero_as_missing": zero_as_missing, "verbose": -1},
                free_raw_data=False,
            ).construct()
        return self.datasets[zero_as_missing]

    def __call__(self, trial: Any) -> float:
        values = {name: suggest(trial, name, d) for name, d in self.space.items()}
        params = _params_for(self.base, values, self.tuning)
        trial.set_user_attr("rounds", params.num_boost_round)
        settings = churn_settings(params, self.seed, list(self.X.columns), self.monotone_increasing)
        metric = "binary_logloss" if self.tuning.objective == "log_loss" else "auc"
        callbacks = [lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)]
        if self.tuning.pruning:
            from optuna_integration import LightGBMPruningCallback

            callbacks.append(LightGBMPruningCallback(trial, metric))
        result = lgb.cv(
            settings | {"feature_pre_filter": False},
            self.dataset(params.zero_as_missing),
            num_boost_round=params.num_boost_round,
            folds=self.folds,
            callbacks=callbacks,
            return_cvbooster=True,
            seed=self.seed,
        )
        cv_booster = result["cvbooster"]
        best = cv_booster.best_iteration or len(result["valid binary_logloss-mean"])
        losses, aucs, leaves, costs = [], [], [], []
        # re-weighted positives shift the log-odds by log(scale_pos_weight): undo it, since the
        # model is judged (and later calibrated) on true probabilities
        shift = math.log(params.scale_pos_weight)
        for booster, (_, valid) in zip(cv_booster.boosters, self.folds, strict=True):
            margin = booster.predict(self.X.iloc[valid], raw_score=True, num_iteration=best) - shift
            losses.append(shipped_log_loss(self.y[valid], margin, self.seed))
            aucs.append(roc_auc_score(self.y[valid], margin))
            size = model_size(booster, best)
            leaves.append(size[0])
            costs.append(size[1])
        scores = {"log_loss": float(np.mean(losses)), "roc_auc": float(np.mean(aucs))}
        trial.set_user_attr("log_loss", scores["log_loss"])
        trial.set_user_attr("roc_auc", scores["roc_auc"])
        trial.set_user_attr("trees", float(best))
        trial.set_user_attr("tree_leaves", float(np.mean(leaves)))
        trial.set_user_attr("shap_cost", float(np.mean(costs)))
        logger.info(
            "trial %d: log-loss %.5f, ROC-AUC %.4f, %d trees, %.0f leaves in all",
            trial.number,
            scores["log_loss"],
            scores["roc_auc"],
            best,
            np.mean(leaves),
        )
        return scores[self.tuning.objective]


def _summaries(study: Any) -> list[TrialSummary]:
    from optuna.trial import TrialState

    states = {TrialState.COMPLETE: COMPLETE, TrialState.PRUNED: PRUNED}
    out = []
    for t in study.trials:
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
            continue
        attrs = t.user_attrs
        out.append(
            TrialSummary(
                number=t.number,
                state=states.get(t.state, FAILED),
                params=dict(t.params),
                started=t.datetime_start,
                finished=t.datetime_complete or t.datetime_start,
                value=t.value,
                roc_auc=attrs.get("roc_auc"),
                log_loss=attrs.get("log_loss"),
                trees=attrs.get("trees"),
                tree_leaves=attrs.get("tree_leaves"),
                shap_cost=attrs.get("shap_cost"),
                rounds=int(attrs.get("rounds", 0)),
                last_round=t.last_step,
            )
        )
    return out


def choose_trial(
    trials: Sequence[TrialSummary], best: int, auc_tolerance: float, log_loss_tolerance: float | None
) -> int:
    """Among finished trials whose ROC-AUC is within `auc_tolerance` of the best trial's (and,
    when given, whose log-loss is within `log_loss_tolerance`, relative, of its log-loss), the
    one that is cheapest to explain (`shap_cost`; ties: the better ROC-AUC).

    The log-loss condition is there for the log-loss objective: a tiny model can rank about as
    well as the best one while its probabilities are much flatter."""
    reference = next(t for t in trials if t.number == best)
    candidates = [
        t
        for t in trials
        if t.state == COMPLETE
        and t.roc_auc >= reference.roc_auc - auc_tolerance
        and (log_loss_tolerance is None or t.log_loss <= reference.log_loss * (1 + log_loss_tolerance))
    ]
    return min(candidates, key=lambda t: (t.shap_cost, -t.roc_auc, t.number)).number


def tune_churn_params(
    X: pd.DataFrame,
    y: np.ndarray,
    folds: Sequence[Fold],
    base: BoosterParams,
    tuning: TuningConfig,
    seed: int,
    monotone_increasing: tuple[str, ...] = (),
) -> TuningResult:
    """Search the churn booster's parameters on `folds` of (X, y) within the time and trial budgets.

    Args:
        X: the rows the folds index (training and validation rows; never the test rows).
        y: their 0/1 labels.
        folds: (fitting rows, validation rows) position pairs.
        base: the configured parameters: the first trial, and every value not searched.
        tuning: objective, budgets, explanation budget.
        seed: LightGBM's and the sampler's seed.
        monotone_increasing: features the model must be monotone increasing in.

    Returns:
        The chosen parameters (rounds capped by the explanation budget) and the search's record.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is logged below
    y = np.asarray(y)
    space = search_space(X, y, tuning)
    study = optuna.create_study(
        direction="minimize" if tuning.objective == "log_loss" else "maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_ROUNDS
        )
        if tuning.pruning
        else optuna.pruners.NopPruner(),
    )
    defaults = base.model_dump()
    study.enqueue_trial({name: clipped(defaults[name], d) for name, d in space.items()})
    objective = _Objective(X, y, folds, base, tuning, seed, monotone_increasing, space)
    started = time.perf_counter()
    study.optimize(objective, n_trials=tuning.trials, timeout=tuning.minutes * 60)
    seconds = time.perf_counter() - started
    trials = _summaries(study)
    if not any(t.state == COMPLETE for t in trials):
        raise ValueError("training.tuning: no trial finished; raise training.tuning.minutes or trials")
    best = study.best_trial.number
    chosen = choose_trial(
        trials,
        best,
        tuning.auc_tolerance,
        tuning.log_loss_tolerance if tuning.objective == "log_loss" else None,
    )
    by_number = {t.number: t for t in study.trials}
    return TuningResult(
        params=_params_for(base, by_number[chosen].params, tuning),
        best_params=_params_for(base, by_number[best].params, tuning),
        objective=tuning.objective,
        best_trial=best,
        chosen_trial=chosen,
        search_space=describe_space(space),
        trials=trials,
        seconds=seconds,
        folds=len(folds),
        settings={
            "max_tree_leaves": tuning.max_tree_leaves,
            "auc_tolerance": tuning.auc_tolerance,
            "log_loss_tolerance": tuning.log_loss_tolerance,
            "max_depth": tuning.max_depth,
            "minutes": tuning.minutes,
            "trial_budget": tuning.trials,
        },
        study=study,
    )


def tune_for_split(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    training: TrainingConfig,
    out_of_time: bool,
    monotone_increasing: tuple[str, ...] | None = None,
) -> TuningResult:
    """The search on a training and validation split, as the final fit will see them.

    Out of time (bank snapshots, a table with a snapshot column): the one fold is the split
    itself. Otherwise (a table without time order) `tuning.folds` stratified folds of the
    training and validation rows together, since one random split of a small table is noisy.
    `monotone_increasing`: `training.monotone_increasing` when None.
    """
    monotone = training.monotone_increasing if monotone_increasing is None else monotone_increasing
    y = np.concatenate([np.asarray(y_train), np.asarray(y_valid)])
    folds = (
        out_of_time_fold(len(y_train), len(y_valid))
        if out_of_time
        else stratified_folds(y, training.tuning.folds, training.seed)
    )
    search = tune_churn_params(
        pd.concat([X_train, X_valid]), y, folds, training.churn, training.tuning, training.seed, monotone
    )
    if out_of_time or search.chosen_trial == 0:
        return search  # out of time, the search's one fold is the final split itself
    split = (X_train, np.asarray(y_train), X_valid, np.asarray(y_valid))
    defaults = _params_for(training.churn, search.study.trials[0].params, training.tuning)
    scores = {
        name: split_score(*split, params, training.seed, monotone, training.tuning.objective)
        for name, params in (("chosen", search.params), ("defaults", defaults))
    }
    sign = 1 if training.tuning.objective == "log_loss" else -1
    kept = sign * scores["chosen"] > sign * scores["defaults"]
    check = {"objective": training.tuning.objective, **scores, "kept_defaults": kept}
    if kept:
        logger.info("the chosen trial validates worse than the defaults on the final split: defaults kept")
        return replace(search, params=defaults, chosen_trial=0, split_check=check)
    return replace(search, split_check=check)


def split_score(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    params: BoosterParams,
    seed: int,
    monotone_increasing: tuple[str, ...],
    objective: str,
) -> float:
    """The objective on the validation rows of a booster trained as the final fit trains it.

    Folds tell which parameters do well on average; a fragile structure (an interaction that
    greedy splits find only in some samples) can still be missed on the one split the final
    model is fitted on, which this measures."""
    booster = lgb.train(
        churn_settings(params, seed, list(X_train.columns), monotone_increasing),
        lgb.Dataset(X_train, y_train),
        num_boost_round=params.num_boost_round,
        valid_sets=[lgb.Dataset(X_valid, y_valid)],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    margin = booster.predict(X_valid, raw_score=True, num_iteration=booster.best_iteration)
    margin = margin - math.log(params.scale_pos_weight)
    if objective == "roc_auc":
        return float(roc_auc_score(y_valid, margin))
    return shipped_log_loss(np.asarray(y_valid), margin, seed)
