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
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churn.config import AppConfig
from monitoring.drift import VersionCheck, check_version
from monitoring.impact_watch import impact_check, impact_lines
from monitoring.realised import Performance, judged_lists, realised_performance
from monitoring.reference import PREDICTION, Alert, Reference, load_reference
from serving.tables import make_engine, prediction_log

log = logging.getLogger(__name__)
NO_VERSION = "-"
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


@dataclass
class MonitorRun:
    as_of: pd.Timestamp
    window_days: int
    checks: list[VersionCheck]
    performance: list[Performance] = field(default_factory=list)
    impact: dict[str, Any] | None = None  # the latest campaign impact (`monitoring.impact_watch`)
    impact_alerts: list[Alert] = field(default_factory=list)
    impact_note: str | None = None  # why the impact was not judged afresh, when it was not
    out_dir: Path | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def model_alerts(self) -> list[Alert]:
        """The alerts a retrained model can answer (drift, data quality, realised performance)."""
        return [a for check in self.checks for a in check.alerts] + [
            a for result in self.performance for a in result.alerts
        ]

    @property
    def alerts(self) -> list[Alert]:
        return self.model_alerts + self.impact_alerts

    def alerts_by_version(self) -> list[tuple[str, Alert]]:
        # a campaign's harm belongs to the playbook, not to a model version
        return (
            [(c.version, a) for c in self.checks for a in c.alerts]
            + [(r.version, a) for r in self.performance for a in r.alerts]
            + [(NO_VERSION, a) for a in self.impact_alerts]
        )


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


# -- the job ---------------------------------------------------------------------------------------
def run_monitor(
    config: AppConfig,
    as_of: pd.Timestamp | None = None,
    window_days: int | None = None,
    refresh_impact: bool = True,
) -> MonitorRun:
    """Check the window's scored data, write the report, figures, alerts and MLflow metrics.

    The campaigns' impact joins the run: judged afresh from the bank's contacts (`churn impact`)
    when `refresh_impact`, else the latest written figures; an action or campaign that pushes
    customers away is an alert."""
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
    impact_note = _refresh_impact(config) if refresh_impact else None
    impact, harm = impact_check(config.output_path)
    run = MonitorRun(as_of, window_days, checks, performance, impact, harm, impact_note)
    run.out_dir = _write(run, config)
    _record_alerts(run, config)
    _log_to_mlflow(run, config)
    _add_to_workspace(run, config)
    run.lines = summary_lines(run, config)
    return run


def _refresh_impact(config: AppConfig) -> str | None:
    """Judge the campaigns afresh (`churn impact`); a line saying why not when that cannot be
    done, since the drift checks do not depend on it."""
    if config.source is not None:
        return "impact                not judged: a bank brought as one table has no campaigns"
    from monitoring.impact_job import NOTHING_TO_JUDGE, run_impact

    try:
        lines = run_impact(config)
    except Exception as exc:  # reported, and the drift figures still stand
        log.warning("campaign impact not judged: %s", type(exc).__name__)
        first = (str(exc).splitlines() or [""])[0][:200]
        return (
            f"impact                not judged afresh ({type(exc).__name__}: {first}); "
            "the latest figures written, if any, are shown"
        )
    return NOTHING_TO_JUDGE if lines == [NOTHING_TO_JUDGE] else None


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
        "impact": run.impact,
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
    if run.impact is not None:
        with mlflow.start_run(run_name=f"monitor-{run.as_of:%Y-%m-%d}-impact"):
            mlflow.set_tags(
                {
                    "as_of": f"{run.as_of:%Y-%m-%d}",
                    "impact_month": run.impact["month"],
                    "alert": str(bool(run.impact_alerts)),
                }
            )
            numbers = {k: v for k, v in run.impact.items() if isinstance(v, float) and v == v}
            mlflow.log_metrics({f"impact.{k}": v for k, v in numbers.items()})


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
            f"ROC-AUC {f['roc_auc']:.3f} (expected {f['expected_roc_auc']:.3f}; training test {t.get('roc_auc', float('nan')):.3f}), "
            f"ECE {f['ece']:.3f}, precision at capacity {f['precision_at_capacity']:.2f}"
        )
    lines += ([run.impact_note] if run.impact_note else []) + impact_lines(run.impact)
    if run.alerts:
        lines.append(f"ALERT                 {len(run.alerts)} threshold(s) breached:")
        lines += [f"  - {a.message}" for a in run.alerts]
        if run.model_alerts:
            lines.append(
                "recommendation        retrain: `churn train && churn promote` (or `churn monitor --retrain-on-breach`)"
            )
        if run.impact_alerts:
            lines.append(
                "recommendation        change or stop the harmful action's rule in the playbook (`configs/playbook.yaml`); "
                "retraining does not change what a contact does"
            )
    else:
        lines.append("alerts                none")
    files = ", ".join(sorted(f.name for f in run.out_dir.iterdir())) if run.out_dir else ""
    lines.append(f"written to            {run.out_dir} ({files})")
    return lines
