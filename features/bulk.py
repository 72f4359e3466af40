"""Appending a frame to a database table by the fastest bulk path the backend offers: COPY on
PostgreSQL (psycopg 3), one prepared INSERT run by the driver's `executemany` on SQLite, pandas'
batched INSERTs elsewhere (MySQL/MariaDB)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

# How SQLAlchemy's SQLite DATETIME stores a time (what it reads back): rows written here match.
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def write_rows(
    frame: pd.DataFrame,
    name: str,
    connection: sa.Connection,
    if_exists: str = "append",
    dtype: dict[str, Any] | None = None,
    chunksize: int = 20_000,
) -> None:
    """`frame.to_sql(name, connection, if_exists=..., index=False)` (the table created when it is
    missing, with pandas' column types or `dtype`), the rows sent by COPY on PostgreSQL and by the
    driver's `executemany` on SQLite."""
    method = {"postgresql": _copy, "sqlite": _sqlite_many}.get(connection.dialect.name)
    frame.to_sql(
        name, connection, if_exists=if_exists, index=False, dtype=dtype, chunksize=chunksize, method=method
    )


def _copy(table: Any, connection: sa.Connection, keys: list[str], data_iter: Iterable[tuple]) -> int:
    """pandas' `method=` for PostgreSQL: the rows (missing values already None) through COPY."""
    from psycopg import sql

    target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        target, sql.SQL(", ").join(sql.Identifier(k) for k in keys)
    )
    rows = 0
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in data_iter:
            copy.write_row(row)
            rows += 1
    return rows


def _sqlite_many(table: Any, connection: sa.Connection, keys: list[str], data_iter: Iterable[tuple]) -> int:
    """pandas' `method=` for SQLite: one INSERT statement run by sqlite3's `executemany` over the
    rows as pandas hands them over (missing values None, numbers and flags as Python objects),
    instead of a dict per row through SQLAlchemy; about 4x faster on a wide feature table."""
    quote = connection.dialect.identifier_preparer.quote
    target = f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)
    statement = (
        f"INSERT INTO {target} ({', '.join(quote(k) for k in keys)}) VALUES ({', '.join('?' * len(keys))})"
    )
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.executemany(statement, _sqlite_values(table.frame, keys, data_iter))
        return cursor.rowcount
    finally:
        cursor.close()


def _sqlite_values(
    frame: pd.DataFrame, keys: list[str], data_iter: Iterable[tuple]
) -> Iterator[tuple] | Iterable:
    """The rows with times as SQLAlchemy writes them (sqlite3's own adapter drops zero microseconds
    and keeps a time zone, so the stored text would differ from rows written through SQLAlchemy)."""
    times = [i for i, key in enumerate(keys) if frame[key].dtype.kind == "M"]
    if not times:
        return data_iter
    return (_with_times(row, times) for row in data_iter)


def _with_times(row: tuple, positions: list[int]) -> tuple:
    values = list(row)
    for i in positions:
        value = values[i]
        if isinstance(value, dt.datetime):
            values[i] = value.strftime(SQLITE_DATETIME)
    return tuple(values)


__all__ = ["write_rows"]
