"""MLflow: tracking-store setup, logging a training run, and registering its bundle as one pyfunc model."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from churn.config import AppConfig
from serving.model_bundle import categoricals_as_text
from training.pipeline import TrainingResult, as_float_dict

REPO_ROOT = Path(__file__).resolve().parent.parent
PYFUNC_MODEL_FILE = REPO_ROOT / "serving" / "pyfunc_model.py"
# What the logged model needs to load and predict (serving/ and features/ travel with it as code),
# named rather than inferred: MLflow's inference loads the model in a subprocess (about 4 s of
# every training) and, seeing this project's own package, left lightgbm out.
MODEL_REQUIREMENTS = (
    "mlflow",
    "cloudpickle",
    "lightgbm",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "pyyaml",
    "scikit-learn",
    "scipy",
)


def model_requirements() -> list[str]:
    """MODEL_REQUIREMENTS pinned to the versions installed here, the ones the model was trained with."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_REQUIREMENTS]


def configure_tracking(config: AppConfig, experiment: str | None = None) -> str:
    """Point MLflow at the configured tracking store and select the experiment; returns its id.

    With the local default (a SQLite file), the file's folder is created and artifacts go beside
    it, so a fresh machine needs no setup. Any other URI (an MLflow server, PostgreSQL) is used as is.
    """
    import mlflow

    uri = config.mlflow.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    name = experiment or config.mlflow.experiment
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        mlflow.set_experiment(experiment_id=existing.experiment_id)
        return existing.experiment_id
    artifact_location = None
    if uri.startswith("sqlite:///"):
        artifact_location = (Path(uri.removeprefix("sqlite:///")).parent.resolve() / "mlartifacts").as_uri()
    experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip() or "unknown"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as plain strings (missing stays missing), numbers as floats: what clients send."""
    out = categoricals_as_text(frame)
    numeric = [c for c in frame.columns if not isinstance(frame[c].dtype, pd.CategoricalDtype)]
    out[numeric] = out[numeric].astype(float)
    return out


def test_label(result: TrainingResult) -> str:
    split = result.split
    return getattr(split, "test_label", None) or f"{split.test:%Y-%m-%d}"


def _signature_frames(result: TrainingResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An input example as clients send it (the pyfunc converts text to categories), and its output."""
    example = plain_columns(result.extra["X_test"].head(5))
    prepared = result.bundle.prepare(example)
    p = result.bundle.churn_probability(prepared)
    value = result.bundle.value(prepared)
    output = pd.DataFrame({"churn_probability": p, "value": value, "value_at_risk": p * value})
    return example, output


def reference_sample(result: TrainingResult, rows: int, seed: int) -> pd.DataFrame:
    """What monitoring compares later data with: a random sample of training rows (features,
    labels) with the model's scores; no customer ids, since monitoring compares distributions."""
    train = result.extra["train_frame"]
    reference = train.sample(min(rows, len(train)), random_state=seed)
    scored = result.bundle.prepare(reference[result.bundle.feature_names])
    id_column = (result.bundle.meta.get("source") or {}).get("id_column", "customer_id")
    reference = reference.reset_index().drop(
        columns=[id_column, "customer_id", "churn_date"], errors="ignore"
    )
    reference["churn_probability"] = result.bundle.churn_probability(scored)
    return reference


def log_training_run(
    result: TrainingResult,
    config: AppConfig,
    tables: Mapping[str, pd.DataFrame] | None,
    reference_rows: int = 2000,
    lineage: tuple[pd.DataFrame, str] | None = None,
) -> tuple[str, str]:
    """Log params, config, lineage, metrics, plots and artifacts; register the bundle.

    Lineage is the tables' row counts and content digest (`training.rows.lineage_of`); a job that
    read the bank partition by partition passes them in (`lineage`) instead of the tables.

    Returns:
        (run id, registered model version), with the version aliased `challenger`.
    """
    import mlflow
    from mlflow.models import infer_signature

    from training.plots import evaluation_figures, shap_figures

    experiment_id = configure_tracking(config)
    client = mlflow.MlflowClient()
    # the parameters the churn booster was trained with: the search's choice after `--tune`
    churn_params = result.bundle.meta["training"].get("churn_params") or config.training.churn.model_dump()
    # the reasons' model's, as trained (none for a bank's own table: its reasons come from the churn model)
    driver_params = (result.bundle.meta.get("drivers") or {}).get("params") or {}
    model_name = config.mlflow.model_name
    with mlflow.start_run(run_name=f"train-{test_label(result)}") as run:
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "data_source": config.data.source,
                "stage": "training",
                "engine": result.extra.get("engine", "local"),
            }
        )
        mlflow.log_params(
            {f"churn.{k}": v for k, v in churn_params.items()}
            | {f"next_product.{k}": v for k, v in config.training.next_product.model_dump().items()}
            | {f"drivers.{k}": v for k, v in driver_params.items()}
            | {f"split.{k}": v for k, v in result.split.describe().items()}
            | {
                "horizon_days": config.labels.horizon_days,
                "features": len(result.bundle.feature_names),
                "calibrator": result.bundle.meta["calibrator"]["method"],
                "seed": config.training.seed,
            }
        )
        mlflow.log_dict(config.model_dump(mode="json"), "config/resolved_config.json")
        if lineage is None:
            from training.rows import lineage_of, table_hashes

            counts, digest = lineage_of([table_hashes(tables)])
        else:
            counts, digest = lineage
        mlflow.log_input(
            mlflow.data.from_pandas(
                counts, source=config.data.source, name=f"bank-tables-{digest}", digest=digest
            ),
            context="training",
        )
        mlflow.log_metrics(as_float_dict(result.metrics))
        for name, metrics in result.baseline_metrics.items():
            mlflow.log_metrics({f"{name}.{k}": v for k, v in as_float_dict(metrics).items()})
        mlflow.log_metrics(
            {f"next_product.{k}": v for k, v in as_float_dict(result.next_product_metrics).items()}
        )
        mlflow.log_metrics(
            {f"popularity.{k}": v for k, v in as_float_dict(result.popularity_metrics).items()}
        )
        mlflow.log_metrics({k: float(v) for k, v in result.rows.items()})
        if "data_report" in result.extra:
            mlflow.log_dict(result.extra["data_report"], "data/coercion_report.json")
        if "tuning" in result.extra:
            from training.tuning_tracking import log_search

            log_search(result.extra["tuning"], run.info.run_id, experiment_id)
        if "uplift" in result.extra:
            from training.uplift_report import log_uplift

            log_uplift(result.extra["uplift"])

        y = result.extra["y_test"]
        scores = {"lightgbm (calibrated)": result.test_frame["churn_probability"].to_numpy()}
        from training.models import one_rule_score

        if "assets_change_3m" in result.extra["X_test"].columns:
            scores["one rule (3-month balance drop)"] = one_rule_score(result.extra["X_test"])
        figures = evaluation_figures(y, scores)
        figures |= shap_figures(result.test_contributions, result.extra["X_test"])
        import matplotlib.pyplot as plt

        for filename, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{filename}")
            plt.close(figure)
        mlflow.log_dict(result.global_shap.round(6).to_dict(), "shap/global_mean_abs_shap.json")
        doc = REPO_ROOT / "docs" / "features.md"
        if doc.exists():
            mlflow.log_artifact(str(doc), "features")

        with tempfile.TemporaryDirectory() as tmp:
            reference = reference_sample(result, reference_rows, config.training.seed)
            path = Path(tmp) / "reference_sample.parquet"
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), "reference")
            bundle_dir = result.bundle.save(Path(tmp) / "bundle")
            example, output = _signature_frames(result)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(PYFUNC_MODEL_FILE),
                artifacts={"bundle": str(bundle_dir)},
                code_paths=[str(REPO_ROOT / "serving"), str(REPO_ROOT / "features")],
                signature=infer_signature(example, output),
                input_example=example,
                pip_requirements=model_requirements(),
                registered_model_name=model_name,
            )
        version = str(info.registered_model_version)
        client.set_registered_model_alias(model_name, "challenger", version)
        client.set_model_version_tag(model_name, version, "schema_hash", result.bundle.schema_hash)
        client.set_model_version_tag(model_name, version, "test_set", test_label(result))
        # a retrain with these as `training.churn` (no search) reproduces the booster
        client.set_model_version_tag(model_name, version, "churn_params", json.dumps(churn_params))
        client.set_model_version_tag(model_name, version, "tuned", str("tuning" in result.extra).lower())
        return run.info.run_id, version
