"""The database tables the daily job and the API share (SQLite by default, PostgreSQL by URL):
their names and definitions, and the engine that opens them. `serving.store` reads and writes them.

Written by the daily risk-list job (pandas, replaced whole in one transaction):
    risk_list, risk_list_runs     the day's list and its run record, keyed by as-of date
    trigger_list                  the day's trigger lists (a maturing deposit, a stopped salary, ...)
    customer_features             the latest feature rows per customer (what /score looks up)
    customer_context              do-not-contact flag, branch, segment, region (what the policy needs)

Written row by row (by `serving.store`; the daily job replaces the bank's own contacts):
    contact_history               contacts: the bank's (copied by the daily job, source 'bank') and the
                                  outcomes CRM systems record through the API (source 'api')
    prediction_log                every scored request: model version, pseudonymised id, features
                                  (quasi-identifiers withheld), outputs; read by monitoring
    access_log                    who read whom: API key name, endpoint, pseudonymised id, time
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

LIST_TABLE = "risk_list"
RUNS_TABLE = "risk_list_runs"
TRIGGERS_TABLE = "trigger_list"  # the day's trigger lists, keyed by as-of date
FEATURES_TABLE = "customer_features"
CONTEXT_TABLE = "customer_context"
CONTEXT_COLUMNS = ["do_not_contact", "branch_id", "segment", "region", "join_date"]

metadata = sa.MetaData()
contact_history = sa.Table(
    "contact_history",
    metadata,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("contacted_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(8), nullable=False),  # 'bank' or 'api'
    sa.Column("channel", sa.String(32)),
    sa.Column("action", sa.String(64)),
    sa.Column("control_group", sa.Boolean, nullable=False),
    sa.Column("reached", sa.Boolean),
    sa.Column("offer_accepted", sa.Boolean),
    sa.Column("customer_status", sa.String(16)),  # stayed, left, unknown
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("payload_hash", sa.String(64)),
)
prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("customer_key", sa.String(64)),  # keyed hash of the customer id, never the id
    sa.Column("churn_probability", sa.Float, nullable=False),
    sa.Column("risk_tier", sa.String(8), nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON
    sa.Column("outputs", sa.Text, nullable=False),  # JSON
    sa.Column("latency_ms", sa.Float),
    sa.Column("entry_id", sa.String(32), unique=True),  # written once, even when a journal is replayed
)
access_log = sa.Table(
    "access_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime, nullable=False, index=True),
    sa.Column("key_name", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(32), nullable=False),
    sa.Column("customer_key", sa.String(64), nullable=False, index=True),  # keyed hash, never the id
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("entry_id", sa.String(32), unique=True),
)
LOG_TABLES = {prediction_log.name: prediction_log, access_log.name: access_log}


def make_engine(url: str) -> sa.Engine:
    """An engine for the shared tables. SQLite files run in WAL mode: readers (the API's lookups)
    never wait for a writer's commit (the prediction log, the daily job), and commits do not
    fsync every time."""
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite" and url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        sa.event.listen(engine, "connect", _sqlite_wal)
    return engine


def add_missing_columns(engine: sa.Engine) -> None:
    """Columns added to the shared tables after a database was created (nullable ones only), so
    an existing database keeps working: `entry_id` of the request logs."""
    inspector = sa.inspect(engine)
    with engine.begin() as connection:
        for table in (prediction_log, access_log):
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(engine.dialect)
                    connection.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
                    if column.unique:
                        connection.execute(
                            sa.text(
                                f"CREATE UNIQUE INDEX ix_{table.name}_{column.name} ON {table.name} ({column.name})"
                            )
                        )


def insert_new(connection: sa.Connection, table: sa.Table) -> Any:
    """INSERT that skips rows whose unique `entry_id` exists (SQLite and PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=["entry_id"])


def as_log_row(row: dict[str, Any]) -> dict[str, Any]:
    """A log row as inserted: with its entry id, and a time replayed from the journal as a time."""
    logged_at = row.get("logged_at")
    row = {"entry_id": uuid.uuid4().hex} | row
    if isinstance(logged_at, str):
        row["logged_at"] = dt.datetime.fromisoformat(logged_at)
    return row


def _sqlite_wal(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
