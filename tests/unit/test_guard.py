"""The ASGI guard in front of the API, around a stand-in app that records what reaches it."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from serving.auth import ApiKey, KeyRing
from serving.guard import ApiGuard, RateLimiter

READ, WRITE = "r" * 24, "w" * 24


def _app(reached: list[str]):
    async def app(scope, receive, send):
        reached.append(scope["path"])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    return app


def _client(reached: list[str], per_second: float = 1000.0, burst: int = 1000) -> TestClient:
    keys = KeyRing(
        [
            ApiKey(name="reader", key=READ, scopes=frozenset({"read"})),
            ApiKey(name="writer", key=WRITE, scopes=frozenset({"read", "write"})),
        ]
    )
    guard = ApiGuard(
        _app(reached),
        keys,
        2048,
        RateLimiter(per_second, burst),
        500,
        lambda: {"openapi": "3.1.0"},
        {"team": ["savings_desk"]},
    )
    return TestClient(guard)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "message"),
    [
        ("DELETE", "/score", {}, None, 405, "method DELETE not allowed on /score"),
        ("GET", "/score", {}, None, 405, "method GET not allowed on /score"),
        ("POST", "/score", {}, b"{}", 401, "authorization: missing API key"),
        ("POST", "/score", _auth("x" * 24), b"{}", 401, "authorization: unknown API key"),
        ("POST", "/contact-outcome", _auth(READ), b"{}", 403, "lacks the 'write' scope"),
        ("POST", "/score", _auth(READ) | {"content-type": "text/plain"}, b"a=1", 415, "content-type"),
        (
            "POST",
            "/score",
            _auth(READ) | {"content-type": "application/json"},
            b"[" * 3000,
            413,
            "body: larger",
        ),
        ("GET", "/risk-list?team=call_centre", _auth(READ), None, 400, "team: not one of savings_desk"),
        ("GET", "/risk-list?limit=501", _auth(READ), None, 400, "limit: at most 500"),
        ("GET", "/healthz?x=1", {}, None, 400, "x: unknown query parameter"),
    ],
)
def test_guard__refuses_before_the_app_with_one_error_shape(method, path, headers, body, status, message):
    reached: list[str] = []
    response = _client(reached).request(method, path, headers=headers, content=body)
    assert response.status_code == status and message in response.json()["error"]
    assert set(response.json()) == {"error", "field"}
    assert reached == [], "a refused request never reaches the service"
    if status == 405:
        assert response.headers["allow"] in ("POST", "GET")
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_guard__an_authorization_header_sent_twice_is_a_400():
    reached: list[str] = []
    response = _client(reached).post(
        "/score",
        headers=[("Authorization", f"Bearer {READ}"), ("Authorization", f"Bearer {READ}")],
        content=b'{"customer_ids": [1]}',
    )
    assert response.status_code == 400 and response.json()["field"] == "authorization" and reached == []


def test_guard__valid_requests_reach_the_app_and_probes_need_no_key():
    reached: list[str] = []
    client = _client(reached)
    good = client.post(
        "/score", headers=_auth(READ) | {"content-type": "application/json"}, content=b'{"customer_ids": [1]}'
    )
    assert good.status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs.json").json() == {"openapi": "3.1.0"}, "the document comes from serving.openapi"
    assert reached == ["/score", "/healthz"]


def test_guard__a_key_over_its_rate_gets_429_with_retry_after_and_other_keys_are_unaffected():
    reached: list[str] = []
    client = _client(reached, per_second=0.5, burst=2)
    statuses = [client.get("/model-info", headers=_auth(READ)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/model-info", headers=_auth(READ))
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert client.get("/model-info", headers=_auth(WRITE)).status_code == 200, "the bucket is per key"


def test_rate_limiter__refills_at_its_rate():
    limiter = RateLimiter(per_second=2.0, burst=1)
    assert limiter.wait("k", now=0.0) == 0.0
    assert limiter.wait("k", now=0.1) == pytest.approx(0.4)
    assert limiter.wait("k", now=0.6) == 0.0


def test_guard__client_errors_are_one_warning_line_with_no_value_and_no_key(caplog):
    reached: list[str] = []
    with caplog.at_level(logging.DEBUG):
        _client(reached).post(
            "/score",
            headers=_auth(READ) | {"content-type": "application/json"},
            content=b'{"customer_ids": [100249], "rows": [{"features": {"x": 98765.4321}}]}',
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "churn.api"]
    assert len(lines) == 1 and lines[0].startswith("400 POST /score (key reader): ")
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("100249", "98765.4321", READ):
        assert secret not in text
