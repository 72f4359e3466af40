"""The feature stage on the `dask` engine: one task per customer partition.

Each task reads its partition's six tables (`features.partitioned`), validates them, and runs the
same functions as the local engine (`build_features`, `build_labels`, `build_training_set`). The
only facts a partition cannot know alone are the whole bank's first and last month-end; they are
gathered first (`open_partitions`) and passed to every task. Rejected rows are written per
partition, `<rejects>/<table>/part-<k>.csv`, and the reject-share check runs on the totals.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from churn.config import AppConfig
from features.catalog import feature_catalog
from features.partitioned import (
    GLOBAL_FILE,
    MANIFEST,
    bounds,
    is_partitioned,
    partition_tables,
    read_partition,
    read_partition_table,
)
from features.schema import GLOBAL_TABLES, SCHEMAS, TABLE_NAMES
from features.validation import ValidatedTables, check_reject_share, validate_table, validate_tables

LABEL_COLUMNS = ("churn", "churn_date", "next_product")


@dataclass(frozen=True)
class Partitions:
    """A customer-partitioned dataset and what every task needs to read it like the whole bank."""

    root: str
    limits: tuple[int, ...]  # partition k holds customer ids in [limits[k], limits[k + 1])
    extract_date: pd.Timestamp
    earliest_date: pd.Timestamp
    products: tuple[str, ...]
    actions: tuple[str, ...] | None
    rejects_dir: str
    months: tuple[pd.Timestamp, pd.Timestamp]  # first and last month-end of the valid balances
    last_day: pd.Timestamp  # the last day with data: a month-end or a transaction

    @property
    def count(self) -> int:
        return len(self.limits) - 1

    @property
    def divisions(self) -> tuple[int, ...]:
        """Dask divisions of frames indexed by customer id, one partition per customer partition."""
        return (*self.limits[:-1], self.limits[-1] - 1)


def _source_stamp(source: Path) -> float:
    return max((f.stat().st_mtime for f in source.iterdir() if f.is_file()), default=0.0)


def ensure_partitioned(config: AppConfig) -> str:
    """The configured source as a customer-partitioned dataset: the source itself when it is one,
    else a copy partitioned once into `engine.partitioned_dir` (redone when the source changes)."""
    source = config.data.source
    if is_partitioned(source):
        return str(source)
    engine = config.engine
    target = Path(engine.partitioned_dir or config.output_path / "partitioned")
    source_path = Path(source)
    stamp = _source_stamp(source_path) if source_path.is_dir() else 0.0
    manifest = target / MANIFEST
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        if (
            recorded.get("source") == str(source_path.resolve())
            and recorded.get("per_partition") == engine.partition_customers
            and recorded.get("source_mtime") == stamp
        ):
            return str(target)
    shutil.rmtree(target, ignore_errors=True)
    partition_tables(source_path, target, engine.partition_customers)
    # record the resolved source and its files' time, so an unchanged source is not partitioned again
    recorded = json.loads(manifest.read_text()) | {
        "source": str(source_path.resolve()),
        "source_mtime": stamp,
    }
    manifest.write_text(json.dumps(recorded, indent=2) + "\n")
    return str(target)


def _data_range(
    root: str, k: int, extract_date: pd.Timestamp, earliest_date: pd.Timestamp, products: tuple[str, ...]
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp] | None:
    """First and last month-end among partition k's valid balance rows, and its last day with
    data (a month-end or a transaction); None if it has no valid balance row."""
    customers, _ = validate_table(
        read_partition_table(root, "customers", k),
        SCHEMAS["customers"],
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
    )
    balances, _ = validate_table(
        read_partition_table(root, "balances", k),
        SCHEMAS["balances"],
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
        known_customers=pd.Index(customers["customer_id"]),
    )
    if balances.empty:
        return None
    ts = pd.to_datetime(read_partition_table(root, "transactions", k)["ts"], errors="coerce")
    ts = ts[(ts >= earliest_date) & (ts < extract_date.normalize() + pd.Timedelta(days=1))]
    last_day = pd.Series([balances["month_end"].max(), ts.max()]).max().normalize()
    return balances["month_end"].min(), balances["month_end"].max(), last_day


def open_partitions(config: AppConfig, client) -> Partitions:
    """Partition the source if needed, and gather the whole bank's month-end range."""
    root = ensure_partitioned(config)
    limits = tuple(int(b) for b in bounds(root))
    extract_date = pd.Timestamp(config.data.resolved_extract_date())
    earliest_date = pd.Timestamp(config.data.earliest_date)
    products = tuple(config.products)
    count = len(limits) - 1
    ranges = [
        r
        for r in client.gather(
            client.map(
                _data_range,
                [root] * count,
                range(count),
                extract_date=extract_date,
                earliest_date=earliest_date,
                products=products,
            )
        )
        if r is not None
    ]
    if not ranges:
        raise ValueError(f"balances: no valid row in {root}; features need month-end balances")
    rejects_dir = config.output_path / "rejects"
    for name in TABLE_NAMES:
        shutil.rmtree(rejects_dir / name, ignore_errors=True)
        (rejects_dir / name).mkdir(parents=True)
    return Partitions(
        root=root,
        limits=limits,
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
        actions=config.action_codes,
        rejects_dir=str(rejects_dir),
        months=(min(r[0] for r in ranges), max(r[1] for r in ranges)),
        last_day=max(r[2] for r in ranges),
    )


def validated_partition(parts: Partitions, k: int) -> ValidatedTables:
    """Partition k read and validated; its rejects written to `<rejects>/<table>/part-<k>.csv`.

    The share of rejected rows is checked on the whole bank afterwards (`check_reject_shares`).
    """
    validated = validate_tables(
        read_partition(parts.root, k),
        extract_date=parts.extract_date,
        earliest_date=parts.earliest_date,
        products=parts.products,
        actions=parts.actions,
        max_reject_share=1.0,
    )
    for name, rejects in validated.rejects.items():
        rejects.to_csv(Path(parts.rejects_dir) / name / f"part-{k:05d}.csv", index=False)
    return validated


def check_reject_shares(parts: Partitions, max_reject_share: float) -> dict[str, int]:
    """Rejected rows per table over all partitions; raises like the local engine above the share."""
    counts = {}
    for name in TABLE_NAMES:
        if name in GLOBAL_TABLES:  # validated whole by every partition: count it once
            files = sorted((Path(parts.rejects_dir) / name).glob("part-*.csv"))[:1]
            table_files = list((Path(parts.root) / name).glob(GLOBAL_FILE))
        else:
            files = sorted((Path(parts.rejects_dir) / name).glob("part-*.csv"))
            table_files = list((Path(parts.root) / name).glob("bucket=*/*.parquet"))
        rejects = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in table_files)
        check_reject_share(name, rejects, total, max_reject_share)
        counts[name] = len(rejects)
    return counts


def features_meta(config: AppConfig) -> pd.DataFrame:
    """The zero-row frame `build_features` returns, for Dask's metadata."""
    catalog = feature_catalog(config.features, tuple(config.products))
    columns = {}
    for spec in catalog:
        if spec.dtype == "category":
            columns[spec.name] = pd.Categorical([], categories=spec.categories)
        else:
            columns[spec.name] = np.array([], dtype=np.int64 if spec.dtype == "int" else np.float64)
    return pd.DataFrame(columns, index=pd.Index([], dtype=np.int64, name="customer_id"))


def snapshot_meta(config: AppConfig) -> pd.DataFrame:
    return features_meta(config).assign(
        churn=pd.Series([], dtype=np.float64),
        churn_date=pd.Series([], dtype="datetime64[ns]"),
        next_product=pd.Series([], dtype=object),
        labelled=pd.Series([], dtype=bool),
    )


def snapshot_partition(k: int, parts: Partitions, as_of: pd.Timestamp, config: AppConfig) -> pd.DataFrame:
    """Features of partition k's active customers at `as_of`, with their labels where they have
    one (`labelled`; customers who had already churned have features but no label)."""
    from features.build import build_features
    from features.labels import build_labels, churn_dates

    tables = validated_partition(parts, k).tables
    products = tuple(config.products)
    features = build_features(tables, as_of, config.features, products)
    dates = churn_dates(tables, config.labels, parts.months)
    labels = build_labels(tables, as_of, config.labels, products, churn_date=dates)
    frame = features.join(labels, how="left")
    frame["churn"] = frame["churn"].astype(np.float64)
    frame["labelled"] = frame.index.isin(labels.index)
    return frame


def snapshot_frame(parts: Partitions, as_of: pd.Timestamp, config: AppConfig):
    """`snapshot_partition` over every partition, as one Dask dataframe indexed by customer id."""
    import dask.dataframe as dd

    return dd.from_map(
        snapshot_partition,
        range(parts.count),
        parts=parts,
        as_of=pd.Timestamp(as_of),
        config=config,
        meta=snapshot_meta(config),
        divisions=parts.divisions,
        label="snapshot",
    )


def split_snapshot(frame, config: AppConfig):
    """(features, labels) of a snapshot frame, with the local engine's columns and types."""
    names = list(features_meta(config).columns)
    labelled = frame[frame["labelled"]]
    labels = labelled[list(LABEL_COLUMNS)].astype({"churn": np.int64})
    return frame[names], labels


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def write_dataset(frame, path: Path):
    """A lazy write of a Dask dataframe as a Parquet dataset, one file per partition, in order."""
    _remove(path)
    return frame.to_parquet(
        str(path), name_function=lambda i: f"part-{i:05d}.parquet", write_metadata_file=False, compute=False
    )


def run_features_dask(config: AppConfig, client, as_of: pd.Timestamp | None = None):
    """`features.jobs.run_features` on the dask engine: features and labels as Parquet datasets
    (`features_<date>.parquet/part-<k>.parquet`), read back by pandas exactly like the local files."""
    import dask

    from features.jobs import FeatureRunSummary, write_summary
    from features.labels import confirmable_as_of

    started = time.perf_counter()
    parts = open_partitions(config, client)
    as_of = pd.Timestamp(as_of) if as_of is not None else confirmable_as_of(parts.months[1], config.labels)
    frame = snapshot_frame(parts, as_of, config)
    features, labels = split_snapshot(frame, config)
    out = config.output_path / "features"
    out.mkdir(parents=True, exist_ok=True)
    features_path = out / f"features_{as_of:%Y-%m-%d}.parquet"
    labels_path = out / f"labels_{as_of:%Y-%m-%d}.parquet"
    counts = frame.map_partitions(
        lambda f: pd.DataFrame(
            {
                "customers": [len(f)],
                "labelled": [int(f["labelled"].sum())],
                "churners": [float(f.loc[f["labelled"], "churn"].sum())],
                "opening": [int((f.loc[f["labelled"], "next_product"] != "none").sum())],
            }
        ),
        meta={"customers": "i8", "labelled": "i8", "churners": "f8", "opening": "i8"},
    )
    staged = {path: path.with_name(f".{path.name}.writing") for path in (features_path, labels_path)}
    _, _, totals = dask.compute(
        write_dataset(features, staged[features_path]), write_dataset(labels, staged[labels_path]), counts
    )
    rejects = check_reject_shares(parts, config.data.max_reject_share)  # before anything is published
    for final, staging in staged.items():
        _remove(final)
        staging.rename(final)
    totals = totals.sum()
    labelled = int(totals["labelled"])
    summary = FeatureRunSummary(
        as_of=as_of,
        customers=int(totals["customers"]),
        labelled=labelled,
        churn_rate=float(totals["churners"]) / labelled if labelled else 0.0,
        feature_count=len(features.columns),
        next_product_rate=float(totals["opening"]) / labelled if labelled else 0.0,
        rejects=rejects,
        seconds=time.perf_counter() - started,
        features_path=features_path,
        labels_path=labels_path,
    )
    write_summary(summary, out)
    return summary


def labelled_snapshot(config: AppConfig, client) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The latest labelled snapshot, built on the cluster and gathered to the client: what
    promotion judges both models on (`training.promote.evaluation_set` on the local engine)."""
    from features.labels import confirmable_as_of

    parts = open_partitions(config, client)
    as_of = confirmable_as_of(parts.months[1], config.labels)
    frame = snapshot_frame(parts, as_of, config)
    labelled = frame[frame["labelled"]].compute()  # one pass over the partitions
    check_reject_shares(parts, config.data.max_reject_share)
    features, labels = split_snapshot(labelled, config)
    return features, labels, f"{as_of:%Y-%m-%d}"
