"""A real `churn serve` on a free loopback port: schemathesis with every check against the served
OpenAPI document; every endpoint driven with good and bad input while nothing personal reaches the
server's log or the logging tables; scoring, an outcome and metrics; and SIGTERM to exactly the
`churn serve` process, after which no process of the server remains and the port is free."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import PSEUDONYM, READ, WRITE, auth

SENT_VALUES = ("98765.4321", "Atlantis", "12345.678")  # distinctive feature values sent in requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workspace: Path, env: dict[str, str], *args: str) -> dict:
    """`churn serve` on a free port, ready; its output goes to a log file."""
    port = free_port()
    log_path = workspace / f"server-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("churn")), "serve", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, f"{url}/readyz", log_path, 180)
    return {"url": url, "port": port, "process": process, "log": log_path, "file": log}


def wait_until_ready(process: subprocess.Popen, url: str, log_path: Path, seconds: float) -> None:
    """Until `url` answers 200; fails the test with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            pytest.fail(f"server exited: {log_path.read_text()[-3000:]}")
        time.sleep(0.3)
    process.kill()
    pytest.fail(f"server not ready in {seconds:.0f} s")


def stop_server(server: dict) -> int:
    """SIGTERM to the `churn serve` process itself; its exit code."""
    process = server["process"]
    if process.poll() is None:
        descendants = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        server["descendants"] = descendants
    else:
        code = process.returncode
    server["file"].close()
    return code


@pytest.fixture(scope="module")
def server(api_env):
    served = start_server(api_env, dict(os.environ))
    yield served
    stop_server(served)


def _known_customers(api_env, n: int = 5) -> list[int]:
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        rows = connection.execute(
            "SELECT customer_id FROM risk_list WHERE contact = 1 LIMIT ?", (n,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_schemathesis__every_check_passes_on_the_served_document(server):
    """Every operation, every phase (examples, coverage, fuzzing, stateful) and every check,
    including conformance of statuses, headers and bodies to the document, rejection of invalid
    data, acceptance of valid data, auth being enforced and unsupported methods refused."""
    env = dict(os.environ) | {
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            "--config-file",
            str(ROOT / "tests" / "integration" / "schemathesis.toml"),
            "run",
            f"{server['url']}/docs.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {WRITE}",
            # 50 generated cases an operation beside the coverage phase's own (100 took 20 s more)
            "--max-examples",
            "50",
            "--workers",
            "1",
            "--seed",
            "20261201",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Stateful" in result.stdout and "Fuzzing" in result.stdout


def _feature_row(api_env, customer: int) -> dict:
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        stored = pd.read_sql(
            "SELECT * FROM customer_features WHERE customer_id = ?", connection, params=[customer]
        )
    row = stored.drop(columns=["customer_id", "as_of"]).iloc[0].to_dict()
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


def test_nothing_personal__no_id_value_or_key_in_the_server_log_or_the_logging_tables(server, api_env):
    url, customers = server["url"], _known_customers(api_env)
    features = _feature_row(api_env, customers[0])
    read, write = auth(READ), auth(WRITE)
    # given every endpoint driven with good and bad requests carrying ids and distinctive values
    requests = [
        ("POST", "/score", read, {"customer_ids": customers}),
        ("POST", "/score", read, {"customer_ids": [customers[0], customers[0]]}),
        ("POST", "/score", read, {"customer_ids": [str(customers[1])]}),
        ("POST", "/score", read, {"rows": [{"features": features | {"outflow_30d": 12345.678}}]}),
        ("POST", "/score", read, {"rows": [{"features": features | {"region": "Atlantis"}}]}),
        ("POST", "/score", read, {"rows": [{"features": features | {"tenure_days": "98765.4321"}}]}),
        (
            "POST",
            "/score",
            read,
            {"rows": [{"features": features | {"nope": 98765.4321}, "customer_id": customers[2]}]},
        ),
        ("POST", "/explain", read, {"customer_id": customers[3]}),
        ("POST", "/explain", read, {"row": {"features": features | {"region": "Atlantis"}}}),
        ("POST", "/explain", read, {"customer_id": 98765}),
        (
            "POST",
            "/contact-outcome",
            write,
            {
                "event_id": "privacy-1",
                "customer_id": customers[4],
                "contacted_at": pd.Timestamp.now(tz="UTC").isoformat(),
                "channel": "phone",
                "reached": True,
            },
        ),
        (
            "POST",
            "/contact-outcome",
            write,
            {
                "event_id": "privacy-2",
                "customer_id": customers[4],
                "contacted_at": "0001-01-01T00:00:00Z",
                "channel": "phone",
                "reached": True,
            },
        ),
        ("POST", "/contact-outcome", read, {"event_id": "privacy-3", "customer_id": customers[4]}),
        ("GET", "/risk-list?limit=20", read, None),
        ("GET", "/risk-list?branch=98765.4321", read, None),
        ("GET", "/model-info", read, None),
        ("GET", "/metrics", read, None),
        ("POST", "/score", {"Authorization": f"Bearer {READ}x"}, {"customer_ids": customers}),
    ]
    statuses = [
        httpx.request(method, url + path, headers=headers, json=body, timeout=30).status_code
        for method, path, headers, body in requests
    ]
    assert statuses.count(200) + statuses.count(201) >= 8 and 500 not in statuses, statuses
    time.sleep(1.0)  # the background writer flushes every 0.1 s
    # then no raw id, sent value or key appears where the README says none lives
    log = server["log"].read_text()
    listed = [i["customer_id"] for i in httpx.get(f"{url}/risk-list?limit=20", headers=read).json()["items"]]
    ids = {str(c) for c in customers + listed + [98765]}
    found = {i for i in ids if re.search(rf"(?<![\w.=-]){i}(?![\w.])", log)}
    assert not found, f"customer ids in the server log: {sorted(found)}"
    for secret in (*SENT_VALUES, READ, WRITE, PSEUDONYM):
        assert secret not in log
    assert "Traceback" not in log and "input_value" not in log
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        keys = [
            row[0]
            for table in ("prediction_log", "access_log")
            for row in connection.execute(f"SELECT customer_key FROM {table} WHERE customer_key IS NOT NULL")
        ]
        documents = [
            text for row in connection.execute("SELECT features, outputs FROM prediction_log") for text in row
        ]
        readers = {row[0] for row in connection.execute("SELECT DISTINCT key_name FROM access_log")}
    # where a customer is named, it is by its keyed hash; no logged document carries an id field
    assert keys and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys), "the logs hold pseudonyms only"
    assert documents and not any("customer_id" in text for text in documents), (
        "a logged document names a customer"
    )
    assert {"reader", "writer"} <= readers, "the access log names the key that read each customer"


def test_server__scores_records_an_outcome_and_exposes_metrics(server, api_env):
    url = server["url"]
    customer = _known_customers(api_env, 1)[0]
    scored = httpx.post(f"{url}/score", json={"customer_ids": [customer, 42]}, headers=auth(READ))
    assert scored.status_code == 200
    body = scored.json()
    assert body["scores"][0]["customer_id"] == customer and body["errors"][0]["customer_id"] == 42
    server["scored_request"] = body["request_id"]
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


def test_sigterm_to_churn_serve__stops_every_process_frees_the_port_and_flushes_the_logs(server, api_env):
    code = stop_server(server)
    assert code == 0
    gone, alive = psutil.wait_procs(server["descendants"], timeout=30)
    assert not alive, f"processes of the server still running: {[p.pid for p in alive]}"
    with socket.socket() as s:  # nobody listens on the port (connections may linger in TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server["port"]))
        s.listen()
    with sqlite3.connect(api_env / "out" / "churn.db") as connection:
        logged = connection.execute(
            "SELECT COUNT(*) FROM prediction_log WHERE request_id = ?", (server["scored_request"],)
        ).fetchone()[0]
        outcome = connection.execute(
            "SELECT customer_status FROM contact_history WHERE event_id = 'server-test-1'"
        ).fetchone()
    assert logged == 1, "the prediction log is flushed on a graceful shutdown"
    assert outcome == ("stayed",)
    assert not any((api_env / "out" / "request-journal").glob("*.jsonl")), "the journal is empty"
