"""Appending a frame to a database table by the fastest bulk path the backend offers: COPY on
PostgreSQL (psycopg 3), pandas' batched INSERTs elsewhere (SQLite, MySQL/MariaDB)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa


def write_rows(
    frame: pd.DataFrame,
    name: str,
    connection: sa.Connection,
    if_exists: str = "append",
    dtype: dict[str, Any] | None = None,
    chunksize: int = 20_000,
) -> None:
    """`frame.to_sql(name, connection, if_exists=..., index=False)` (the table created when it is
    missing, with pandas' column types or `dtype`), the rows sent by COPY on PostgreSQL."""
    method = _copy if connection.dialect.name == "postgresql" else None
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


__all__ = ["write_rows"]
