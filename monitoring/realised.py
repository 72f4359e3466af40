"""Realised performance: the outcomes of the daily lists whose churn horizon has passed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churn.config import AppConfig
from monitoring.reference import PREDICTION, Alert, Reference, load_reference


@dataclass
class Performance:
    """Realised performance of one model version's lists whose churn horizon has passed."""

    version: str
    lists: list[str]  # as-of dates judged
    figures: dict[str, float]
    training: dict[str, float]
    alerts: list[Alert]


def judged_lists(config: AppConfig, as_of: pd.Timestamp, window_days: int) -> list[Path]:
    """The daily lists whose churn horizon ended in the window: their outcomes are known now."""
    horizon = pd.Timedelta(days=config.labels.horizon_days)
    start = as_of - pd.Timedelta(days=window_days)
    return [
        folder
        for folder in sorted((config.output_path / "risk_lists").glob("????-??-??"))
        if start < pd.Timestamp(folder.name) + horizon <= as_of
    ]


def expected_auc(p: np.ndarray) -> float:
    """The ROC-AUC a model whose probabilities `p` were exactly right would reach on these
    customers: E[pairs ranked right] / E[pairs], each customer churning with its own p (ties
    count half). It moves with who is in the population, as the realised AUC does: leaving the
    contacted customers (the riskiest) out of the judged lists lowers both, not only the realised."""
    p = np.asarray(p, dtype=float)
    values, inverse = np.unique(p, return_inverse=True)
    churn_mass = np.bincount(inverse, weights=p)
    stay_mass = np.bincount(inverse, weights=1 - p)
    stays_below = np.concatenate([[0.0], np.cumsum(stay_mass)[:-1]])
    self_pairs = float((p * (1 - p)).sum())
    right = float((churn_mass * (stays_below + 0.5 * stay_mass)).sum()) - 0.5 * self_pairs
    pairs = float(p.sum() * (1 - p).sum()) - self_pairs
    return right / pairs if pairs > 0 else float("nan")


def performance_figures(
    y: np.ndarray, p: np.ndarray, training: dict[str, float], config: AppConfig
) -> tuple[dict[str, float], list[Alert]]:
    """ROC-AUC, calibration error and precision at capacity of realised outcomes (the training
    pipeline's own metric functions), and the alerts. The realised AUC is judged against the AUC
    the model expected on exactly these customers (`expected_auc`), not against the training test
    AUC: the judged population leaves the contacted customers out, and the AUC of what is left is
    lower even for a perfect model of it."""
    from training.metrics import churn_metrics

    evaluation, m = config.evaluation, config.monitoring
    figures = churn_metrics(
        y, p, capacity=evaluation.contact_capacity, top_shares=tuple(evaluation.top_shares)
    )
    figures = {
        k: float(figures[k])
        for k in ("roc_auc", "pr_auc", "ece", "brier", "precision_at_capacity", "base_rate")
    }
    figures["expected_roc_auc"] = expected_auc(p)
    figures["customers"] = float(len(y))
    alerts = []
    drop = figures["expected_roc_auc"] - figures["roc_auc"]
    if drop > m.max_auc_drop:
        alerts.append(
            Alert(
                "auc_drop",
                "roc_auc",
                drop,
                m.max_auc_drop,
                [],
                f"realised ROC-AUC {figures['roc_auc']:.3f}, {drop:.3f} below the "
                f"{figures['expected_roc_auc']:.3f} the model expected on these customers "
                f"(training test {training.get('roc_auc', float('nan')):.3f})",
            )
        )
    if figures["ece"] > m.max_calibration_error:
        alerts.append(
            Alert(
                "calibration",
                "ece",
                figures["ece"],
                m.max_calibration_error,
                [],
                f"realised calibration error {figures['ece']:.3f} (training {training.get('ece', float('nan')):.3f})",
            )
        )
    return figures, alerts


def list_outcomes(
    tables, months: tuple[pd.Timestamp, pd.Timestamp], config: AppConfig, list_dates: list[str]
) -> dict[str, pd.Series]:
    """Per list date, the churn label of every customer of one partition (or a whole bank) who
    was active then: what the list predicted, as it turned out."""
    from features.labels import build_labels, churn_dates

    churned = churn_dates(tables, config.labels, months)
    return {
        date: build_labels(tables, date, config.labels, tuple(config.products), churned)["churn"]
        for date in list_dates
    }


def realised_performance(
    config: AppConfig, folders: list[Path], references: dict[str, Reference]
) -> list[Performance]:
    """Outcomes of the judged lists from the bank data, per model version. Customers who were
    contacted are left out: the contact was meant to change their outcome."""
    from features.partition_work import gather_configured

    pieces = gather_configured(config, list_outcomes, list_dates=[folder.name for folder in folders]).pieces
    rows = []
    for folder in folders:
        scored = pd.read_parquet(
            folder / "risk_list.parquet",
            columns=["customer_id", "status", "contact", PREDICTION, "model_version"],
        )
        scored = scored[(scored["status"] == "scored") & ~scored["contact"].fillna(False).astype(bool)]
        churn = pd.concat([piece[folder.name] for piece in pieces])
        judged = scored.join(churn, on="customer_id", how="inner")
        rows.append(judged.assign(list_date=folder.name))
    frame = pd.concat(rows, ignore_index=True)
    frame["model_version"] = frame["model_version"].astype(str)
    results = []
    for version, part in frame.groupby("model_version", sort=True):
        reference = references.get(version) or load_reference(config, version)
        figures, alerts = performance_figures(
            part["churn"].to_numpy(), part[PREDICTION].to_numpy(), reference.metrics, config
        )
        training = {
            k: reference.metrics[k]
            for k in ("roc_auc", "ece", "precision_at_capacity")
            if k in reference.metrics
        }
        results.append(Performance(version, sorted(part["list_date"].unique()), figures, training, alerts))
    return results
