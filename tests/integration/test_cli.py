"""The `churn` CLI end to end on the sample, and its answers to bad input."""

import json
import shutil

import pandas as pd
import pytest

from churn.cli import main
from features.schema import TABLE_NAMES
from tests.conftest import ROOT, SAMPLE


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("CHURN_DATA_SOURCE", raising=False)
    monkeypatch.chdir(ROOT)
    return tmp_path


def test_churn_features__summarises_the_sample_and_writes_outputs(env, capsys):
    assert main(["features"]) == 0
    out = capsys.readouterr().out
    assert "as-of date            2026-06-01" in out
    assert "features              86" in out
    summary = json.loads((env / "out" / "features" / "summary_2026-06-01.json").read_text())
    assert summary["customers"] > 2000
    assert 0.005 < summary["churn_rate"] < 0.1
    assert sorted(p.name for p in (env / "out" / "rejects").iterdir()) == sorted(
        f"{n}.csv" for n in TABLE_NAMES
    ), "one rejects file per table, the optional market table's included"
    assert "market" in TABLE_NAMES


def test_churn_features__bad_rows_in_csv_go_to_rejects(env, capsys):
    data = env / "csv"
    shutil.copytree(SAMPLE, data)  # every table as Parquet but the transactions, read from CSV
    (data / "transactions.parquet").unlink()
    pd.read_parquet(SAMPLE / "transactions.parquet").to_csv(data / "transactions.csv", index=False)
    tx = pd.read_csv(data / "transactions.csv", dtype=str)
    tx.loc[0, "amount"] = "-12"
    tx.loc[1, "customer_id"] = "999999999"
    tx.to_csv(data / "transactions.csv", index=False)
    assert main(["features", "--data", str(data)]) == 0
    rejects = pd.read_csv(env / "out" / "rejects" / "transactions.csv")
    assert rejects["reason"].tolist() == ["amount: below minimum 0", "customer_id: unknown customer"]
    assert "rejected rows         transactions 2" in capsys.readouterr().out


def test_churn_run__missing_column_exits_2_with_a_message(env, capsys):
    data = env / "broken"
    shutil.copytree(SAMPLE, data)
    pd.read_parquet(data / "customers.parquet").drop(columns="segment").to_parquet(data / "customers.parquet")
    assert main(["run", "--data", str(data)]) == 2
    assert "error: customers.segment: required column missing" in capsys.readouterr().err


def test_churn_run__missing_source_exits_2(env, capsys):
    assert main(["run", "--data", str(env / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_churn_run__bad_config_exits_2_naming_the_key(env, capsys):
    bad = env / "bad.yaml"
    bad.write_text(
        (ROOT / "configs" / "default.yaml").read_text().replace("output_dir: outputs", "output_dirr: outputs")
    )
    assert main(["run", "--config", str(bad)]) == 2
    assert "output_dirr: unknown key" in capsys.readouterr().err


def test_churn_generate__invalid_argument_exits_2(env, capsys):
    assert main(["generate", "--customers", "3", "--out", str(env / "g")]) == 2
    assert "customers" in capsys.readouterr().err


def test_churn_features__unknown_option_is_a_usage_error(env, capsys):
    assert main(["features", "--as-off", "2026-01-01"]) == 2
    assert "No such option" in capsys.readouterr().err


def test_sigterm__a_dask_job_stops_its_cluster_and_leaves_no_process(env):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    # given a feature job on a LocalCluster of two worker processes
    job = subprocess.Popen(
        [sys.executable, "-m", "churn", "features", "--engine", "dask"],
        env=dict(os.environ),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(psutil.Process(job.pid).children()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    started = psutil.Process(job.pid).children(recursive=True)
    assert len(started) >= 3, "the cluster's processes are running"
    # when exactly that process id gets SIGTERM, then the job unwinds and its cluster stops
    job.send_signal(signal.SIGTERM)
    assert job.wait(60) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"left running: {[p.cmdline()[:3] for p in alive]}"
