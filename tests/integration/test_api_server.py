"""A real `bentoml serve` on a free loopback port: readiness, scoring, an outcome, metrics, a clean
shutdown that writes the prediction log; and schemathesis against the server's own OpenAPI spec."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import READ, WRITE, auth


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(api_env):
    port = _free_port()
    bentoml = Path(sys.executable).with_name("bentoml")
    log = open(api_env / f"server-{port}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(bentoml), "serve", "serving.service:ChurnService", "--host", "127.0.0.1", "--port", str(port)],
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"server exited: {(api_env / f'server-{port}.log').read_text()[-3000:]}")
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("server not ready in 120 s")
    yield {"url": url, "process": process, "log": api_env / f"server-{port}.log"}
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    log.close()


def _known_customer(api_env) -> int:
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        return int(
            connection.execute("SELECT customer_id FROM risk_list WHERE contact = 1 LIMIT 1").fetchone()[0]
        )


# -- schemathesis first (the last test shuts the server down) -------------------------------------------
def test_generated_requests_never_get_a_server_error(server):
    """Every operation in the served OpenAPI document, fed schema-generated (valid and invalid)
    requests with a read+write key: no response may be a 5xx."""
    from hypothesis import given

    api = schemathesis.openapi.from_url(f"{server['url']}/docs.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/score", "/explain", "/contact-outcome", "/risk-list"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=auth(WRITE), checks=[not_a_server_error])

        check()


def test_server__scores_records_an_outcome_exposes_metrics_and_shuts_down_cleanly(server, api_env):
    url = server["url"]
    customer = _known_customer(api_env)
    assert httpx.get(f"{url}/healthz").status_code == 200
    scored = httpx.post(f"{url}/score", json={"customer_ids": [customer, 42]}, headers=auth(READ))
    assert scored.status_code == 200
    body = scored.json()
    assert body["scores"][0]["customer_id"] == customer and body["errors"][0]["customer_id"] == 42
    event = {
        "event_id": "server-test-1",
        "customer_id": customer,
        "contacted_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "channel": "phone",
        "reached": True,
        "customer_status": "stayed",
    }
    assert httpx.post(f"{url}/contact-outcome", json=event, headers=auth(WRITE)).status_code == 201
    assert httpx.get(f"{url}/metrics").status_code == 401
    metrics = httpx.get(f"{url}/metrics", headers=auth(READ))
    assert metrics.status_code == 200 and "bentoml_service_request_total" in metrics.text
    assert READ not in server["log"].read_text(), "keys are never logged"

    os.killpg(server["process"].pid, signal.SIGTERM)
    assert server["process"].wait(30) == 0
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        logged = connection.execute(
            "SELECT COUNT(*) FROM prediction_log WHERE request_id = ?", (body["request_id"],)
        ).fetchone()[0]
        outcome = connection.execute(
            "SELECT customer_status FROM contact_history WHERE event_id = 'server-test-1'"
        ).fetchone()
    assert logged == 1, "the prediction log is flushed on a graceful shutdown"
    assert outcome == ("stayed",)
