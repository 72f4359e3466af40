"""MLflow record of a hyperparameter search: one nested run per trial, and the search's artifacts.

The search itself runs before the training run is logged (training stays free of I/O), so each
trial's nested run is created afterwards with the trial's own start and end times.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from typing import Any

import yaml

from training.tuning import COMPLETE, TrialSummary, TuningResult

TRIAL_RUN_PREFIX = "trial-"


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def _trial_metrics(trial: TrialSummary) -> dict[str, float]:
    values = {
        "objective": trial.value,
        "roc_auc": trial.roc_auc,
        "log_loss": trial.log_loss,
        "trees": trial.trees,
        "tree_leaves": trial.tree_leaves,
        "shap_cost": trial.shap_cost,
        "max_rounds": float(trial.rounds),
        "seconds": (trial.finished - trial.started).total_seconds(),
    }
    if trial.last_round is not None:
        values["last_reported_round"] = float(trial.last_round)
    return {k: float(v) for k, v in values.items() if v is not None}


def log_trials(search: TuningResult, parent_run_id: str, experiment_id: str) -> list[str]:
    """One nested run per trial under `parent_run_id`: its parameters, scores, size and state.

    Returns:
        The nested runs' ids, in trial order.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    client = MlflowClient()
    run_ids = []
    for trial in search.trials:
        tags = {
            MLFLOW_PARENT_RUN_ID: parent_run_id,
            MLFLOW_RUN_NAME: f"{TRIAL_RUN_PREFIX}{trial.number:03d}",
            "optuna_state": trial.state,
            "trial_number": str(trial.number),
            "chosen": str(trial.number == search.chosen_trial).lower(),
            "best": str(trial.number == search.best_trial).lower(),
            "defaults": str(trial.number == 0).lower(),  # the first trial is always the defaults
        }
        run = client.create_run(experiment_id, start_time=_millis(trial.started), tags=tags)
        at = _millis(trial.finished)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, at, 0) for k, v in _trial_metrics(trial).items()],
            params=[Param(k, str(v)) for k, v in trial.params.items()],
        )
        client.set_terminated(
            run.info.run_id, status="FINISHED" if trial.state != "failed" else "FAILED", end_time=at
        )
        run_ids.append(run.info.run_id)
    return run_ids


def retrain_config(search: TuningResult) -> dict[str, Any]:
    """The config block that makes `churn train` without `--tune` fit the chosen model again."""
    return {"training": {"churn": search.params.model_dump()}}


def _figures(search: TuningResult) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    figures: dict[str, Any] = {}
    # Optuna's plots switch matplotlib to its ggplot style for the whole process: keep it to them
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        figures["optimization_history.png"] = optuna_plots.plot_optimization_history(search.study).figure
        # too few finished trials, or none that differ, leave nothing to rank parameters by
        with contextlib.suppress(ValueError, RuntimeError, ZeroDivisionError):
            figures["param_importances.png"] = optuna_plots.plot_param_importances(search.study).figure
    finished = [t for t in search.trials if t.state == COMPLETE]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([t.tree_leaves for t in finished], [t.roc_auc for t in finished], s=14, label="trial")
    chosen, best = search.trial(search.chosen_trial), search.trial(search.best_trial)
    ax.scatter([best.tree_leaves], [best.roc_auc], s=60, marker="s", facecolors="none", edgecolors="k")
    ax.scatter([chosen.tree_leaves], [chosen.roc_auc], s=90, marker="*", color="red", label="chosen")
    ax.axvline(search.settings["max_tree_leaves"], linestyle=":", color="grey", label="ceiling")
    ax.axhline(best.roc_auc - search.settings["auc_tolerance"], linestyle="--", color="grey", lw=0.8)
    ax.set(
        xlabel="trees x leaves (all leaves of the model)",
        ylabel="validation ROC-AUC",
        title="Explanation budget: quality against model size (square: best by the objective)",
    )
    ax.title.set_fontsize(9)
    ax.legend()
    fig.tight_layout()
    figures["size_vs_auc.png"] = fig
    return figures


def log_search(search: TuningResult, parent_run_id: str, experiment_id: str) -> None:
    """The trials as nested runs, and the search space, the best and chosen parameters, the
    retrain config, the trials table and Optuna's plots as artifacts of the training run."""
    import matplotlib.pyplot as plt
    import mlflow

    log_trials(search, parent_run_id, experiment_id)
    best, chosen = search.trial(search.best_trial), search.trial(search.chosen_trial)
    mlflow.log_dict(search.search_space, "tuning/search_space.json")
    mlflow.log_dict(
        {
            "objective": search.objective,
            "best": {"trial": best.number, "value": best.value, "params": best.params},
            "chosen": {
                "trial": chosen.number,
                "value": chosen.value,
                "roc_auc": chosen.roc_auc,
                "tree_leaves": chosen.tree_leaves,
                "params": chosen.params,
            },
            "churn_params": search.params.model_dump(),
            "budget": search.settings,
        },
        "tuning/best_params.json",
    )
    mlflow.log_text(yaml.safe_dump(retrain_config(search), sort_keys=False), "tuning/churn_params.yaml")
    mlflow.log_text(search.study.trials_dataframe().to_csv(index=False), "tuning/trials.csv")
    for filename, figure in _figures(search).items():
        mlflow.log_figure(figure, f"tuning/{filename}")
        plt.close(figure)
    mlflow.set_tag("tuned", "true")
    mlflow.log_param("tuning.objective", search.objective)
    mlflow.log_param("tuning.search_space", json.dumps(sorted(search.search_space)))
