"""The bulk write path (`features.bulk.write_rows`): what it stores reads back exactly as rows
written by pandas' own `to_sql` through SQLAlchemy, on SQLite (driver executemany) and on
PostgreSQL (COPY), for every kind of column the daily job writes."""

import numpy as np
import pandas as pd
import sqlalchemy as sa

from features.bulk import write_rows


def _frame(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows, dtype=np.int64),
            "score": rng.normal(size=rows),
            "contact": rng.random(rows) < 0.5,
            "count": pd.array(np.where(rng.random(rows) < 0.2, None, 3), dtype="Int64"),
            "segment": pd.Categorical(rng.choice(["mass", "affluent", None], rows)),
            "action": rng.choice(["rate_offer", None], rows),
            "at": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(rows) * 1_500, unit="ms"),
            "at_utc": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="h"),
        }
    )
    frame.loc[3, "at"] = pd.NaT
    frame.loc[[5, 6], "score"] = np.nan
    return frame


def _round_trip(url: str, write) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            write(_frame(), "t", connection)  # creates the table
            write(_frame().iloc[:7], "t", connection)  # appends to it
            write(_frame().iloc[:0], "t", connection)  # a partition without rows
        return pd.read_sql("SELECT * FROM t", engine)
    finally:
        engine.dispose()


def _pandas(frame, name, connection):
    frame.to_sql(name, connection, index=False, if_exists="append")


def _column_types(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row[1:3]) for row in connection.execute(sa.text("PRAGMA table_info(t)"))]
    finally:
        engine.dispose()


def test_write_rows__sqlite_stores_what_pandas_to_sql_stores(tmp_path):
    fast = _round_trip(f"sqlite:///{tmp_path / 'fast.db'}", write_rows)
    plain = _round_trip(f"sqlite:///{tmp_path / 'plain.db'}", _pandas)
    types = _column_types(f"sqlite:///{tmp_path / 'fast.db'}")
    assert types == _column_types(f"sqlite:///{tmp_path / 'plain.db'}")
    assert ("at", "DATETIME") in types and ("at_utc", "TIMESTAMP") in types  # created from the frame's types
    assert len(fast) == 507
    pd.testing.assert_frame_equal(fast, plain)
    assert fast.loc[0, "at"] == "2026-01-01 00:00:00.000000"  # as SQLAlchemy's DATETIME writes it
    assert fast["at"].isna().sum() == 2 and fast["score"].isna().sum() == 4  # row 3, rows 5-6: twice


def test_write_rows__postgresql_copy_stores_what_pandas_to_sql_stores(postgres_url):
    fast = _round_trip(postgres_url, write_rows)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE t RENAME TO t_fast"))
    engine.dispose()
    plain = _round_trip(postgres_url, _pandas)
    assert len(fast) == 507
    pd.testing.assert_frame_equal(fast, plain)
