"""Reads and writes the tables the daily job and the API share (`serving.tables` defines them):
the stored customers the API serves, contact history and outcomes, the day's list, the request logs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from serving.tables import (
    CONTEXT_TABLE,
    FEATURES_TABLE,
    LIST_TABLE,
    LOG_TABLES,
    RUNS_TABLE,
    add_missing_columns,
    as_log_row,
    contact_history,
    insert_new,
    make_engine,
    metadata,
)

_CONTEXT_PREFIX = "context__"  # context columns in the joined read, apart from features of the same name


class OutcomeConflict(ValueError):
    """The event id was already recorded with different content."""


@dataclass(frozen=True)
class Outcome:
    event_id: str
    customer_id: int
    contacted_at: pd.Timestamp  # naive UTC
    channel: str | None
    action: str | None
    reached: bool
    offer_accepted: bool | None
    customer_status: str

    def payload_hash(self) -> str:
        fields = {k: (str(v) if v is not None else None) for k, v in self.__dict__.items()}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class ServingStore:
    """Reads and writes the shared tables; one engine (connection pool) per process."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)
        add_missing_columns(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    def has_features(self) -> bool:
        return sa.inspect(self.engine).has_table(FEATURES_TABLE)

    def feature_columns(self) -> list[str]:
        return [c["name"] for c in sa.inspect(self.engine).get_columns(FEATURES_TABLE)]

    # -- lookups for /score --------------------------------------------------------------------
    def customer_chunks(self, rows: int) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Every stored feature row with its context row, indexed by customer id, `rows` customers
        at a time, from one query (one snapshot of both tables). A customer without a context row
        gets empty context, `do_not_contact` False, as before the context table existed.

        In chunks so that a server loading a bank of a million customers beside its requests never
        holds the interpreter for long: converting rows to a frame holds it for the whole frame."""
        quote = self.engine.dialect.identifier_preparer.quote
        context = [
            c["name"]
            for c in sa.inspect(self.engine).get_columns(CONTEXT_TABLE)
            if c["name"] != "customer_id"
        ]
        aliased = [f"{_CONTEXT_PREFIX}{name}" for name in context]
        renamed = ", ".join(
            f"c.{quote(name)} AS {quote(alias)}" for name, alias in zip(context, aliased, strict=True)
        )
        query = (
            f"SELECT f.*{', ' if renamed else ''}{renamed} "
            f"FROM {FEATURES_TABLE} f LEFT JOIN {CONTEXT_TABLE} c ON c.customer_id = f.customer_id"
        )
        # On PostgreSQL the streaming cursor keeps its read transaction open for the whole reload
        # (seconds to tens of seconds for a large bank), so the daily job's replacement of these
        # tables waits for it to finish: the reload reads one snapshot, never half a day's rows.
        with self.engine.connect().execution_options(stream_results=True) as connection:
            for chunk in pd.read_sql(sa.text(query), connection, chunksize=rows):
                index = pd.Index(chunk["customer_id"], name="customer_id")
                features = [name for name in chunk.columns if not name.startswith(_CONTEXT_PREFIX)]
                rows_features = (
                    chunk[features].set_index("customer_id").drop(columns=["as_of"], errors="ignore")
                )
                rows_context = chunk[aliased].set_axis(context, axis=1).set_axis(index, axis=0)
                # True only where set: 1 or True, by driver; missing (no context row) is False
                rows_context["do_not_contact"] = rows_context["do_not_contact"].eq(True)
                yield rows_features, rows_context

    def contacts(
        self, ids: Sequence[int], window: tuple[pd.Timestamp, pd.Timestamp]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contacts (bank's and recorded through the API) of these customers, as the arrays
        `policy.contact_history_arrays` reads: customer ids, times (datetime64), control records.

        Only contacts dated inside `window` (earliest, latest) are read: a row written with an
        impossible date by another door must not break scoring (the daily job reports it)."""
        if not ids:
            return (
                np.array([], dtype=np.int64),
                np.array([], dtype="datetime64[ns]"),
                np.array([], dtype=bool),
            )
        with self.engine.connect() as connection:
            found = connection.execute(
                sa.select(
                    contact_history.c.customer_id,
                    contact_history.c.contacted_at,
                    contact_history.c.control_group,
                ).where(contact_history.c.customer_id.in_(ids), _inside(window))
            ).all()
        return (
            np.array([r[0] for r in found], dtype=np.int64),
            np.array([r[1] for r in found], dtype="datetime64[ns]"),
            np.array([bool(r[2]) for r in found], dtype=bool),
        )

    def daily_run_marker(self) -> str | None:
        """Changes whenever the daily job writes new feature rows (its run's creation time)."""
        if not sa.inspect(self.engine).has_table(RUNS_TABLE):
            return None
        with self.engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT MAX(created_at) FROM {RUNS_TABLE}")).scalar()

    def features_as_of(self) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT MAX(as_of) FROM {FEATURES_TABLE}")).scalar()

    # -- contact outcomes ----------------------------------------------------------------------
    def record_outcome(self, outcome: Outcome, now: pd.Timestamp) -> bool:
        """Insert the outcome; True if new, False if this event id was already recorded the same way.

        Raises:
            OutcomeConflict: the event id exists with different content.
        """
        digest = outcome.payload_hash()
        row = {
            "event_id": outcome.event_id,
            "customer_id": outcome.customer_id,
            "contacted_at": outcome.contacted_at.to_pydatetime(),
            "source": "api",
            "channel": outcome.channel,
            "action": outcome.action,
            "control_group": False,
            "reached": outcome.reached,
            "offer_accepted": outcome.offer_accepted,
            "customer_status": outcome.customer_status,
            "recorded_at": now.to_pydatetime(),
            "payload_hash": digest,
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(contact_history.insert().values(**row))
            return True
        except sa.exc.IntegrityError:
            with self.engine.connect() as connection:
                existing = connection.execute(
                    sa.select(contact_history.c.payload_hash).where(
                        contact_history.c.event_id == outcome.event_id
                    )
                ).scalar()
            if existing != digest:
                raise OutcomeConflict(
                    f"event_id: {outcome.event_id!r} was already recorded with different content"
                ) from None
            return False

    # -- the stored daily list -----------------------------------------------------------------
    def latest_list_date(self) -> str | None:
        if not sa.inspect(self.engine).has_table(RUNS_TABLE):
            return None
        with self.engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT MAX(as_of) FROM {RUNS_TABLE}")).scalar()

    def risk_list(
        self, as_of: str, filters: dict[str, Any], contacted_only: bool, limit: int, offset: int
    ) -> tuple[int, pd.DataFrame, dict[str, Any] | None]:
        """(matching rows in all, this page, the run record) for one date's list."""
        if not sa.inspect(self.engine).has_table(LIST_TABLE):
            return 0, pd.DataFrame(), None
        table = sa.Table(LIST_TABLE, sa.MetaData(), autoload_with=self.engine)
        where = [table.c.as_of == as_of, table.c.status == "scored"]
        if contacted_only:
            where.append(table.c.contact == sa.true())
        for column, value in filters.items():
            if value is not None:
                where.append(table.c[column] == value)
        order = (
            [table.c.list_rank]
            if contacted_only
            else [table.c.expected_saving.desc().nulls_last(), table.c.customer_id]
        )
        with self.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
            page = pd.read_sql(
                sa.select(table).where(*where).order_by(*order).limit(limit).offset(offset), connection
            )
            run = connection.execute(
                sa.text(f"SELECT meta FROM {RUNS_TABLE} WHERE as_of = :as_of"), {"as_of": as_of}
            ).scalar()
        return int(total or 0), page, json.loads(run) if run else None

    # -- the request logs -----------------------------------------------------------------------
    def append_logs(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Insert prediction-log and access-log rows in one transaction; a row whose `entry_id`
        is already there (a journal replayed after a crash) is skipped."""
        with self.engine.begin() as connection:
            for name, batch in rows.items():
                if batch:
                    connection.execute(
                        insert_new(connection, LOG_TABLES[name]), [as_log_row(r) for r in batch]
                    )


def _inside(window: tuple[pd.Timestamp, pd.Timestamp]) -> Any:
    earliest, latest = window
    return contact_history.c.contacted_at.between(earliest.to_pydatetime(), latest.to_pydatetime())


def contact_window(earliest_date: Any, tolerance_minutes: float, now: pd.Timestamp | None = None):
    """The dates a contact may carry: from `earliest_date` to now plus a tolerance for clock skew
    (naive UTC timestamps)."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else now
    return pd.Timestamp(earliest_date), now + pd.Timedelta(minutes=tolerance_minutes)


def api_contacts(url: str, window: tuple[pd.Timestamp, pd.Timestamp]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contacts recorded through the API (for the daily job's contact policy), and the rows whose
    date lies outside `window` (earliest, latest): another door may have written them, and
    the job rejects them with their reason instead of failing on them.

    Returns:
        (customer_id, ts, control_group of the usable rows; event_id, contacted_at as text and
        reason of the rejected ones).
    """
    engine = make_engine(url)
    rejected = pd.DataFrame({"event_id": [], "contacted_at": [], "reason": []})
    try:
        if not sa.inspect(engine).has_table(contact_history.name):
            return pd.DataFrame({"customer_id": [], "ts": [], "control_group": []}), rejected
        recorded = contact_history.c.source == "api"
        with engine.connect() as connection:
            usable = _read_contacts(connection, recorded & _inside(window))
            outside = connection.execute(
                sa.select(
                    contact_history.c.event_id,
                    sa.cast(contact_history.c.contacted_at, sa.String).label("contacted_at"),
                ).where(recorded, ~_inside(window))
            ).all()
    finally:
        engine.dispose()
    earliest, latest = window
    if outside:
        rejected = pd.DataFrame(outside, columns=["event_id", "contacted_at"])
        rejected["reason"] = (
            f"contacted_at: outside {earliest:%Y-%m-%d} .. {latest:%Y-%m-%d %H:%M} (UTC): not counted"
        )
    return usable, rejected


def _read_contacts(connection: sa.Connection, condition: Any) -> pd.DataFrame:
    """Contact-history rows matching `condition` as the contact policy reads them."""
    result = connection.execute(
        sa.select(
            contact_history.c.customer_id,
            contact_history.c.contacted_at.label("ts"),
            contact_history.c.control_group,
        ).where(condition)
    )
    contacts = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    contacts["ts"] = pd.to_datetime(contacts["ts"])
    contacts["control_group"] = contacts["control_group"].astype(bool)
    return contacts
