"""The feature stage's job: features and labels for one as-of date, partition by partition.

`run_features` opens the bank's partitions (`features.partition_jobs.open_partitions`), builds
each partition's features and labels on the configured engine (`feature_partition`), writes them
as parts of one Parquet dataset, checks the reject shares on the totals before anything is
published, and writes the run's summary beside the features.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churn.config import AppConfig
from features.memory import release_memory
from features.partition_jobs import Partitions, check_reject_shares, open_partitions, validated_partition


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


def write_part(frame: pd.DataFrame, dataset: Path, k: int) -> None:
    """Partition k's rows as `<dataset>/part-<k>.parquet` (a dataset pandas reads as one frame)."""
    frame.to_parquet(dataset / f"part-{k:05d}.parquet")


def feature_partition(
    k: int, parts: Partitions, as_of: pd.Timestamp, config: AppConfig, staging: dict
) -> dict:
    """Partition k's features and labels at `as_of`, written as parts; returns its counts."""
    from features.build import build_features
    from features.labels import build_labels, churn_dates

    seconds: dict[str, float] = {}
    tables = validated_partition(parts, k, seconds, keep_event_ids=False).tables
    mark = time.perf_counter()
    products = tuple(config.products)
    features = build_features(tables, as_of, config.features, products)
    dates = churn_dates(tables, config.labels, parts.months)
    labels = build_labels(tables, as_of, config.labels, products, churn_date=dates)
    del tables
    release_memory()
    seconds["features"] = time.perf_counter() - mark
    mark = time.perf_counter()
    write_part(features, staging["features"], k)
    write_part(labels, staging["labels"], k)
    seconds["write"] = time.perf_counter() - mark
    return {
        "seconds": seconds,
        "customers": len(features),
        "labelled": len(labels),
        "churners": int(labels["churn"].sum()),
        "opening": int((labels["next_product"] != "none").sum()),
        "feature_count": features.shape[1],
    }


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def run_features(config: AppConfig, as_of: pd.Timestamp | None = None):
    """Validate the source, then build and write features and labels for one as-of date, partition
    by partition on the configured engine (`features_<date>.parquet/part-<k>.parquet`)."""
    from churn.engine import partition_runner
    from features.labels import confirmable_as_of

    started = time.perf_counter()
    with partition_runner(config) as runner:
        parts = open_partitions(config, runner)
        as_of = (
            pd.Timestamp(as_of) if as_of is not None else confirmable_as_of(parts.months[1], config.labels)
        )
        out = config.output_path / "features"
        out.mkdir(parents=True, exist_ok=True)
        final = {
            "features": out / f"features_{as_of:%Y-%m-%d}.parquet",
            "labels": out / f"labels_{as_of:%Y-%m-%d}.parquet",
        }
        staging = {key: path.with_name(f".{path.name}.writing") for key, path in final.items()}
        for path in staging.values():
            _remove(path)
            path.mkdir()
        counts = runner.map(
            feature_partition, range(parts.count), parts=parts, as_of=as_of, config=config, staging=staging
        )
    rejects = check_reject_shares(parts, config.data.max_reject_share)  # before anything is published
    for key, path in final.items():
        _remove(path)
        staging[key].rename(path)
    labelled = sum(c["labelled"] for c in counts)
    summary = FeatureRunSummary(
        as_of=as_of,
        customers=sum(c["customers"] for c in counts),
        labelled=labelled,
        churn_rate=sum(c["churners"] for c in counts) / labelled if labelled else 0.0,
        feature_count=counts[0]["feature_count"],
        next_product_rate=sum(c["opening"] for c in counts) / labelled if labelled else 0.0,
        rejects=rejects,
        seconds=time.perf_counter() - started,
        features_path=final["features"],
        labels_path=final["labels"],
        partitions=parts.count,
        source=parts.source.describe(),
        stage_seconds={stage: sum(c["seconds"][stage] for c in counts) for stage in counts[0]["seconds"]},
    )
    write_summary(summary, out)
    return summary
