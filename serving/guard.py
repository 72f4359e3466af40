"""The ASGI middleware in front of every endpoint: methods, keys, scopes, rate limits, request checks.

In order, for each HTTP request:

- an undeclared method on a known path: 405 with `Allow`; public paths (probes, the OpenAPI
  document, which is served from `serving.openapi`, and the page) pass;
- `Authorization: Bearer <key>`: 400 when sent twice, 401 when missing or unknown, 403 without
  the scope the route needs (`read`, or `write` for contact outcomes);
- a per-key token bucket: 429 with `Retry-After` when a key sends faster than allowed;
- a POST must be JSON (415) and at most `max_body_bytes` (413, also when chunked), and its body
  must pass the route's model in strict JSON mode, with no repeated key (400); query strings may
  only hold the route's declared parameters (400).

Every refusal is one JSON body (`{"error", "field"}`) and one warning line naming the status,
route, key name and the rule: never a value from the request, a customer id or a key.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from serving.auth import KeyRing
from serving.request_checks import ROUTES, ApiError, check_body, check_query

logger = logging.getLogger("churn.api")


class RateLimiter:
    """A token bucket per key name: `per_second` sustained, bursts of up to `burst` requests."""

    def __init__(self, per_second: float, burst: int):
        self.per_second, self.burst = per_second, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def wait(self, key: str, now: float | None = None) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.per_second


class ApiGuard:
    """The checks above, then the app. `spec`: a callable giving the OpenAPI document."""

    def __init__(
        self,
        app: Any,
        keyring: KeyRing,
        max_body_bytes: int,
        limiter: RateLimiter,
        page_size_limit: int,
        spec: Any,
        allowed_query_values: dict[str, list[str]] | None = None,
    ):
        self.app = app
        self.keyring = keyring
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.page_size_limit = page_size_limit
        self.allowed_query_values = allowed_query_values or {}
        self._spec = spec
        self._spec_body: bytes | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        route = ROUTES.get(path)
        if route is None or path.startswith("/static_content"):
            await self.app(scope, receive, send)  # not ours: the server's own 404 or assets
            return
        method = scope["method"]
        try:
            if method != route.method:
                raise ApiError(405, None, f"method {method} not allowed on {path}", {"Allow": route.method})
            if route.scope is None:
                if path == "/docs.json":
                    await _send_json(send, 200, self._spec_document())
                    return
                check_query(route, scope.get("query_string", b""))
                await self.app(scope, receive, send)
                return
            key_name = self._authorise(scope, route.scope)
            scope.setdefault("state", {})["api_key"] = key_name
            retry = self.limiter.wait(key_name)
            if retry > 0:
                raise ApiError(
                    429,
                    None,
                    f"rate limit: at most {self.limiter.per_second:g} requests a second per key",
                    {"Retry-After": str(max(1, round(retry + 0.5)))},
                )
            query = check_query(route, scope.get("query_string", b""))
            if query is not None:
                self._check_query_values(query)
            if method == "POST":
                receive = await self._checked_body(scope, route, receive)
        except ApiError as error:
            log_client_error(method, path, error, scope.get("state", {}).get("api_key"))
            await _send_json(send, error.status, json.dumps(error.body()).encode(), error.headers)
            return
        except Exception as exc:  # a check that broke must not leave the request hanging
            place = traceback.extract_tb(exc.__traceback__)[-1]
            logger.error(
                "%s %s: internal error %s at %s:%d",
                method,
                path,
                type(exc).__name__,
                place.filename,
                place.lineno,
            )
            body = {
                "error": "internal error: the server log says where (request details are not logged)",
                "field": None,
            }
            await _send_json(send, 500, json.dumps(body).encode())
            return
        await self.app(scope, receive, send)

    def _check_query_values(self, query: Any) -> None:
        """What the configuration decides about a query: the page size and the allowed values."""
        if getattr(query, "limit", 0) > self.page_size_limit:
            raise ApiError(400, "limit", f"at most {self.page_size_limit}")
        for name, allowed in self.allowed_query_values.items():
            value = getattr(query, name, None)
            if value is not None and value not in allowed:
                raise ApiError(400, name, f"not one of {', '.join(allowed)}")

    def _authorise(self, scope: dict[str, Any], needed: str) -> str:
        values = [v for k, v in scope["headers"] if k.lower() == b"authorization"]
        if len(values) > 1:
            raise ApiError(400, "authorization", "header sent more than once")
        scheme, _, presented = (values[0].decode("latin-1") if values else "").partition(" ")
        challenge = {"WWW-Authenticate": 'Bearer realm="churn"'}
        if scheme.lower() != "bearer" or not presented.strip():
            raise ApiError(
                401, "authorization", "missing API key: send 'Authorization: Bearer <key>'", challenge
            )
        key = self.keyring.find(presented.strip())
        if key is None:
            raise ApiError(401, "authorization", "unknown API key", challenge)
        if needed not in key.scopes:
            scope.setdefault("state", {})["api_key"] = key.name
            raise ApiError(403, "authorization", f"this API key lacks the '{needed}' scope this route needs")
        return key.name

    async def _checked_body(self, scope: dict[str, Any], route: Any, receive: Any) -> Any:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(415, "content-type", "send application/json")
        declared = headers.get("content-length")
        too_large = ApiError(413, "body", f"larger than {self.max_body_bytes} bytes")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise too_large
        body = await _read_body(receive, self.max_body_bytes)  # also caps chunked bodies
        if body is None:
            raise too_large
        check_body(route, body)
        return _replay(body)

    def _spec_document(self) -> bytes:
        if self._spec_body is None:
            self._spec_body = json.dumps(self._spec()).encode()
        return self._spec_body


def log_client_error(method: str, path: str, error: ApiError, key_name: str | None) -> None:
    """One warning line: status, route, key name and the rule. ApiError messages hold no values."""
    logger.warning("%d %s %s (key %s): %s", error.status, method, path, key_name or "-", error)


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_json(send: Any, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
