"""Tables read from SQL databases (SQLite, and the PostgreSQL server on this machine) give the same features."""

import pandas as pd
import pytest
import sqlalchemy as sa

from features.build import build_features
from features.io import SourceError, read_tables, write_tables_to_database
from features.schema import GLOBAL_TABLES
from features.validation import validate_tables

AS_OF = pd.Timestamp("2026-03-01")


@pytest.fixture(scope="module")
def subset(sample) -> dict[str, pd.DataFrame]:
    """The first 300 customers of the sample and all their rows (tables not split by customer,
    such as `market`, whole)."""
    keep = sample["customers"]["customer_id"].iloc[:300]
    return {
        name: frame
        if name in GLOBAL_TABLES
        else frame[frame["customer_id"].isin(keep)].reset_index(drop=True)
        for name, frame in sample.tables.items()
    }


def _features_from(tables, config, products):
    validated = validate_tables(tables, extract_date="2026-11-22", products=products)
    assert all(count == 0 for count in validated.reject_counts.values()), validated.reject_counts
    return build_features(validated.tables, AS_OF, config.features, products)


@pytest.mark.postgres
def test_read_tables__postgresql_round_trip_gives_identical_features(subset, postgres_url, config, products):
    write_tables_to_database(subset, postgres_url)
    from_db = read_tables(postgres_url)
    assert {name: len(frame) for name, frame in from_db.items()} == {
        name: len(frame) for name, frame in subset.items()
    }
    pd.testing.assert_frame_equal(
        _features_from(from_db, config, products), _features_from(subset, config, products)
    )


def test_read_tables__sqlite_round_trip_gives_identical_features(subset, tmp_path, config, products):
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    write_tables_to_database(subset, url)
    pd.testing.assert_frame_equal(
        _features_from(read_tables(url), config, products), _features_from(subset, config, products)
    )


def test_read_tables__database_without_the_tables_names_the_missing_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    sa.create_engine(url).dispose()
    with pytest.raises(SourceError, match="customers: table not found"):
        read_tables(url)


def test_read_tables__unreachable_database_is_a_clear_error():
    with pytest.raises(SourceError, match="cannot read database"):
        read_tables("postgresql+psycopg://nobody@127.0.0.1:1/none")
