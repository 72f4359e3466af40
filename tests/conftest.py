"""Shared fixtures: the default config and the committed sample, validated once per session."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from churn.config import AppConfig, load_config
from features.io import read_tables
from features.validation import ValidatedTables, validate_tables

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def config() -> AppConfig:
    return load_config(environ={})


@pytest.fixture(scope="session")
def products(config: AppConfig) -> tuple[str, ...]:
    return tuple(config.products)


@pytest.fixture(scope="session")
def sample(config: AppConfig) -> ValidatedTables:
    return validate_tables(
        read_tables(SAMPLE), extract_date=pd.Timestamp("2026-11-22"), products=tuple(config.products)
    )


@pytest.fixture()
def postgres_url():
    """A throwaway PostgreSQL database, created for one test and dropped after it."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"churn_test_{uuid.uuid4().hex[:10]}"
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {exc.orig}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
