"""Retention and erasure: how long what the product writes about customers is kept, and how one
customer's data is removed on request.

What holds customer data (README, Privacy):

| where                                   | by            | kept                                 |
|-----------------------------------------|---------------|--------------------------------------|
| risk_list, trigger_list, list files     | customer id   | `privacy.retention_days.risk_lists`  |
| customer_features, customer_context     | customer id   | the latest run only                  |
| contact_history (recorded outcomes)     | customer id   | `...contact_outcomes`                |
| prediction_log                          | pseudonym     | `...prediction_log`                  |
| access_log                              | pseudonym     | `...access_log`                      |
| rejects/*.csv, features/*.parquet       | customer id   | replaced by every run                |

`expire` applies the retention periods (the daily job calls it); `erase` removes one customer
from all of them and records that it did, by pseudonym, in `erasure_log`.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churn.config import AppConfig
from serving.auth import pseudonymise
from serving.publish import VERSIONS
from serving.tables import (
    CONTEXT_TABLE,
    FEATURES_TABLE,
    LIST_TABLE,
    RUNS_TABLE,
    TRIGGERS_TABLE,
    access_log,
    contact_history,
    make_engine,
    metadata,
    prediction_log,
)

erasure_log = sa.Table(
    "erasure_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("erased_at", sa.DateTime, nullable=False),
    sa.Column("customer_key", sa.String(64), nullable=False, index=True),  # the pseudonym, never the id
    sa.Column("removed", sa.Text, nullable=False),  # JSON: rows or files removed, per place
)


def expire(config: AppConfig, now: pd.Timestamp | None = None) -> dict[str, int]:
    """Delete what is older than its retention period; returns what was removed, per place."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None) if now is None else now
    days = config.privacy.retention_days
    removed: dict[str, int] = {}
    engine = make_engine(config.database_url)
    try:
        with engine.begin() as connection:
            inspector = sa.inspect(connection)
            for table, column, kept in (
                (prediction_log, prediction_log.c.logged_at, days.prediction_log),
                (access_log, access_log.c.logged_at, days.access_log),
            ):
                if inspector.has_table(table.name):
                    cut = (now - pd.Timedelta(days=kept)).to_pydatetime()
                    removed[table.name] = connection.execute(table.delete().where(column < cut)).rowcount
            if inspector.has_table(contact_history.name):
                cut = (now - pd.Timedelta(days=days.contact_outcomes)).to_pydatetime()
                removed["contact_outcomes"] = connection.execute(
                    contact_history.delete().where(
                        contact_history.c.source == "api", contact_history.c.contacted_at < cut
                    )
                ).rowcount
            cut_date = (now - pd.Timedelta(days=days.risk_lists)).date().isoformat()
            old_dates: list[str] = []
            if inspector.has_table(RUNS_TABLE):
                old_dates = [
                    str(d)
                    for (d,) in connection.execute(
                        sa.text(f"SELECT as_of FROM {RUNS_TABLE} WHERE as_of < :cut"), {"cut": cut_date}
                    )
                ]
                for name in (LIST_TABLE, RUNS_TABLE):
                    if inspector.has_table(name):
                        connection.execute(
                            sa.text(f"DELETE FROM {name} WHERE as_of < :cut"), {"cut": cut_date}
                        )
    finally:
        engine.dispose()
    lists = config.output_path / "risk_lists"
    for as_of in sorted(set(old_dates) | {p.name for p in lists.glob("????-??-??") if p.name < cut_date}):
        link = lists / as_of
        if link.is_symlink():
            link.unlink()
        else:
            shutil.rmtree(link, ignore_errors=True)  # a list written before versioned folders
        shutil.rmtree(lists / VERSIONS / as_of, ignore_errors=True)
    removed["risk_lists"] = len(old_dates)
    return removed


def erase(config: AppConfig, customer_id: int, pseudonym_key: str) -> dict[str, int]:
    """Remove one customer (an erasure request) from every list, table, log and file the product
    wrote; returns how many rows were removed per place. The bank's own source tables are the
    bank's to erase: until they are, the next daily run would score the customer again."""
    key = pseudonymise(pseudonym_key, customer_id)
    removed: dict[str, int] = {}
    engine = make_engine(config.database_url)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection, tables=[erasure_log])
            inspector = sa.inspect(connection)
            for name in (LIST_TABLE, TRIGGERS_TABLE, FEATURES_TABLE, CONTEXT_TABLE, contact_history.name):
                if inspector.has_table(name):
                    removed[name] = connection.execute(
                        sa.text(f"DELETE FROM {name} WHERE customer_id = :id"), {"id": customer_id}
                    ).rowcount
            for table in (prediction_log, access_log):
                if inspector.has_table(table.name):
                    removed[table.name] = connection.execute(
                        table.delete().where(table.c.customer_key == key)
                    ).rowcount
            removed |= _erase_files(config.output_path, customer_id)
            connection.execute(
                erasure_log.insert().values(
                    erased_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    customer_key=key,
                    removed=json.dumps(removed),
                )
            )
    finally:
        engine.dispose()
    return removed


def _erase_files(out: Path, customer_id: int) -> dict[str, int]:
    """Rewrite every file of the outputs that holds the customer, without them (each file
    replaced whole, so a reader sees it before or after, never half)."""
    removed = {"list_files": 0, "rejects_files": 0, "feature_files": 0}
    for path in sorted((out / "risk_lists" / VERSIONS).glob("*/*/*")):
        if path.suffix == ".parquet":
            for part in _parquet_files(path):
                removed["list_files"] += _rewrite_parquet(part, customer_id, None)
        elif path.suffix == ".csv":
            removed["list_files"] += _rewrite_csv(path, customer_id)
    for path in sorted((out / "rejects").glob("**/*.csv")):
        removed["rejects_files"] += _rewrite_csv(path, customer_id)
    for path in sorted((out / "features").glob("*.parquet")):
        for part in _parquet_files(path):
            removed["feature_files"] += _rewrite_parquet(part, customer_id, None)
    return removed


def _parquet_files(path: Path) -> list[Path]:
    """A Parquet file, or the parts of a Parquet dataset written partition by partition."""
    return [path] if path.is_file() else sorted(path.glob("part-*.parquet"))


def _rewrite_parquet(path: Path, customer_id: int, id_column: str | None) -> int:
    """`id_column`: the column holding the id; None when it is the (named) index."""
    frame = pd.read_parquet(path)
    if id_column is None and "customer_id" in frame.columns:
        id_column = "customer_id"
    if id_column is not None:
        ids = frame[id_column].to_numpy()
    elif "customer_id" in frame.index.names:
        ids = frame.index.get_level_values("customer_id").to_numpy()
    else:
        return 0
    keep = ids != customer_id
    if keep.all():
        return 0
    temporary = path.with_name(f".{path.name}.erasing")
    frame[keep].to_parquet(temporary, index=id_column is None)
    temporary.replace(path)
    return 1


def _rewrite_csv(path: Path, customer_id: int) -> int:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "customer_id" not in frame.columns:
        return 0
    keep = frame["customer_id"] != str(customer_id)
    if keep.all():
        return 0
    temporary = path.with_name(f".{path.name}.erasing")
    frame[keep].to_csv(temporary, index=False)
    temporary.replace(path)
    return 1


def describe(removed: dict[str, Any]) -> str:
    return ", ".join(f"{place} {count}" for place, count in removed.items())
