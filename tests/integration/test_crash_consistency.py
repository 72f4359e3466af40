"""The daily job killed (SIGKILL) at many points: its files and database still agree.

Each run is a real `churn score` process with the champion of the API tests. Fault-injection
points (`CHURN_CRASH_AT`) kill it exactly between the publishing steps; other runs are killed
after a delay. Throughout, a reader polls the published folder every millisecond, as the
retention team's tools would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from serving.publish import reconcile
from tests.conftest import ROOT

AS_OF = "2026-11-01"


@pytest.fixture(scope="module")
def job(tmp_path_factory, api_workspace):
    tmp = tmp_path_factory.mktemp("crash")
    env = dict(os.environ) | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{api_workspace / 'mlflow.db'}",
        "CHURN_OUTPUT_DIR": str(tmp / "out"),
        "CHURN_DATABASE_URL": f"sqlite:///{tmp / 'out' / 'churn.db'}",
    }
    env.pop("CHURN_CRASH_AT", None)
    assert _score(env) == 0
    return tmp, env


@pytest.fixture(scope="module")
def reader(job):
    """Polls the published list's files every millisecond while the module's runs happen."""
    tmp, _ = job
    folder = tmp / "out" / "risk_lists" / AS_OF
    seen = {"polls": 0, "missing": 0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen["polls"] += 1
            if not ((folder / "risk_list.csv").exists() and (folder / "run.json").exists()):
                seen["missing"] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join()


def _score(env: dict[str, str], failpoint: str | None = None, kill_after: float | None = None) -> int:
    env = env | ({"CHURN_CRASH_AT": failpoint} if failpoint else {})
    process = subprocess.Popen(
        [sys.executable, "-m", "churn", "score", "--as-of", AS_OF],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
    return process.wait(120)


def _published(tmp) -> tuple[str, str, int]:
    """(created_at from the files, from the database, rows in the files minus rows in the database)."""
    folder = tmp / "out" / "risk_lists" / AS_OF
    files = json.loads((folder / "run.json").read_text())
    file_rows = sum(1 for _ in (folder / "risk_list.csv").open()) - 1
    with sa.create_engine(f"sqlite:///{tmp / 'out' / 'churn.db'}").connect() as connection:
        database = json.loads(
            connection.execute(
                sa.text("SELECT meta FROM risk_list_runs WHERE as_of = :d"), {"d": AS_OF}
            ).scalar()
        )
        rows = connection.execute(
            sa.text("SELECT COUNT(*) FROM risk_list WHERE as_of = :d"), {"d": AS_OF}
        ).scalar()
    return files["files_version"], database["files_version"], file_rows - rows


@pytest.mark.parametrize(
    ("failpoint", "database_moves"),
    [("files-written", False), ("database-writing", False), ("database-written", True), ("published", True)],
)
def test_killed_between_steps__the_next_run_finds_files_and_database_agreeing(
    job, reader, failpoint, database_moves
):
    tmp, env = job
    before = _published(tmp)
    # when the job is killed at this point
    assert _score(env, failpoint=failpoint) == -signal.SIGKILL
    # then after what the next run does first, both are old or both are new
    reconcile(tmp / "out" / "risk_lists", env["CHURN_DATABASE_URL"])
    files, database, difference = _published(tmp)
    assert files == database and difference == 0
    assert (database != before[1]) is database_moves
    versions = list((tmp / "out" / "risk_lists" / ".versions" / AS_OF).iterdir())
    assert [v.name for v in versions] == [files], "no unfinished version is left"


@pytest.mark.parametrize("delay", [2.5, 5.0])
def test_killed_at_a_random_moment__files_and_database_agree(job, reader, delay):
    tmp, env = job
    _score(env, kill_after=delay)
    reconcile(tmp / "out" / "risk_lists", env["CHURN_DATABASE_URL"])
    files, database, difference = _published(tmp)
    assert files == database and difference == 0


def test_readers_never_found_the_published_folder_missing(job, reader):
    tmp, env = job
    assert _score(env) == 0, "a run after the crashes completes"
    assert reader["polls"] > 1000 and reader["missing"] == 0
