"""Faults of a real server: two workers swapping champions under load, workers killed with their
log rows still queued, and the database (PostgreSQL) refusing connections."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import httpx
import mlflow
import psutil
import pytest
import sqlalchemy as sa

from churn.cli import main
from tests.conftest import POSTGRES_ADMIN_URL, ROOT
from tests.integration.conftest import READ, WRITE, auth
from tests.integration.test_api_server import start_server, stop_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database():
    """A throwaway PostgreSQL database for the module."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"churn_faults_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc.orig}")
    yield admin, name
    with admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def server(api_workspace, database, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    _, name = database
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    (tmp / "config.yaml").write_text(
        "serving:\n  reload_seconds: 1\n  log_flush_seconds: 30\n"  # log rows wait in the queue
        "  rate_limit_per_second: 100000\n  rate_limit_burst: 100000\n"
    )
    env = dict(os.environ) | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{api_workspace / 'mlflow.db'}",
        "CHURN_OUTPUT_DIR": str(tmp / "out"),
        "CHURN_DATABASE_URL": url,
        "CHURN_SECRETS_FILE": str(api_workspace / "secrets.json"),
        "CHURN_CONFIG": str(tmp / "config.yaml"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.chdir(ROOT)
        assert main(["score", "--as-of", "2026-11-01"]) == 0
    mlflow.set_tracking_uri(None)
    served = start_server(tmp, env, "--workers", "2")
    served |= {"database_url": url, "tracking": env["MLFLOW_TRACKING_URI"]}
    with sa.create_engine(url).connect() as connection:
        served["customers"] = [
            int(r[0])
            for r in connection.execute(sa.text("SELECT customer_id FROM risk_list WHERE contact LIMIT 20"))
        ]
    yield served
    assert stop_server(served) == 0


def _workers(server) -> list[psutil.Process]:
    """The server's worker processes that are running (not the dead ones awaiting their parent)."""
    found = []
    for process in psutil.Process(server["process"].pid).children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker" in " ".join(
                process.cmdline()
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_two_workers__a_promoted_champion_is_swapped_in_without_one_failed_request(server, monkeypatch):
    url, customers = server["url"], server["customers"]
    assert len(_workers(server)) == 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server["tracking"])  # the registry looks up the run's model
    client = mlflow.MlflowClient()
    current = client.get_model_version("bank-churn", "1")
    copy = client.create_model_version("bank-churn", current.source, run_id=current.run_id)
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                r = http.post(f"{url}/score", json={"customer_ids": customers[:3]}, headers=auth(READ))
                answers.append(
                    (r.status_code, r.json().get("model_version") if r.status_code == 200 else None)
                )

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        time.sleep(1.0)
        client.set_registered_model_alias("bank-churn", "champion", copy.version)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # both workers answer with the new version, 40 times running
            tail = answers[-40:]
            if len(tail) == 40 and all(v == str(copy.version) for _, v in tail):
                break
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        client.set_registered_model_alias("bank-churn", "champion", "1")
    statuses = {status for status, _ in answers}
    assert statuses == {200}, f"failed requests during the swap: {statuses}"
    assert {v for _, v in answers} == {"1", str(copy.version)}
    assert all(v == str(copy.version) for _, v in answers[-40:]), "every worker swapped"


def test_killed_workers__the_log_rows_they_had_queued_are_replayed_by_their_replacements(server):
    url, customers = server["url"], server["customers"]
    requests = [
        httpx.post(f"{url}/score", json={"customer_ids": [c]}, headers=auth(READ)).json()["request_id"]
        for c in customers
    ]
    killed = _workers(server)
    for worker in killed:  # the rows wait in their queues (flush every 30 s) and journals
        worker.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alive = [w for w in _workers(server) if w.pid not in {k.pid for k in killed}]
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if len(alive) == 2 and ready:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the workers were not replaced")
    engine = sa.create_engine(server["database_url"])
    try:
        with engine.connect() as connection:
            logged = connection.execute(
                sa.text("SELECT COUNT(DISTINCT request_id) FROM prediction_log WHERE request_id = ANY(:ids)"),
                {"ids": requests},
            ).scalar()
    finally:
        engine.dispose()
    assert logged == len(requests), "every answered request is in the prediction log"


def test_database_down__not_ready_scores_still_answer_and_writes_get_503(server, database):
    admin, name = database
    url, customer = server["url"], server["customers"][0]
    event = {
        "event_id": "faults-1",
        "customer_id": customer,
        "contacted_at": "2026-11-20T10:00:00Z",
        "channel": "phone",
        "reached": True,
    }
    with admin.connect() as connection:
        connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
    try:
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 503
        scored = httpx.post(f"{url}/score", json={"customer_ids": [customer]}, headers=auth(READ), timeout=30)
        assert scored.status_code == 200
        score = scored.json()["scores"][0]
        assert score["contact"] is False and score["contact_rule"].startswith("contact history unavailable")
        written = httpx.post(f"{url}/contact-outcome", json=event, headers=auth(WRITE), timeout=30)
        assert written.status_code == 503 and written.headers["retry-after"]
        assert written.json() == {"error": "database unavailable: retry later", "field": None}
        assert httpx.get(f"{url}/risk-list", headers=auth(READ), timeout=30).status_code == 503
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/readyz", timeout=30).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (
        httpx.post(f"{url}/contact-outcome", json=event, headers=auth(WRITE), timeout=30).status_code == 201
    )
