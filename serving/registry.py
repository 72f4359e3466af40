"""The champion model in the MLflow registry: which version has the alias, and its bundle."""

from __future__ import annotations

from typing import Any

from churn.config import AppConfig
from serving.model_bundle import ModelBundle

CHAMPION = "champion"


def champion_version(config: AppConfig) -> str:
    """The registry version that has the `champion` alias.

    Raises:
        ValueError: no version has the alias (train and promote first).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    name = config.mlflow.model_name
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        raise ValueError(
            f"no version of model {name!r} has the alias {CHAMPION!r}: run `churn train` and `churn promote` "
            "(a first model that fails its sanity gates is not promoted: `churn promote` says why, and "
            "`churn promote --force` accepts it)"
        ) from None


def load_bundle(config: AppConfig, version: str) -> ModelBundle:
    """The version's bundle, read straight from its registered artifacts with this checkout's code.

    Not through `mlflow.pyfunc.load_model`: that puts the model's own copy of the code first on
    the import path of the whole process, so every later import (and every Dask worker this
    process starts) would run the code as it was when the model was trained. The pyfunc stays
    for MLflow's own tools (`mlflow models serve`, `mlflow.pyfunc.load_model` by a client).
    """
    import tempfile

    import mlflow

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{config.mlflow.model_name}/{version}/artifacts/bundle", dst_path=tmp
        )
        return ModelBundle.load(path)


def version_metrics(config: AppConfig, version: str) -> dict[str, Any]:
    """The training run's headline test metrics and the version's registration details."""
    import mlflow

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    client = mlflow.MlflowClient()
    model_version = client.get_model_version(config.mlflow.model_name, version)
    metrics = client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
    return {
        "run_id": model_version.run_id,
        "registered_at": model_version.creation_timestamp,
        "metrics": {
            k: metrics[k]
            for k in ("roc_auc", "pr_auc", "ece", "brier", "precision_at_capacity", "next_product.map_at_3")
            if k in metrics
        },
    }


def load_champion(config: AppConfig) -> tuple[ModelBundle, str]:
    """The champion bundle and its registry version."""
    version = champion_version(config)
    return load_bundle(config, version), version
