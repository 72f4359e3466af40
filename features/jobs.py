"""Feature-stage jobs: read and validate the tables (writing rejects), build features and labels."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import AppConfig
from features.io import read_tables
from features.validation import ValidatedTables, validate_tables

log = logging.getLogger(__name__)


def load_validated(config: AppConfig, rejects_dir: Path | None = None) -> ValidatedTables:
    """Read the configured source, validate it, and write each table's rejects with reasons.

    Rejects go to `<rejects_dir>/<table>.csv` (every table, header only when nothing was rejected),
    so a run's output always says what was set aside.
    """
    validated = validate_source(read_tables(config.data.source), config)
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


@dataclass(frozen=True)
class FeatureRunSummary:
    """What `run_features` produced."""

    as_of: pd.Timestamp
    customers: int
    labelled: int
    churn_rate: float
    feature_count: int
    next_product_rate: float
    rejects: dict[str, int]
    seconds: float
    features_path: Path
    labels_path: Path
    partitions: int = 1
    source: str = ""
    stage_seconds: dict[str, float] | None = None  # summed over the partitions

    def lines(self) -> list[str]:
        rejected = ", ".join(f"{k} {v}" for k, v in self.rejects.items() if v) or "none"
        return [
            f"as-of date            {self.as_of:%Y-%m-%d} (latest month whose labels the data confirms)",
            f"active customers      {self.customers}",
            f"labelled customers    {self.labelled} (the rest had already churned)",
            f"churn rate            {self.churn_rate:.2%} within the horizon",
            f"opened a new product  {self.next_product_rate:.2%} within the horizon",
            f"features              {self.feature_count}",
            f"rejected rows         {rejected}",
            f"features written to   {self.features_path}",
            f"labels written to     {self.labels_path}",
            f"read as               {self.source}",
            f"took                  {self.seconds:.1f} s"
            + (
                " (" + ", ".join(f"{stage} {s:.1f} s" for stage, s in self.stage_seconds.items()) + ")"
                if self.stage_seconds
                else ""
            ),
        ]


def run_features(config: AppConfig, as_of: pd.Timestamp | None = None) -> FeatureRunSummary:
    """Validate the source, then build and write features and labels for one as-of date.

    Runs partition by partition on the configured engine (`features.partition_jobs`).

    Args:
        config: the validated configuration.
        as_of: the snapshot date; the latest month whose labels the data can confirm when None.
    """
    from features.partition_jobs import run_features as run

    return run(config, as_of)


def write_summary(summary: FeatureRunSummary, out: Path) -> None:
    """The run's figures as `summary_<date>.json` beside the features."""
    (out / f"summary_{summary.as_of:%Y-%m-%d}.json").write_text(
        json.dumps(
            {
                "as_of": f"{summary.as_of:%Y-%m-%d}",
                "customers": summary.customers,
                "labelled": summary.labelled,
                "churn_rate": summary.churn_rate,
                "feature_count": summary.feature_count,
                "rejects": summary.rejects,
                "partitions": summary.partitions,
            },
            indent=2,
        )
    )
