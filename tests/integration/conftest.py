"""A trained, promoted champion with a daily list (2026-11-01) and API secrets, shared by the API tests."""

from __future__ import annotations

import json

import mlflow
import pytest

from churn.cli import main
from tests.conftest import ROOT

READ = "r" * 24
WRITE = "w" * 24
PSEUDONYM = "p" * 24


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _environment(tmp) -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "CHURN_OUTPUT_DIR": str(tmp / "out"),
        "CHURN_DATABASE_URL": f"sqlite:///{tmp / 'out' / 'churn.db'}",
        "CHURN_SECRETS_FILE": str(tmp / "secrets.json"),
        "CHURN_CONFIG": str(tmp / "config.yaml"),
    }


@pytest.fixture(scope="session")
def api_workspace(tmp_path_factory):
    """Built once per session; the environment pointing at it is applied per module (`api_env`)."""
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "config.yaml").write_text(
        # generated requests come faster than a CRM would send them: no rate limit in the way
        "serving:\n  reload_seconds: 0\n  max_batch: 50\n  log_flush_seconds: 0.1\n"
        "  rate_limit_per_second: 100000\n  rate_limit_burst: 100000\n"
    )
    (tmp / "secrets.json").write_text(
        json.dumps(
            {
                "api_keys": [
                    {"name": "reader", "key": READ, "scopes": ["read"]},
                    {"name": "writer", "key": WRITE, "scopes": ["read", "write"]},
                ],
                "pseudonym_key": PSEUDONYM,
            }
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _environment(tmp).items():
            patch.setenv(name, value)
        patch.chdir(ROOT)
        assert main(["train"]) == 0 and main(["promote"]) == 0
        assert main(["score", "--as-of", "2026-11-01"]) == 0
    mlflow.set_tracking_uri(None)
    return tmp


@pytest.fixture(scope="module")
def api_env(api_workspace):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _environment(api_workspace).items():
            patch.setenv(name, value)
        patch.chdir(ROOT)
        yield api_workspace
    mlflow.set_tracking_uri(None)
