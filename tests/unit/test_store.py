"""The shared tables' engine: SQLite files in WAL mode, so API reads never wait on a commit."""

import sqlalchemy as sa

from serving.tables import make_engine


def test_make_engine__sqlite_file_runs_in_wal_mode_and_reads_past_an_open_write(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'churn.db'}"
    writer, reader = make_engine(url), make_engine(url)
    with writer.begin() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        connection.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        connection.execute(sa.text("INSERT INTO t VALUES (1)"))
    with writer.connect() as connection:
        connection.execute(sa.text("BEGIN EXCLUSIVE"))  # what a commit holds in the default mode
        connection.execute(sa.text("INSERT INTO t VALUES (2)"))
        with reader.connect() as other:
            other.execute(sa.text("PRAGMA busy_timeout = 0"))
            assert other.execute(sa.text("SELECT COUNT(*) FROM t")).scalar() == 1  # the last commit
        connection.rollback()
    writer.dispose()
    reader.dispose()
