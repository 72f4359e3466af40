"""`churn monitor` end to end: real MLflow registry and tracking, the database, files, exit codes."""

import json

import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa

from churn.cli import ALERT_EXIT_CODE, main
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def workspace(promoted_store):
    """The champion the API tests trained, in a store of the module's own, and its own outputs."""
    tmp = promoted_store
    environment = {
        "CHURN_OUTPUT_DIR": str(tmp / "out"),
        "CHURN_DATABASE_URL": f"sqlite:///{tmp / 'out' / 'churn.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        patch.delenv("CHURN_DATA_SOURCE", raising=False)
        patch.chdir(ROOT)
        yield tmp
    mlflow.set_tracking_uri(None)


def _alerts(tmp) -> pd.DataFrame:
    engine = sa.create_engine(f"sqlite:///{tmp / 'out' / 'churn.db'}")
    try:
        return pd.read_sql("SELECT * FROM monitoring_alerts", engine)
    finally:
        engine.dispose()


def test_monitor__quiet_on_the_sample_writes_report_figures_and_mlflow_run(workspace, capsys):
    assert main(["score", "--as-of", "2026-11-01"]) == 0
    assert main(["monitor", "--as-of", "2026-11-01", "--window", "30d"]) == 0
    out = capsys.readouterr().out
    assert "alerts                none" in out
    # the campaigns were judged afresh against their controls, and nothing on the sample is harmful
    assert "impact (to 2026-06)   kept" in out and "no action or campaign pushed customers away" in out
    folder = workspace / "out" / "monitoring" / "2026-11-01"
    figures = json.loads((folder / "figures.json").read_text())
    assert figures["impact"]["month"] == "2026-06" and figures["impact"]["harmful"] == []
    assert figures["impact"]["compared"] == figures["impact"]["contacted"] > 500
    version = figures["versions"]["1"]
    assert figures["alert"] is False and version["rows"] > 2000
    assert version["prediction_psi"] < 0.2
    assert "<html" in (folder / "report.html").read_text()[:2000].lower()
    assert _alerts(workspace).empty
    runs = mlflow.search_runs(experiment_names=["churn-monitoring"])
    assert len(runs) == 2 and "metrics.impact.net_value" in runs.columns
    drift = runs[runs["tags.mlflow.runName"].str.endswith("-v1")]
    assert drift["metrics.drifted_share"].iloc[0] == pytest.approx(version["drifted_share"])
    from evidently.ui.workspace import Workspace

    projects = Workspace(str(workspace / "out" / "evidently")).search_project("bank-churn monitoring")
    assert len(projects) == 1, "the snapshot went to the Evidently workspace"


def test_monitor__realised_performance_of_a_list_whose_horizon_has_passed(workspace, capsys):
    assert main(["score", "--as-of", "2026-06-01"]) == 0
    capsys.readouterr()
    assert main(["monitor", "--as-of", "2026-09-15", "--window", "30d"]) == 0  # 2026-06-01 + 90 days
    assert "realised (v1)        lists 2026-06-01" in capsys.readouterr().out
    figures = json.loads((workspace / "out" / "monitoring" / "2026-09-15" / "figures.json").read_text())
    realised = figures["realised_performance"]["1"]
    assert realised["lists"] == ["2026-06-01"] and figures["versions"] == {}
    listed = pd.read_parquet(workspace / "out" / "risk_lists" / "2026-06-01" / "risk_list.parquet")
    not_contacted = ((listed["status"] == "scored") & ~listed["contact"].fillna(False)).sum()
    assert 0.9 * not_contacted <= realised["realised"]["customers"] <= not_contacted
    assert 0.6 < realised["realised"]["roc_auc"] <= 1.0
    assert realised["training"]["roc_auc"] == pytest.approx(
        mlflow.search_runs(experiment_names=["bank-churn"])["metrics.roc_auc"].iloc[0]
    )


def test_monitor__app_outage_exits_3_records_alerts_and_retrains(workspace, capsys):
    bank = workspace / "outage"
    assert main(["generate", "--out", str(bank), "--scenario", "app_outage"]) == 0
    assert main(["score", "--data", str(bank), "--as-of", "2026-11-01"]) == 0  # replaces that date's list
    capsys.readouterr()
    code = main(["monitor", "--data", str(bank), "--as-of", "2026-11-01", "--retrain-on-breach"])
    out = capsys.readouterr().out
    assert code == ALERT_EXIT_CODE
    assert "ALERT" in out and "recommendation        retrain" in out and "== retraining" in out
    alerts = _alerts(workspace)
    named = {f for features in alerts["features"] for f in json.loads(features)}
    assert {"logins_30d", "logins_90d"} & named
    assert set(alerts["model_version"]) == {"1"} and set(alerts["as_of"]) == {"2026-11-01"}
    versions = mlflow.MlflowClient().search_model_versions("name='bank-churn'")
    assert len(versions) == 2, "the breach trained a challenger"


def test_monitor__nothing_scored_in_the_window_exits_2(workspace, capsys):
    assert main(["monitor", "--as-of", "2025-01-01"]) == 2
    assert "nothing was scored in the 30 days up to 2025-01-01" in capsys.readouterr().err


def test_monitor__bad_window_exits_2(workspace, capsys):
    assert main(["monitor", "--window", "a month"]) == 2
    assert "expected a number of days" in capsys.readouterr().err


def test_current_rows__api_predictions_in_the_window_join_the_batch_rows(tmp_path):
    import datetime as dt

    from churn.config import load_config
    from monitoring.monitor import current_rows
    from serving.store import ServingStore

    url = f"sqlite:///{tmp_path / 'churn.db'}"
    config = load_config(environ={"CHURN_OUTPUT_DIR": str(tmp_path / "out"), "CHURN_DATABASE_URL": url})
    store = ServingStore(url)

    def logged(day: int, endpoint: str = "score") -> dict:
        return {
            "logged_at": dt.datetime(2026, 10, day, 12),
            "request_id": f"r{day}{endpoint}",
            "endpoint": endpoint,
            "model_version": "3",
            "customer_key": "k" * 64,
            "churn_probability": 0.2,
            "risk_tier": "high",
            "features": json.dumps({"logins_30d": 4.0, "segment": "mass"}),
            "outputs": "{}",
            "latency_ms": 5.0,
        }

    store.append_logs({"prediction_log": [logged(1), logged(20), logged(21, "explain"), logged(31)]})
    store.dispose()
    rows = current_rows(config, pd.Timestamp("2026-10-31"), 15)
    assert len(rows) == 2, "the score calls of 16-31 October; explanations are not scores"
    assert set(rows["source"]) == {"api"} and set(rows["model_version"]) == {"3"}
    assert rows["logins_30d"].tolist() == [4.0, 4.0] and "customer_key" not in rows.columns
