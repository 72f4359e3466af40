"""The request logs' writer: journaled before queueing, replayed after a kill, never twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from serving.request_log import RequestLogWriter, replay_journals
from serving.store import ServingStore


def _access_row(n: int) -> dict:
    return {
        "logged_at": dt.datetime(2026, 11, 20, 10, 0, n),
        "key_name": "crm-read",
        "endpoint": "score",
        "customer_key": f"{n:032x}",
        "request_id": f"request-{n}",
    }


def _count(store: ServingStore, table: str = "access_log") -> int:
    with store.engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()


def test_writer__close_writes_everything_queued_and_leaves_no_journal(tmp_path):
    store = ServingStore(f"sqlite:///{tmp_path / 'churn.db'}")
    writer = RequestLogWriter(store.append_logs, 60.0, 1000, journal_dir=tmp_path / "journal")
    writer.put("access_log", [_access_row(n) for n in range(5)])
    writer.close()
    assert _count(store) == 5
    assert list((tmp_path / "journal").iterdir()) == [], "committed segments are deleted"


def test_writer__rows_wait_in_memory_and_journal_while_the_database_is_down(tmp_path):
    store = ServingStore(f"sqlite:///{tmp_path / 'churn.db'}")
    down = {"now": True}

    def write(rows):
        if down["now"]:
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))
        store.append_logs(rows)

    writer = RequestLogWriter(write, 0.05, 1000, journal_dir=tmp_path / "journal")
    writer.put("access_log", [_access_row(n) for n in range(3)])
    time.sleep(0.3)
    assert _count(store) == 0 and any((tmp_path / "journal").iterdir())
    down["now"] = False
    writer.close()
    assert _count(store) == 3, "retried once the database is back"


def test_replay__rows_of_a_killed_process_are_written_once(tmp_path):
    # given a process that journals rows, cannot reach its database, and is killed
    journal = tmp_path / "journal"
    script = textwrap.dedent(
        f"""
        import datetime as dt, sys, time
        from serving.request_log import RequestLogWriter
        def never(rows):
            raise RuntimeError("database unreachable")
        writer = RequestLogWriter(never, 0.05, 1000, journal_dir={str(journal)!r})
        writer.put("access_log", [{{"logged_at": dt.datetime(2026, 11, 20), "key_name": "crm-read",
            "endpoint": "score", "customer_key": f"{{n:032x}}", "request_id": "r"}} for n in range(7)])
        print("journaled", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "journaled"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    store = ServingStore(f"sqlite:///{tmp_path / 'churn.db'}")
    # when the next worker starts, then
    assert replay_journals(journal, store.append_logs) == 7
    assert _count(store) == 7
    assert replay_journals(journal, store.append_logs) == 0, "a replayed segment is gone"


def test_append_logs__a_row_already_committed_is_skipped(tmp_path):
    store = ServingStore(f"sqlite:///{tmp_path / 'churn.db'}")
    row = _access_row(1) | {"entry_id": "a" * 32}
    store.append_logs({"access_log": [row]})
    store.append_logs({"access_log": [row, _access_row(2)]})  # a journal replayed after its commit
    assert _count(store) == 2
