"""Shared fixtures: the default config and the committed sample, validated once per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from churn.config import AppConfig, load_config
from features.io import read_tables
from features.validation import ValidatedTables, validate_tables

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


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
