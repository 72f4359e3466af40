"""A trained, promoted champion with a daily list (2026-11-01) and API secrets, shared by the API tests."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

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
        _copy_store(tmp, tmp / "pristine")  # for `promoted_store`, before any test moves it
        assert main(["score", "--as-of", "2026-11-01"]) == 0
        shutil.copytree(tmp / "out", tmp / "pristine-out")  # for `own_api_env`: the daily list, no outcomes
    mlflow.set_tracking_uri(None)
    return tmp


def _copy_store(source: Path, target: Path) -> None:
    """The MLflow store under `source` (mlflow.db and the mlartifacts beside it) as a store of its
    own under `target`: the database keeps absolute artifact locations, which are moved along."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "mlartifacts", target / "mlartifacts")
    with (
        closing(sqlite3.connect(source / "mlflow.db")) as read,
        closing(sqlite3.connect(target / "mlflow.db")) as db,
    ):
        read.backup(db)
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]:
                db.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (str(source), str(target), str(source)),
                )
        db.commit()
        moved = db.execute(
            "SELECT count(*) FROM experiments WHERE instr(artifact_location, ?) > 0", (str(target),)
        )
        assert moved.fetchone()[0] >= 1, "no artifact location was moved: has MLflow's schema changed?"


@pytest.fixture(scope="module")
def promoted_store(api_workspace, tmp_path_factory) -> Path:
    """A store of the module's own holding the champion the API tests trained and promoted
    (version 1, as it was before any test moved it): for tests that register, promote or log."""
    tmp = tmp_path_factory.mktemp("store")
    _copy_store(api_workspace / "pristine", tmp)
    return tmp


def _applied(workspace: Path):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _environment(workspace).items():
            patch.setenv(name, value)
        patch.chdir(ROOT)
        yield workspace
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def api_env(api_workspace):
    """The shared workspace, as the modules before this one (in its process) left it."""
    yield from _applied(api_workspace)


@pytest.fixture(scope="module")
def own_api_env(api_workspace, tmp_path_factory):
    """A workspace of the module's own, as the shared one was before any test used it (the
    promoted champion, the daily list, no recorded outcomes): for a module whose assertions read
    what others write, so that it passes in any order and in any process."""
    tmp = tmp_path_factory.mktemp("own-api")
    for name in ("config.yaml", "secrets.json"):
        shutil.copy(api_workspace / name, tmp / name)
    copy_pristine(api_workspace, tmp)
    yield from _applied(tmp)


def copy_pristine(api_workspace: Path, target: Path) -> None:
    """The shared workspace's store and outputs under `target` as they were before any test used
    them: the promoted champion (`mlflow.db`, `mlartifacts`) and the daily list (`out`)."""
    _copy_store(api_workspace / "pristine", target)
    shutil.copytree(api_workspace / "pristine-out", target / "out")
