"""Monitoring: does the model still see the world it was trained on?

`churn monitor --as-of DATE --window 30d` compares what was scored in the window (the daily
lists' feature rows and the API's prediction log) with the training reference of the model
version that scored it (`reference/reference_sample.parquet` and the mean |SHAP| per feature,
logged with every training run), and writes:

    outputs/monitoring/<DATE>/report.html    Evidently's drift report (per feature and prediction)
    outputs/monitoring/<DATE>/figures.json   the key figures, per model version, segment and region
    monitoring_alerts (database)             one row per breached threshold
    MLflow experiment `churn-monitoring`     the key figures as metrics, the two files as artifacts
    outputs/evidently/                       the snapshots, for the trend in `evidently ui`

Drift per column is the population stability index (PSI, Evidently's `psi` method); thresholds
are in the `monitoring:` config section.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from churn.config import AppConfig
from serving.model_bundle import categoricals_as_text
from serving.request_log import WITHHELD_FEATURES
from serving.store import make_engine, prediction_log

PREDICTION = "churn_probability"
TOP_FEATURES = 10

alerts_metadata = sa.MetaData()
monitoring_alerts = sa.Table(
    "monitoring_alerts",
    alerts_metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("as_of", sa.String(10), nullable=False, index=True),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),  # a feature, 'all features', a segment
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON list of the features involved
    sa.Column("message", sa.Text, nullable=False),
)


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


@dataclass
class VersionCheck:
    """The checks of the rows one model version scored."""

    version: str
    rows: int
    drift: pd.DataFrame  # per column: psi, drifted
    quality: pd.DataFrame  # per feature: missing shares, out-of-range share, new categories
    segments: dict[str, dict[str, Any]]
    alerts: list[Alert]
    snapshot: Any = field(repr=False)

    def figures(self, config: AppConfig) -> dict[str, Any]:
        features = self.drift.drop(index=PREDICTION, errors="ignore")
        return {
            "rows": self.rows,
            "features_checked": len(features),
            "drifted_features": features.index[features["drifted"]].tolist(),
            "drifted_share": float(features["drifted"].mean()) if len(features) else 0.0,
            "prediction_psi": _psi_of(self.drift, PREDICTION),
            "psi": {c: round(float(v), 4) for c, v in self.drift["psi"].items()},
            "quality": self.quality.round(4).replace({np.nan: None}).to_dict(orient="index"),
            "segments": self.segments,
            "alerts": [a.__dict__ for a in self.alerts],
            "thresholds": config.monitoring.model_dump(),
        }


@dataclass
class Performance:
    """Realised performance of one model version's lists whose churn horizon has passed."""

    version: str
    lists: list[str]  # as-of dates judged
    figures: dict[str, float]
    training: dict[str, float]
    alerts: list[Alert]


@dataclass
class MonitorRun:
    as_of: pd.Timestamp
    window_days: int
    checks: list[VersionCheck]
    performance: list[Performance] = field(default_factory=list)
    out_dir: Path | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[Alert]:
        return [a for check in self.checks for a in check.alerts] + [
            a for result in self.performance for a in result.alerts
        ]

    def alerts_by_version(self) -> list[tuple[str, Alert]]:
        return [(c.version, a) for c in self.checks for a in c.alerts] + [
            (r.version, a) for r in self.performance for a in r.alerts
        ]


# -- data ------------------------------------------------------------------------------------------
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


def current_rows(config: AppConfig, as_of: pd.Timestamp, window_days: int) -> pd.DataFrame:
    """What was scored in (as_of - window, as_of]: the daily lists' feature rows with their scores
    (source 'batch') and the API's scored requests (source 'api'). No customer ids."""
    start = as_of - pd.Timedelta(days=window_days)
    frames = []
    for folder in sorted((config.output_path / "risk_lists").glob("????-??-??")):
        date = pd.Timestamp(folder.name)
        if not (start < date <= as_of and (folder / "features.parquet").exists()):
            continue
        features = pd.read_parquet(folder / "features.parquet")
        scored = pd.read_parquet(
            folder / "risk_list.parquet", columns=["customer_id", "status", PREDICTION, "model_version"]
        )
        scored = scored[scored["status"] == "scored"].set_index("customer_id").drop(columns="status")
        rows = features.join(scored, how="inner")
        frames.append(rows.assign(source="batch", scored_on=date).reset_index(drop=True))
    frames.append(_api_rows(config, start, as_of))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    rows["model_version"] = rows["model_version"].astype(str)
    return rows


def _api_rows(config: AppConfig, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    engine = make_engine(config.database_url)
    try:
        if not sa.inspect(engine).has_table(prediction_log.name):
            return pd.DataFrame()
        with engine.connect() as connection:
            found = connection.execute(
                sa.select(
                    prediction_log.c.model_version,
                    prediction_log.c.churn_probability,
                    prediction_log.c.features,
                    prediction_log.c.logged_at,
                ).where(
                    prediction_log.c.endpoint == "score",
                    prediction_log.c.logged_at > start.to_pydatetime(),
                    prediction_log.c.logged_at < (end + pd.Timedelta(days=1)).to_pydatetime(),
                )
            ).all()
    finally:
        engine.dispose()
    if not found:
        return pd.DataFrame()
    rows = pd.DataFrame([json.loads(r.features) for r in found])
    rows["model_version"] = [r.model_version for r in found]
    rows[PREDICTION] = [r.churn_probability for r in found]
    rows["source"] = "api"
    rows["scored_on"] = pd.to_datetime([r.logged_at for r in found]).normalize()
    return rows


# -- checks ----------------------------------------------------------------------------------------
def evidently_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], threshold: float
) -> Any:
    """Evidently's data-drift report (PSI per column, the same test as `psi_table`) as a snapshot,
    for the HTML page and the Evidently workspace; `columns`: those `psi_table` judged. Building it renders a chart per column, about
    8 s for the default model, so it is built once per monitoring run."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset(columns=columns, method="psi", threshold=threshold)])
    return report.run(current_data=current[columns], reference_data=reference[columns])


def psi_table(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], threshold: float
) -> pd.DataFrame:
    """PSI per column, with Evidently's PSI test (what its data-drift preset runs with
    `method="psi"`; the values are identical) but without building a report. Columns without a
    value on either side are left out (data quality reports them)."""
    from evidently.legacy.calculations.stattests import psi_stat_test
    from evidently.legacy.core import ColumnType

    psi = {}
    for column in columns:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if ref.empty or cur.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        kind = ColumnType.Numerical if numeric else ColumnType.Categorical
        if not numeric:
            ref, cur = ref.astype(str), cur.astype(str)
        psi[column] = float(psi_stat_test(ref, cur, kind, threshold).drift_score)
    table = pd.DataFrame({"psi": pd.Series(psi, dtype=float)})
    table["drifted"] = table["psi"] >= threshold
    return table


def quality_table(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Per feature: missing share in reference and current, the share of current values outside
    the reference's range (numbers), and category values the reference never had."""
    rows = {}
    for name in features:
        ref, cur = reference[name], current[name]
        if name in WITHHELD_FEATURES and "source" in current:  # the API's rows do not record it
            cur = cur[current["source"] != "api"]
        row = {"missing_reference": float(ref.isna().mean()), "missing_current": float(cur.isna().mean())}
        row["missing_increase"] = row["missing_current"] - row["missing_reference"]
        numbers = pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur)
        if numbers and ref.notna().any() and cur.notna().any():
            present = cur.dropna()
            row["out_of_range_share"] = float(((present < ref.min()) | (present > ref.max())).mean())
            row["new_categories"] = []
        else:
            row["out_of_range_share"] = np.nan
            row["new_categories"] = sorted(set(cur.dropna().astype(str)) - set(ref.dropna().astype(str)))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def judge(
    drift: pd.DataFrame, quality: pd.DataFrame, top_features: list[str], config: AppConfig
) -> list[Alert]:
    """The alerts these figures raise under the configured thresholds."""
    m = config.monitoring
    alerts = []
    features = drift.drop(index=PREDICTION, errors="ignore")
    drifted = features.index[features["drifted"]].tolist()
    share = len(drifted) / max(len(features), 1)
    by_psi = features.loc[drifted, "psi"].sort_values(ascending=False).index.tolist()
    if share >= m.max_drifted_share:
        alerts.append(
            Alert(
                "drift_share",
                "all features",
                share,
                m.max_drifted_share,
                by_psi,
                f"{share:.0%} of features drifted (PSI >= {m.psi_threshold}): {', '.join(by_psi[:8])}",
            )
        )
    top = [f for f in top_features[:TOP_FEATURES] if f in drifted]
    if len(top) >= m.max_top_features_drifted:
        alerts.append(
            Alert(
                "top_feature_drift",
                "top features",
                float(len(top)),
                float(m.max_top_features_drifted),
                top,
                f"{len(top)} of the {TOP_FEATURES} most important features drifted: "
                + ", ".join(f"{f} (PSI {features.loc[f, 'psi']:.2f})" for f in top),
            )
        )
    severe = features[features["psi"] >= m.severe_psi].sort_values("psi", ascending=False)
    for name, row in severe.iterrows():
        alerts.append(
            Alert(
                "feature_drift",
                str(name),
                float(row["psi"]),
                m.severe_psi,
                [str(name)],
                f"{name} drifted strongly (PSI {row['psi']:.2f})",
            )
        )
    psi = _psi_of(drift, PREDICTION)
    if m.alert_on_prediction_drift and psi is not None and psi >= m.psi_threshold:
        alerts.append(
            Alert(
                "prediction_drift",
                PREDICTION,
                psi,
                m.psi_threshold,
                [],
                f"predicted churn probability drifted (PSI {psi:.2f})",
            )
        )
    for name, row in quality.iterrows():
        if row["missing_increase"] > m.max_missing_increase:
            alerts.append(
                Alert(
                    "missing_values",
                    name,
                    row["missing_increase"],
                    m.max_missing_increase,
                    [name],
                    f"{name}: missing in {row['missing_current']:.0%} of rows (reference {row['missing_reference']:.0%})",
                )
            )
        if (
            row["out_of_range_share"] == row["out_of_range_share"]
            and row["out_of_range_share"] > m.max_out_of_range_share
        ):
            alerts.append(
                Alert(
                    "out_of_range",
                    name,
                    row["out_of_range_share"],
                    m.max_out_of_range_share,
                    [name],
                    f"{name}: {row['out_of_range_share']:.0%} of values outside the reference range",
                )
            )
        if row["new_categories"]:
            alerts.append(
                Alert(
                    "new_category",
                    name,
                    float(len(row["new_categories"])),
                    0.0,
                    [name],
                    f"{name}: values the model never saw: {', '.join(row['new_categories'][:5])}",
                )
            )
    return alerts


def segment_views(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    top_features: list[str],
    config: AppConfig,
) -> tuple[dict[str, dict[str, Any]], list[Alert]]:
    """Drift per segment and per region (model features, where the model has them), each against
    the reference rows of the same segment or region: a model can decay in one region first."""
    m = config.monitoring
    views, alerts = {}, []
    for column in ("segment", "region"):
        if column not in current.columns or column not in reference.columns:
            continue
        for value, rows in current.groupby(column, observed=True):
            ref = reference[reference[column].astype(str) == str(value)]
            if len(rows) < m.min_segment_rows or len(ref) < m.min_segment_rows:
                continue
            table = psi_table(ref, rows, features, m.psi_threshold).sort_values("psi", ascending=False)
            drifted = table.index[table["drifted"]].tolist()
            share = len(drifted) / max(len(table), 1)
            key = f"{column}={value}"
            severe = [
                f
                for f in drifted
                if f in top_features[:TOP_FEATURES] and table.loc[f, "psi"] >= m.segment_severe_psi
            ]
            views[key] = {
                "rows": len(rows),
                "drifted_share": share,
                "drifted_features": drifted,
                "psi": {f: round(float(table.loc[f, "psi"]), 4) for f in drifted},
            }
            if share >= m.max_drifted_share or severe:
                named = severe or drifted
                alerts.append(
                    Alert(
                        "segment_drift",
                        key,
                        float(table.loc[severe[0], "psi"]) if severe else share,
                        m.segment_severe_psi if severe else m.max_drifted_share,
                        named,
                        f"{key}: "
                        + (
                            ", ".join(f"{f} drifted strongly (PSI {table.loc[f, 'psi']:.2f})" for f in severe)
                            if severe
                            else f"{share:.0%} of features drifted: {', '.join(drifted[:8])}"
                        ),
                    )
                )
    return views, alerts


def check_version(
    reference: Reference, current: pd.DataFrame, config: AppConfig, with_report: bool = True
) -> VersionCheck:
    """Every check of the rows one model version scored, against that version's reference;
    `with_report`: also build Evidently's report (for the page and the workspace)."""
    features = [f for f in reference.features if f in current.columns and f in reference.frame.columns]
    ref = categoricals_as_text(reference.frame)
    cur = categoricals_as_text(current)
    columns = [*features, PREDICTION]
    drift = psi_table(ref, cur, columns, config.monitoring.psi_threshold)
    quality = quality_table(ref, cur, features)
    alerts = judge(drift, quality, reference.features, config)
    batch = cur[cur["source"] == "batch"] if "source" in cur.columns else cur
    segments, segment_alerts = segment_views(ref, batch, features, reference.features, config)
    judged = drift.index.tolist()  # the columns with values on both sides
    snapshot = evidently_report(ref, cur, judged, config.monitoring.psi_threshold) if with_report else None
    return VersionCheck(
        reference.version, len(cur), drift, quality, segments, alerts + segment_alerts, snapshot
    )


# -- realised performance --------------------------------------------------------------------------
def judged_lists(config: AppConfig, as_of: pd.Timestamp, window_days: int) -> list[Path]:
    """The daily lists whose churn horizon ended in the window: their outcomes are known now."""
    horizon = pd.Timedelta(days=config.labels.horizon_days)
    start = as_of - pd.Timedelta(days=window_days)
    return [
        folder
        for folder in sorted((config.output_path / "risk_lists").glob("????-??-??"))
        if start < pd.Timestamp(folder.name) + horizon <= as_of
    ]


def performance_figures(
    y: np.ndarray, p: np.ndarray, training: dict[str, float], config: AppConfig
) -> tuple[dict[str, float], list[Alert]]:
    """ROC-AUC, calibration error and precision at capacity of realised outcomes (the training
    pipeline's own metric functions), against the training test metrics; and the alerts."""
    from training.metrics import churn_metrics

    evaluation, m = config.evaluation, config.monitoring
    figures = churn_metrics(
        y, p, capacity=evaluation.contact_capacity, top_shares=tuple(evaluation.top_shares)
    )
    figures = {
        k: float(figures[k])
        for k in ("roc_auc", "pr_auc", "ece", "brier", "precision_at_capacity", "base_rate")
    }
    figures["customers"] = float(len(y))
    alerts = []
    trained_auc = training.get("roc_auc")
    if trained_auc is not None and trained_auc - figures["roc_auc"] > m.max_auc_drop:
        drop = trained_auc - figures["roc_auc"]
        alerts.append(
            Alert(
                "auc_drop",
                "roc_auc",
                drop,
                m.max_auc_drop,
                [],
                f"realised ROC-AUC {figures['roc_auc']:.3f}, {drop:.3f} below training ({trained_auc:.3f})",
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


def realised_performance(
    config: AppConfig, folders: list[Path], references: dict[str, Reference]
) -> list[Performance]:
    """Outcomes of the judged lists from the bank data, per model version. Customers who were
    contacted are left out: the contact was meant to change their outcome."""
    from features.jobs import load_validated
    from features.labels import build_labels, churn_dates

    tables = load_validated(config).tables
    churned = churn_dates(tables, config.labels)
    rows = []
    for folder in folders:
        scored = pd.read_parquet(
            folder / "risk_list.parquet",
            columns=["customer_id", "status", "contact", PREDICTION, "model_version"],
        )
        scored = scored[(scored["status"] == "scored") & ~scored["contact"].fillna(False).astype(bool)]
        labels = build_labels(tables, folder.name, config.labels, tuple(config.products), churned)
        judged = scored.join(labels["churn"], on="customer_id", how="inner")
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


# -- the job ---------------------------------------------------------------------------------------
def run_monitor(
    config: AppConfig, as_of: pd.Timestamp | None = None, window_days: int | None = None
) -> MonitorRun:
    """Check the window's scored data, write the report, figures, alerts and MLflow metrics."""
    window_days = window_days or config.monitoring.window_days
    as_of = pd.Timestamp(as_of) if as_of is not None else _latest_list_date(config)
    current = current_rows(config, as_of, window_days)
    judged = judged_lists(config, as_of, window_days)
    if current.empty and not judged:
        raise ValueError(
            f"as_of: nothing was scored in the {window_days} days up to {as_of:%Y-%m-%d}, and no list's "
            "churn horizon ended in them (run `churn score` first, or widen --window)"
        )
    references: dict[str, Reference] = {}
    checks = []
    for version, rows in current.groupby("model_version", sort=True) if len(current) else []:
        references[version] = load_reference(config, version)
        checks.append(check_version(references[version], rows, config))
    performance = realised_performance(config, judged, references) if judged else []
    run = MonitorRun(as_of, window_days, checks, performance)
    run.out_dir = _write(run, config)
    _record_alerts(run, config)
    _log_to_mlflow(run, config)
    _add_to_workspace(run, config)
    run.lines = summary_lines(run, config)
    return run


def _latest_list_date(config: AppConfig) -> pd.Timestamp:
    dates = sorted(p.name for p in (config.output_path / "risk_lists").glob("????-??-??"))
    if not dates:
        raise ValueError("no daily risk list in the output folder: run `churn score` first")
    return pd.Timestamp(dates[-1])


def _write(run: MonitorRun, config: AppConfig) -> Path:
    out = config.output_path / "monitoring" / f"{run.as_of:%Y-%m-%d}"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "as_of": f"{run.as_of:%Y-%m-%d}",
        "window_days": run.window_days,
        "alert": bool(run.alerts),
        "versions": {check.version: check.figures(config) for check in run.checks},
        "realised_performance": {
            r.version: {
                "lists": r.lists,
                "realised": r.figures,
                "training": r.training,
                "alerts": [a.__dict__ for a in r.alerts],
            }
            for r in run.performance
        },
    }
    (out / "figures.json").write_text(json.dumps(figures, indent=2, default=str))
    for check in run.checks:
        name = "report.html" if len(run.checks) <= 1 else f"report_v{check.version}.html"
        check.snapshot.save_html(str(out / name))
    return out


def _record_alerts(run: MonitorRun, config: AppConfig) -> None:
    """Replace this date's and window's alert rows with the ones raised now."""
    engine = make_engine(config.database_url)
    as_of = f"{run.as_of:%Y-%m-%d}"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        with engine.begin() as connection:
            alerts_metadata.create_all(connection)
            connection.execute(
                monitoring_alerts.delete().where(
                    monitoring_alerts.c.as_of == as_of, monitoring_alerts.c.window_days == run.window_days
                )
            )
            rows = [
                {
                    "created_at": now,
                    "as_of": as_of,
                    "window_days": run.window_days,
                    "model_version": version,
                    "kind": a.kind,
                    "subject": a.subject,
                    "value": float(a.value),
                    "threshold": float(a.threshold),
                    "features": json.dumps(a.features),
                    "message": a.message,
                }
                for version, a in run.alerts_by_version()
            ]
            if rows:
                connection.execute(monitoring_alerts.insert(), rows)
    finally:
        engine.dispose()


def _log_to_mlflow(run: MonitorRun, config: AppConfig) -> None:
    import mlflow

    from training.tracking import configure_tracking

    configure_tracking(config, experiment=config.monitoring.experiment)
    for check in run.checks:
        figures = check.figures(config)
        with mlflow.start_run(run_name=f"monitor-{run.as_of:%Y-%m-%d}-v{check.version}"):
            mlflow.set_tags(
                {
                    "as_of": f"{run.as_of:%Y-%m-%d}",
                    "model_version": check.version,
                    "alert": str(bool(check.alerts)),
                }
            )
            mlflow.log_params(
                {"window_days": run.window_days, "psi_threshold": config.monitoring.psi_threshold}
            )
            metrics = {
                "rows": float(check.rows),
                "drifted_share": figures["drifted_share"],
                "alerts": float(len(check.alerts)),
            }
            if figures["prediction_psi"] is not None:
                metrics["prediction_psi"] = figures["prediction_psi"]
            metrics |= {f"psi.{name}": value for name, value in figures["psi"].items() if value == value}
            mlflow.log_metrics(metrics)
            if run.out_dir is not None:
                mlflow.log_artifacts(str(run.out_dir), "monitoring")
    for result in run.performance:
        with mlflow.start_run(run_name=f"monitor-{run.as_of:%Y-%m-%d}-v{result.version}-realised"):
            mlflow.set_tags(
                {
                    "as_of": f"{run.as_of:%Y-%m-%d}",
                    "model_version": result.version,
                    "alert": str(bool(result.alerts)),
                }
            )
            mlflow.log_metrics({f"realised.{k}": v for k, v in result.figures.items() if v == v})


def _add_to_workspace(run: MonitorRun, config: AppConfig) -> None:
    """Add the snapshots to the local Evidently workspace (`evidently ui --workspace DIR`)."""
    from evidently.ui.workspace import Workspace

    path = config.monitoring.workspace_dir or str(config.output_path / "evidently")
    workspace = Workspace.create(path)
    name = f"{config.mlflow.model_name} monitoring"
    found = workspace.search_project(name)
    project = (
        found[0] if found else workspace.create_project(name, description="Feature and prediction drift")
    )
    for check in run.checks:
        if check.snapshot is None:
            continue
        workspace.add_run(project.id, check.snapshot, name=f"{run.as_of:%Y-%m-%d} v{check.version}")


def summary_lines(run: MonitorRun, config: AppConfig) -> list[str]:
    lines = []
    for check in run.checks:
        figures = check.figures(config)
        psi = figures["prediction_psi"]
        lines += [
            f"model version {check.version}     {check.rows:,} scored rows in the {run.window_days} days to {run.as_of:%Y-%m-%d}",
            f"feature drift         {len(figures['drifted_features'])} of {figures['features_checked']} features "
            f"(PSI >= {config.monitoring.psi_threshold}){': ' + ', '.join(figures['drifted_features'][:6]) if figures['drifted_features'] else ''}",
            f"prediction drift      PSI {psi:.3f}" if psi is not None else "prediction drift      n/a",
            f"segments and regions  {len(check.segments)} judged"
            + (
                f", alerts in {', '.join(flagged)}"
                if (flagged := sorted({a.subject for a in check.alerts if a.kind == "segment_drift"}))
                else ", none drifted"
            ),
        ]
    for result in run.performance:
        f, t = result.figures, result.training
        lines.append(
            f"realised (v{result.version})        lists {', '.join(result.lists)}: {int(f['customers']):,} customers not contacted, "
            f"ROC-AUC {f['roc_auc']:.3f} (training {t.get('roc_auc', float('nan')):.3f}), "
            f"ECE {f['ece']:.3f}, precision at capacity {f['precision_at_capacity']:.2f}"
        )
    if run.alerts:
        lines.append(f"ALERT                 {len(run.alerts)} threshold(s) breached:")
        lines += [f"  - {a.message}" for a in run.alerts]
        lines.append(
            "recommendation        retrain: `churn train && churn promote` (or `churn monitor --retrain-on-breach`)"
        )
    else:
        lines.append("alerts                none")
    files = ", ".join(sorted(f.name for f in run.out_dir.iterdir())) if run.out_dir else ""
    lines.append(f"written to            {run.out_dir} ({files})")
    return lines


def _psi_of(drift: pd.DataFrame, column: str) -> float | None:
    if column not in drift.index or drift.loc[column, "psi"] != drift.loc[column, "psi"]:
        return None
    return float(drift.loc[column, "psi"])
