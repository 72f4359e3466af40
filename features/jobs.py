"""Feature-stage jobs: read and validate the tables (writing rejects), build features and labels."""

from __future__ import annotations

import json
import logging
import time
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
            f"took                  {self.seconds:.1f} s",
        ]


def run_features(config: AppConfig, as_of: pd.Timestamp | None = None) -> FeatureRunSummary:
    """Validate the source, then build and write features and labels for one as-of date.

    Args:
        config: the validated configuration (`engine.kind` picks pandas here or a Dask cluster).
        as_of: the snapshot date; the latest month whose labels the data can confirm when None.
    """
    if config.engine.kind == "dask":
        from churn.cluster import dask_client
        from features.distributed import run_features_dask

        with dask_client(config.engine) as client:
            return run_features_dask(config, client, as_of)
    from features.build import build_features
    from features.labels import build_labels, last_confirmable_as_of

    started = time.perf_counter()
    validated = load_validated(config)
    products = tuple(config.products)
    as_of = (
        pd.Timestamp(as_of) if as_of is not None else last_confirmable_as_of(validated.tables, config.labels)
    )
    features = build_features(validated.tables, as_of, config.features, products)
    labels = build_labels(validated.tables, as_of, config.labels, products)
    out = config.output_path / "features"
    out.mkdir(parents=True, exist_ok=True)
    features_path = out / f"features_{as_of:%Y-%m-%d}.parquet"
    labels_path = out / f"labels_{as_of:%Y-%m-%d}.parquet"
    features.to_parquet(features_path)
    labels.to_parquet(labels_path)
    summary = FeatureRunSummary(
        as_of=as_of,
        customers=len(features),
        labelled=len(labels),
        churn_rate=float(labels["churn"].mean()) if len(labels) else 0.0,
        feature_count=features.shape[1],
        next_product_rate=float((labels["next_product"] != "none").mean()) if len(labels) else 0.0,
        rejects=validated.reject_counts,
        seconds=time.perf_counter() - started,
        features_path=features_path,
        labels_path=labels_path,
    )
    write_summary(summary, out)
    return summary


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
            },
            indent=2,
        )
    )
