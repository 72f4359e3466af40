"""Training jobs: train-log-register, and promote."""

from __future__ import annotations

import time
from dataclasses import dataclass

from churn.config import AppConfig
from features.jobs import load_validated


@dataclass(frozen=True)
class TrainSummary:
    run_id: str
    version: str
    lines: list[str]


def run_training(config: AppConfig) -> TrainSummary:
    """Validate the source, train both models, log the run and register the bundle as `challenger`."""
    from training.pipeline import summary_lines, train_models
    from training.tracking import MODEL_NAME, log_training_run

    started = time.perf_counter()
    validated = load_validated(config)
    result = train_models(validated.tables, config)
    run_id, version = log_training_run(result, config, validated.tables)
    lines = summary_lines(result) + [
        f"mlflow run            {run_id} ({config.mlflow.tracking_uri})",
        f"registered            {MODEL_NAME} version {version}, alias challenger",
        f"took                  {time.perf_counter() - started:.1f} s",
    ]
    return TrainSummary(run_id, version, lines)


def run_promotion(config: AppConfig, force: bool = False) -> list[str]:
    """Compare challenger and champion and move the `champion` alias if the challenger is better."""
    from training.promote import promote

    validated = load_validated(config)
    decision = promote(validated.tables, config, force)
    lines = [
        f"challenger            version {decision.challenger_version}",
        f"champion before       {'version ' + decision.champion_version if decision.champion_version else 'none'}",
        f"decision              {'PROMOTED to champion' if decision.promote else 'champion kept'}: {decision.reason}",
    ]
    for metric in ("roc_auc", "pr_auc", "ece", "net_saving"):
        champion = decision.champion_scores.get(metric)
        lines.append(
            f"  {metric:<19} challenger {decision.challenger_scores[metric]:.4f}"
            + (f"   champion {champion:.4f}" if champion is not None else "")
        )
    return lines
