"""API keys with scopes, the pseudonymisation key, and the ASGI middleware that enforces them.

Secrets come from the environment (`CHURN_API_KEYS`: a JSON list of keys; `CHURN_PSEUDONYM_KEY`)
or from the secrets file (JSON with `api_keys` and `pseudonym_key`); the environment wins. Keys
are compared in constant time and never logged: log lines name the key's `name` only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

Scope = Literal["read", "write"]
logger = logging.getLogger("churn.api")


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    key: SecretStr = Field(min_length=16)
    scopes: frozenset[Scope] = Field(min_length=1)


class Secrets(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: tuple[ApiKey, ...] = Field(min_length=1)
    pseudonym_key: SecretStr = Field(min_length=16)


class SecretsError(ValueError):
    """Missing or malformed secrets; the message says where they were looked for (never their values)."""


def load_secrets(secrets_file: str | Path, environ: Mapping[str, str] | None = None) -> Secrets:
    """API keys and the pseudonymisation key from the environment, else the secrets file.

    Raises:
        SecretsError: nothing configured, or a malformed entry (the message names the field).
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    path = Path(secrets_file)
    if path.exists():
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SecretsError(f"secrets file {path}: not readable JSON ({exc.__class__.__name__})") from None
    if environ.get("CHURN_API_KEYS"):
        try:
            raw["api_keys"] = json.loads(environ["CHURN_API_KEYS"])
        except json.JSONDecodeError:
            raise SecretsError("CHURN_API_KEYS: not a JSON list of {name, key, scopes}") from None
    if environ.get("CHURN_PSEUDONYM_KEY"):
        raw["pseudonym_key"] = environ["CHURN_PSEUDONYM_KEY"]
    if not raw:
        raise SecretsError(
            f"no API keys: set CHURN_API_KEYS and CHURN_PSEUDONYM_KEY, or write {path} (`churn secrets init`)"
        )
    try:
        return Secrets.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise SecretsError(f"secrets: {field}: {first['msg']}") from None


def init_secrets_file(path: str | Path) -> bool:
    """Write a secrets file with a fresh read key, a read+write key and a pseudonymisation key,
    readable by the owner only. Returns False (and leaves it alone) when the file exists."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "api_keys": [
            {"name": "crm-read", "key": secrets.token_urlsafe(32), "scopes": ["read"]},
            {"name": "crm-write", "key": secrets.token_urlsafe(32), "scopes": ["read", "write"]},
        ],
        "pseudonym_key": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    return True


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class KeyRing:
    """Finds the key a request presents; every stored key is compared, in constant time."""

    def __init__(self, keys: Iterable[ApiKey]):
        self._keys = [(key, _digest(key.key.get_secret_value())) for key in keys]

    def find(self, presented: str) -> ApiKey | None:
        digest = _digest(presented)
        found = None
        for key, stored in self._keys:  # no early exit: the time does not depend on which key
            if hmac.compare_digest(digest, stored):
                found = key
        return found


def pseudonymise(secret: str, customer_id: Any) -> str:
    """A keyed hash of a customer id: stable for joining logs, not reversible without the key."""
    return hmac.new(secret.encode(), str(customer_id).encode(), hashlib.sha256).hexdigest()[:32]


# -- the ASGI middleware ----------------------------------------------------------------------------
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/docs.json", "/", "/docs"})
WRITE_PATHS = frozenset({"/contact-outcome"})


class ApiGuard:
    """Authentication, scopes and request limits in front of every endpoint.

    - public: health and readiness probes and the OpenAPI document and page;
    - `write` scope: recording contact outcomes; `read` scope: everything else (scores,
      explanations, the risk list, model info, Prometheus metrics);
    - 401 without a valid `Authorization: Bearer <key>`, 403 for a key without the scope;
    - 413 for a body over `max_body_bytes` (declared or streamed), 415 for a POST that is not JSON.
    """

    def __init__(self, app: Any, keyring: KeyRing, max_body_bytes: int):
        self.app = app
        self.keyring = keyring
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        if path in PUBLIC_PATHS or path.startswith("/static_content"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            await _reply(send, 401, "missing API key: send 'Authorization: Bearer <key>'", bearer=True)
            return
        key = self.keyring.find(presented.strip())
        if key is None:
            await _reply(send, 401, "unknown API key", bearer=True)
            return
        needed: Scope = "write" if path in WRITE_PATHS else "read"
        if needed not in key.scopes:
            logger.warning("key %r refused: %s needs scope %r", key.name, path, needed)
            await _reply(send, 403, f"this API key lacks the '{needed}' scope that {path} needs")
            return
        if scope["method"] == "POST":
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json":
                await _reply(send, 415, "content-type: send application/json")
                return
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
                await _reply(send, 413, f"body: larger than {self.max_body_bytes} bytes")
                return
            body = await _read_body(receive, self.max_body_bytes)  # also caps chunked bodies
            if body is None:
                await _reply(send, 413, f"body: larger than {self.max_body_bytes} bytes")
                return
            receive = _replay(body)
        scope.setdefault("state", {})["api_key"] = key.name
        await self.app(scope, receive, send)


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


async def _reply(send: Any, status: int, message: str, bearer: bool = False) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="churn"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
