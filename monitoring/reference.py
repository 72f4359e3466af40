"""What a model version saw in training, and the alerts the monitor raises against it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from churn.config import AppConfig

PREDICTION = "churn_probability"


@dataclass(frozen=True)
class Reference:
    """What the model version saw in training: a sample of rows with its scores, and the
    features ranked by mean |SHAP|."""

    version: str
    frame: pd.DataFrame
    features: list[str]  # most important first
    metrics: dict[str, float] = field(default_factory=dict)  # the training run's test metrics


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    value: float
    threshold: float
    features: list[str]
    message: str


def load_reference(config: AppConfig, version: str) -> Reference:
    """The training reference logged with this registry version's run."""
    import mlflow

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    run_id = mlflow.MlflowClient().get_model_version(config.mlflow.model_name, version).run_id
    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="reference/reference_sample.parquet"
    )
    importance = mlflow.artifacts.load_dict(f"runs:/{run_id}/shap/global_mean_abs_shap.json")
    features = sorted(importance, key=lambda name: -importance[name])
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    return Reference(version, pd.read_parquet(path), features, metrics)
