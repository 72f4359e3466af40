"""API keys with scopes and the pseudonymisation key (`serving.guard` enforces the keys).

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
    # signs the retention desk's session cookies (`churn desk`); CHURN_DESK_SESSION_KEY wins
    desk_session_key: SecretStr | None = Field(None, min_length=32)


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


def _write_owner_only(path: Path, content: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2)
    os.replace(temporary, path)


def init_secrets_file(path: str | Path) -> bool:
    """Write a secrets file with a fresh read key, a read+write key, a pseudonymisation key and the
    desk's session key, readable by the owner only. Returns False when the file exists (then only a
    missing desk session key is added; nothing else is touched)."""
    path = Path(path)
    if path.exists():
        content = json.loads(path.read_text())
        if not content.get("desk_session_key"):
            _write_owner_only(path, content | {"desk_session_key": secrets.token_urlsafe(48)})
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "api_keys": [
            {"name": "crm-read", "key": secrets.token_urlsafe(32), "scopes": ["read"]},
            {"name": "crm-write", "key": secrets.token_urlsafe(32), "scopes": ["read", "write"]},
        ],
        "pseudonym_key": secrets.token_urlsafe(32),
        "desk_session_key": secrets.token_urlsafe(48),
    }
    _write_owner_only(path, content)
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
