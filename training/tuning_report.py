"""What a hyperparameter search reports: run metrics, the CLI's lines, the chosen model's SHAP rate."""

from __future__ import annotations

import math
import time
from typing import Any

import pandas as pd

from training.tuning import PRUNED, TuningResult
from training.tuning_space import tree_leaves


def record_search(search: TuningResult, bundle: Any, prepared_test: pd.DataFrame) -> dict[str, float]:
    """Write the search's summary into the bundle's metadata; return the run metrics of the search
    and of the chosen model's size and exact-SHAP rate on (up to 2,000 of) the test rows."""
    bundle.meta["training"]["tuning"] = search.summary()
    return tuned_model_metrics(bundle, prepared_test) | search_metrics(search)


def explanation_rate(explain: Any, rows: Any, count: int, repeats: int = 2) -> float:
    """Rows explained per second by `explain(rows)` (exact SHAP), best of `repeats` timed calls."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        explain(rows)
        best = min(best, time.perf_counter() - started)
    return count / best if best > 0 else math.inf


def search_metrics(search: TuningResult) -> dict[str, float]:
    """The search's headline numbers, as run metrics."""
    counts = search.counts()
    chosen, best = search.trial(search.chosen_trial), search.trial(search.best_trial)
    return {
        "tuning_trials": float(len(search.trials)),
        "tuning_trials_pruned": float(counts[PRUNED]),
        "tuning_seconds": search.seconds,
        "tuning_best_value": float(best.value),
        "tuning_best_roc_auc": float(best.roc_auc),
        "tuning_chosen_value": float(chosen.value),
        "tuning_chosen_roc_auc": float(chosen.roc_auc),
        "tuning_chosen_trial": float(chosen.number),
    }


def search_lines(search: TuningResult, metrics: dict[str, float]) -> list[str]:
    """What the CLI prints about the search and the chosen model's size and explanation speed."""
    counts = search.counts()
    best, chosen = search.trial(search.best_trial), search.trial(search.chosen_trial)
    name = "log-loss" if search.objective == "log_loss" else "ROC-AUC"
    budget = search.settings
    return [
        f"search                {len(search.trials)} trials ({counts[PRUNED]} pruned) in {search.seconds:.0f} s "
        f"on {search.folds} fold(s); best validation {name} {best.value:.5f} (trial {best.number})",
        f"chosen                trial {chosen.number}: validation ROC-AUC {chosen.roc_auc:.4f} "
        f"(best {best.roc_auc:.4f}, tolerance {budget['auc_tolerance']}), "
        f"{chosen.tree_leaves:,.0f} leaves in all (trees x leaves ceiling {budget['max_tree_leaves']:,})",
        f"explanation budget    test model {metrics['num_trees']:.0f} trees, {metrics['tree_leaves']:,.0f} leaves "
        f"in all; exact SHAP {metrics['shap_rows_per_s']:,.0f} rows/s",
    ]


def tuned_model_metrics(bundle: Any, prepared: pd.DataFrame, rows: int = 2000) -> dict[str, float]:
    """Size of the trained churn booster and its exact-SHAP rate on up to `rows` prepared rows."""
    sample = prepared.head(rows)
    matrix = bundle.matrix(sample)
    return {
        "tree_leaves": float(tree_leaves(bundle.churn_booster)),
        "shap_rows_per_s": explanation_rate(bundle.contributions_array, matrix, len(sample)),
    }
