"""Publishing a day's list so that its files and the database always agree, whatever is killed when.

Layout: each run writes a new version folder `risk_lists/.versions/<date>/<version>/`, and
`risk_lists/<date>` is a symbolic link to the version that is published. The steps, in order:

1. `new_version`: the files, `run.json` and the page are written into a fresh version folder
   nobody reads yet;
2. `write_database`: one transaction replaces the date's rows and records the run, naming its
   version (`files_version` in the run's metadata): this commit is the moment the run happens;
3. `publish`: the link is swapped to the new folder with one atomic rename, so a reader sees the
   old folder or the new one, never none;
4. older versions of that date are removed.

A crash before step 2 leaves the old list in both places (the unfinished folder is removed by the
next run). A crash between steps 2 and 3 leaves the database one step ahead; `reconcile`, which
every daily run calls first, finishes what the commit decided by swapping the link forward.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from features.bulk import write_rows
from serving.tables import (
    CONTEXT_COLUMNS,
    CONTEXT_TABLE,
    FEATURES_TABLE,
    LIST_TABLE,
    RUNS_TABLE,
    TRIGGERS_TABLE,
    contact_history,
    make_engine,
    metadata,
)

VERSIONS = ".versions"
SPILL = ".spill"  # a version's per-partition working files (`serving.list_job`), removed on publish
SQLITE_CACHE_KIB = 256 * 1024  # the daily write's SQLite page cache
FAILPOINT_VARIABLE = "CHURN_CRASH_AT"  # fault injection for the crash tests (README, Reliability)


def clear_daily_tables(connection: sa.Connection) -> None:
    """Inside the daily job's transaction, before `append_daily_tables` per batch and
    `index_daily_tables`: drop the latest features and context, and the bank's own contacts from
    the contact history (the API's recorded outcomes are kept)."""
    metadata.create_all(connection)
    for name in (FEATURES_TABLE, CONTEXT_TABLE):
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    connection.execute(contact_history.delete().where(contact_history.c.source == "bank"))


def append_daily_tables(
    connection: sa.Connection,
    features: pd.DataFrame,
    context: pd.DataFrame,
    contacts: pd.DataFrame,
    as_of: str,
    recorded_at: pd.Timestamp,
) -> None:
    """Append one batch of customers' features and context, and their bank contacts."""
    from serving.model_bundle import categoricals_as_text

    latest = categoricals_as_text(features).reset_index()
    latest.insert(1, "as_of", as_of)
    write_rows(latest, FEATURES_TABLE, connection)
    plain = categoricals_as_text(context[CONTEXT_COLUMNS]).reset_index()
    plain["do_not_contact"] = plain["do_not_contact"].astype(bool)
    write_rows(plain, CONTEXT_TABLE, connection)
    if len(contacts):
        bank = pd.DataFrame(
            {
                "event_id": "bank:" + contacts["contact_id"].astype(str),
                "customer_id": contacts["customer_id"].astype("int64"),
                "contacted_at": pd.to_datetime(contacts["ts"]),
                "source": "bank",
                "channel": contacts["channel"].astype(object),
                "action": None,
                "control_group": contacts["control_group"].astype(bool),
                "reached": (contacts["outcome"].astype(object) != "not_reached")
                & ~contacts["control_group"].astype(bool),
                "offer_accepted": contacts["outcome"].astype(object) == "accepted",
                "customer_status": "unknown",
                "recorded_at": recorded_at.to_pydatetime(),
                "payload_hash": None,
            }
        )
        write_rows(bank, contact_history.name, connection)


def index_daily_tables(connection: sa.Connection) -> None:
    """Index the latest features and context by customer once every batch is in."""
    for name in (FEATURES_TABLE, CONTEXT_TABLE):
        connection.execute(sa.text(f"CREATE INDEX ix_{name}_id ON {name} (customer_id)"))


def failpoint(name: str) -> None:
    """Kill this process right here when `CHURN_CRASH_AT` names this point (tests only)."""
    if os.environ.get(FAILPOINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def new_version(out_dir: Path, as_of: str) -> Path:
    """A fresh, empty version folder for one date's files (named by the time and the writer's pid)."""
    name = f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}-{os.getpid()}"
    folder = out_dir / VERSIONS / as_of / name
    folder.mkdir(parents=True)
    return folder


class DailyWrite:
    """The daily job's open transaction (`daily_transaction`): `append` each group of customers'
    rows as it is ready, then `record` the run; the commit follows when the block ends."""

    def __init__(self, connection: sa.Connection, as_of: str, recorded_at: pd.Timestamp):
        self.connection, self.as_of, self.recorded_at = connection, as_of, recorded_at
        self.seconds = 0.0  # spent writing, for the run's stage seconds

    def append(
        self, table: pd.DataFrame, features: pd.DataFrame, context: pd.DataFrame, contacts: pd.DataFrame
    ) -> None:
        """The list's rows as stored, their feature rows, their customers' context, their bank contacts."""
        started = time.perf_counter()
        table = table.assign(as_of=self.as_of)
        _add_new_columns(self.connection, LIST_TABLE, table)
        write_rows(table, LIST_TABLE, self.connection)
        append_daily_tables(self.connection, features, context, contacts, self.as_of, self.recorded_at)
        self.seconds += time.perf_counter() - started

    def record(self, meta: dict[str, Any], triggers: pd.DataFrame | None = None) -> None:
        """Index the day's tables, add the triggers and the run's record (naming its files' version)."""
        started = time.perf_counter()
        connection = self.connection
        index_daily_tables(connection)
        if triggers is not None and len(triggers):
            triggers = triggers.assign(as_of=self.as_of)
            _add_new_columns(connection, TRIGGERS_TABLE, triggers)
            write_rows(triggers, TRIGGERS_TABLE, connection)
        failpoint("database-writing")
        keys = ("model_version", "scored", "excluded", "contacts_planned", "created_at")
        run = pd.DataFrame(
            [{"as_of": self.as_of, "meta": json.dumps(meta, default=str)} | {k: meta[k] for k in keys}]
        )
        run.to_sql(RUNS_TABLE, connection, if_exists="append", index=False)
        self.seconds += time.perf_counter() - started


@contextmanager
def daily_transaction(url: str, as_of: str, recorded_at: pd.Timestamp) -> Iterator[DailyWrite]:
    """One transaction that replaces this date's list and run record, the latest feature rows and
    customer context, and the bank's contacts in the contact history; committed when the block
    ends without an error, rolled back otherwise. The daily job appends each partition as soon as
    its files are written, so the database fills while the other partitions are still finishing."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                # a page cache that holds the indexes being appended to (the contact history's
                # two take a row per bank contact); SQLite's default is 2 MB. This connection only.
                connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            started = time.perf_counter()
            inspector = sa.inspect(connection)
            for name in (LIST_TABLE, RUNS_TABLE, TRIGGERS_TABLE):
                if inspector.has_table(name):
                    connection.execute(sa.text(f"DELETE FROM {name} WHERE as_of = :as_of"), {"as_of": as_of})
            clear_daily_tables(connection)
            write = DailyWrite(connection, as_of, recorded_at)
            write.seconds = time.perf_counter() - started
            yield write
    finally:
        engine.dispose()
    failpoint("database-written")


def write_database(
    batches: Iterable[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]],
    meta: dict[str, Any],
    url: str,
    triggers: pd.DataFrame | None = None,
) -> None:
    """`daily_transaction` with every batch at once: (the list's rows as stored, their feature
    rows, their customers' context, their bank contacts) per group of customers."""
    with daily_transaction(url, meta["as_of"], pd.Timestamp(meta["created_at"])) as write:
        for batch in batches:
            write.append(*batch)
        write.record(meta, triggers)


def finish_version(folder: Path, meta: dict[str, Any], page: str) -> None:
    """Add `run.json` (the run's metadata, naming this version) and the page: the folder is then
    complete, before the database commit names it."""
    meta["files_version"] = folder.name
    (folder / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    (folder / "summary.html").write_text(page)
    failpoint("files-written")


def _add_new_columns(connection: sa.Connection, name: str, frame: pd.DataFrame) -> None:
    """Columns a newer version of the list has that the stored table lacks (it keeps older dates)."""
    if not sa.inspect(connection).has_table(name):
        return
    present = {c["name"] for c in sa.inspect(connection).get_columns(name)}
    for column in frame.columns:
        if column not in present:
            kind = "FLOAT" if pd.api.types.is_float_dtype(frame[column]) else "TEXT"
            connection.execute(sa.text(f'ALTER TABLE {name} ADD COLUMN "{column}" {kind}'))


def publish(folder: Path) -> Path:
    """Point the date's link at the version folder (one atomic rename) and remove the date's
    older versions. Returns the date's path."""
    final = _point(folder)
    failpoint("published")
    _prune(folder.parent, keep=folder.name)
    return final


def _point(folder: Path) -> Path:
    """Point `risk_lists/<date>` at `folder` (.versions/<date>/<version>) atomically."""
    out_dir, as_of = folder.parent.parent.parent, folder.parent.name
    shutil.rmtree(folder / SPILL, ignore_errors=True)  # customer rows nobody reads once committed
    final = out_dir / as_of
    if final.exists() and not final.is_symlink():  # a list written before versions existed
        final.rename(folder.parent / "before-versions")
    link = out_dir / f".{as_of}.{folder.name}.link"
    link.unlink(missing_ok=True)
    link.symlink_to(Path(VERSIONS) / as_of / folder.name)  # relative: the outputs can move
    os.replace(link, final)
    return final


def _prune(date_dir: Path, keep: str | None) -> None:
    """Remove the date's versions but `keep`, except those a running job is still writing."""
    for other in date_dir.iterdir():
        if other.name != keep and not _being_written(other.name):
            shutil.rmtree(other, ignore_errors=True)
    if keep is None and not any(date_dir.iterdir()):
        date_dir.rmdir()


def _being_written(version: str) -> bool:
    """True when the version's writer (the pid in its name) is still running."""
    pid = version.rpartition("-")[2]
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def published_version(out_dir: Path, as_of: str) -> str | None:
    """The version `risk_lists/<date>` points at (None without a link)."""
    final = out_dir / as_of
    return Path(os.readlink(final)).name if final.is_symlink() else None


def reconcile(out_dir: Path, url: str) -> list[str]:
    """Swap forward the link of every date whose committed run names a version the files do not
    show yet (a run killed between its commit and its publish), and remove version folders no
    committed run names (runs killed before their commit). Returns the dates repaired."""
    engine = make_engine(url)
    runs = []
    try:
        if sa.inspect(engine).has_table(RUNS_TABLE):
            with engine.connect() as connection:
                runs = connection.execute(sa.text(f"SELECT as_of, meta FROM {RUNS_TABLE}")).all()
    finally:
        engine.dispose()
    committed = {str(as_of): json.loads(raw).get("files_version") for as_of, raw in runs}
    repaired = []
    versions = out_dir / VERSIONS
    for date_dir in sorted(versions.iterdir()) if versions.is_dir() else []:
        version = committed.get(date_dir.name)
        if version is None or not (date_dir / version).is_dir():
            _prune(date_dir, keep=published_version(out_dir, date_dir.name))  # nothing newer was committed
            continue
        if published_version(out_dir, date_dir.name) != version:
            _point(date_dir / version)
            repaired.append(date_dir.name)
        _prune(date_dir, keep=version)
    return repaired
