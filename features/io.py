"""Read the raw tables from a directory (Parquet or CSV) or a SQL database, and write them to one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.schema import SCHEMAS, TABLE_NAMES


class SourceError(ValueError):
    """A data source that cannot be read; the message names the table and the file or URL."""


def is_database_url(source: str) -> bool:
    """True for a SQLAlchemy URL such as `sqlite:///bank.db` or `postgresql+psycopg://...`."""
    return "://" in source


# CSV cells are read as text (validation converts types and reports what does not convert); only
# an empty cell is missing. The dask engine's `partition_tables` reads CSV the same way.
CSV_OPTIONS = {"dtype": str, "keep_default_na": False, "na_values": [""]}


def empty_table(name: str) -> pd.DataFrame:
    """An optional table the source does not have: its columns, no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in SCHEMAS[name].column_names})


def _read_file(name: str, directory: Path) -> pd.DataFrame:
    parquet, csv = directory / f"{name}.parquet", directory / f"{name}.csv"
    if SCHEMAS[name].optional and not (parquet.exists() or csv.exists()):
        return empty_table(name)
    try:
        if parquet.exists():
            import pyarrow.parquet as pq

            # each Arrow buffer freed once converted, each column its own block: about a tenth
            # less peak memory and time than pd.read_parquet on a large table, the same frame
            return pq.read_table(parquet).to_pandas(self_destruct=True, split_blocks=True)
        if csv.exists():
            return pd.read_csv(csv, **CSV_OPTIONS)
    except Exception as exc:  # any reader failure is an unreadable file to the user
        raise SourceError(f"{name}: cannot read {parquet if parquet.exists() else csv}: {exc}") from exc
    raise SourceError(f"{name}: no {name}.parquet or {name}.csv in {directory}")


def read_tables(source: str | Path) -> dict[str, pd.DataFrame]:
    """Read the six raw tables.

    Args:
        source: a directory holding `<table>.parquet` or `<table>.csv` files, or a SQLAlchemy URL
            whose database holds tables of those names (a customer-partitioned dataset is read by
            `features.sources`).

    Returns:
        The tables as read, keyed by name; not yet validated.

    Raises:
        SourceError: a missing directory, file or table, or one that cannot be read.
    """
    source = str(source)
    if is_database_url(source):
        return _read_database(source)
    directory = Path(source)
    if not directory.is_dir():
        raise SourceError(f"data source {directory} is not a directory (nor a database URL)")
    return {name: _read_file(name, directory) for name in TABLE_NAMES}


def _read_database(url: str) -> dict[str, pd.DataFrame]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            present = set(sa.inspect(connection).get_table_names())
            missing = [name for name in TABLE_NAMES if name not in present and not SCHEMAS[name].optional]
            if missing:
                raise SourceError(f"{missing[0]}: table not found in database {where}")
            return {
                name: pd.read_sql_table(name, connection) if name in present else empty_table(name)
                for name in TABLE_NAMES
            }
    except sa.exc.SQLAlchemyError as exc:
        # first line only: driver errors can carry whole statements and their parameters
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise SourceError(f"cannot read database {where}: {type(exc).__name__}: {detail}") from None
    finally:
        engine.dispose()


def write_tables_to_database(tables: dict[str, pd.DataFrame], url: str, chunksize: int = 50_000) -> None:
    """Write the tables to a database, replacing tables of the same names.

    Column types follow the contracts so a round trip reads back what was written; on PostgreSQL
    the rows go by COPY.
    """
    import sqlalchemy as sa

    from features.bulk import write_rows

    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for name in TABLE_NAMES:
                frame = tables[name]
                dtypes = {
                    column.name: sa.DateTime() if column.kind in ("date", "timestamp") else None
                    for column in SCHEMAS[name].columns
                }
                write_rows(
                    frame,
                    name,
                    connection,
                    if_exists="replace",
                    dtype={k: v for k, v in dtypes.items() if v is not None},
                    chunksize=chunksize,
                )
    finally:
        engine.dispose()
