"""Feature-stage jobs: read and validate the tables (writing rejects), build features and labels."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from churn.config import AppConfig
from features.feature_run import FeatureRunSummary, run_features
from features.sources import read_bank
from features.validation import ValidatedTables, validate_tables

__all__ = ["FeatureRunSummary", "load_validated", "run_features", "validate_source"]

log = logging.getLogger(__name__)


def load_validated(config: AppConfig, rejects_dir: Path | None = None) -> ValidatedTables:
    """Read the configured source, validate it, and write each table's rejects with reasons.

    Rejects go to `<rejects_dir>/<table>.csv` (every table, header only when nothing was rejected),
    so a run's output always says what was set aside.
    """
    validated = validate_source(read_bank(config.data.source), config)
    rejects_dir = rejects_dir or config.output_path / "rejects"
    rejects_dir.mkdir(parents=True, exist_ok=True)
    for name, rejects in validated.rejects.items():
        rejects.to_csv(rejects_dir / f"{name}.csv", index=False)
    return validated


def validate_source(tables: dict[str, pd.DataFrame], config: AppConfig) -> ValidatedTables:
    """The tables as read, validated by the config's extract date, catalogue and reject share."""
    return validate_tables(
        tables,
        extract_date=pd.Timestamp(config.data.resolved_extract_date()),
        earliest_date=pd.Timestamp(config.data.earliest_date),
        actions=config.action_codes,
        products=tuple(config.products),
        max_reject_share=config.data.max_reject_share,
    )
