"""MLflow tracking and registry on a real MLflow server backed by PostgreSQL."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest

from churn.cli import main
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def mlflow_server(postgres_url, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            postgres_url,
            "--artifacts-destination",
            str(tmp_path / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_training__logs_and_registers_on_an_mlflow_server_backed_by_postgresql(
    mlflow_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("CHURN_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.chdir(ROOT)
    assert main(["train"]) == 0
    assert main(["promote"]) == 0
    mlflow.set_tracking_uri(mlflow_server)
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("bank-churn", "champion").version) == "1"
    run = mlflow.search_runs(experiment_names=["bank-churn"], output_format="list")[0]
    assert run.data.metrics["roc_auc"] > 0.7
    # MLflow 3 keeps the model as a LoggedModel beside the run; the run holds plots, config, reference
    assert {"plots", "reference", "config", "shap"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)
    }
    model = mlflow.pyfunc.load_model("models:/bank-churn@champion")
    assert model.metadata.signature is not None
