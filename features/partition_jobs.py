"""The feature stage as per-partition work plus a combine step, for every engine.

A job opens the bank's partitions (`open_partitions`), runs its work on each through the runner
that `churn.engine.partition_runner` chose (in this process, or as Dask tasks), and combines the
small results. Each partition is read and validated by `validated_partition`, which runs the same
functions as on a whole bank. The only facts a partition cannot know alone are the whole bank's
first and last month-end and its last day with data; they are gathered first and passed to every
partition. Rejected rows are written per partition and joined into `<rejects>/<table>.csv` by
`check_reject_shares`, which checks the share of rejects on the totals, as validation of a whole
bank does.

What a partition cannot see: a duplicate key (a transaction id, say) whose two rows belong to
customers of different partitions is not found.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from churn.config import AppConfig
from features.memory import bound_process_memory, release_memory
from features.partitioned import GLOBAL_FILE, MANIFEST, is_partitioned, partition_tables
from features.schema import GLOBAL_TABLES, SCHEMAS, TABLE_NAMES
from features.sources import DatasetParts, PartSource, RangeParts, WholeParts, open_source
from features.validation import ValidatedTables, check_reject_share, validate_table, validate_tables

PARTS_DIR = ".parts"  # <rejects>/.parts/<table>/part-<k>.csv until the job combines them


@dataclass(frozen=True)
class Partitions:
    """A bank's customer partitions and what every partition needs to be read like the whole bank."""

    source: PartSource
    extract_date: pd.Timestamp
    earliest_date: pd.Timestamp
    products: tuple[str, ...]
    actions: tuple[str, ...] | None
    rejects_dir: str
    months: tuple[pd.Timestamp, pd.Timestamp]  # first and last month-end of the valid balances
    last_day: pd.Timestamp  # the last day with data: a month-end or a transaction

    @property
    def count(self) -> int:
        return self.source.count

    @property
    def limits(self) -> tuple[int, ...]:
        return self.source.limits

    @property
    def divisions(self) -> tuple[int, ...]:
        """Dask divisions of frames indexed by customer id, one partition per customer partition."""
        return (*self.limits[:-1], self.limits[-1] - 1)


def _source_stamp(source: Path) -> float:
    return max((f.stat().st_mtime for f in source.iterdir() if f.is_file()), default=0.0)


def ensure_partitioned(config: AppConfig) -> str:
    """The configured source as a customer-partitioned dataset, for the dask engine: the source
    itself when it is one, else a copy partitioned once into `engine.partitioned_dir` (redone
    when the source changes)."""
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


def partition_source(config: AppConfig, kind: str) -> PartSource:
    """The partitions an engine reads: the dask engine a partitioned dataset (made once from a
    flat source), the local engine the source as it is (`features.sources.open_source`)."""
    if kind == "dask":
        return DatasetParts(ensure_partitioned(config))
    return open_source(config.data.source, config.engine.partition_customers)


def _data_range(
    k: int,
    source: PartSource,
    extract_date: pd.Timestamp,
    earliest_date: pd.Timestamp,
    products: tuple[str, ...],
    read_times: bool = True,
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp] | None:
    """First and last month-end among partition k's valid balance rows, and its last day with
    data (a month-end or a transaction; only the month-end when `read_times` is false); None if
    it has no valid balance row."""
    bound_process_memory()
    customers, _ = validate_table(
        source.read_table("customers", k),
        SCHEMAS["customers"],
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
    )
    balances, _ = validate_table(
        source.read_table("balances", k),
        SCHEMAS["balances"],
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
        known_customers=pd.Index(customers["customer_id"]),
    )
    if balances.empty:
        return None
    first, last = balances["month_end"].min(), balances["month_end"].max()
    if not read_times:
        return first, last, last.normalize()
    ts = pd.to_datetime(source.read_table("transactions", k, columns=["ts"])["ts"], errors="coerce")
    ts = ts[(ts >= earliest_date) & (ts < extract_date.normalize() + pd.Timedelta(days=1))]
    return first, last, pd.Series([last, ts.max()]).max().normalize()


def open_partitions(config: AppConfig, runner) -> Partitions:
    """The bank's partitions for `runner`'s engine, with the whole bank's month-end range."""
    source = partition_source(config, runner.kind)
    extract_date = pd.Timestamp(config.data.resolved_extract_date())
    earliest_date = pd.Timestamp(config.data.earliest_date)
    products = tuple(config.products)
    # The last transaction from the files' statistics when it lies inside the accepted dates: it
    # is then the latest accepted one, and no partition reads its transaction times here.
    latest = source.column_max("transactions", "ts")
    upper = extract_date.normalize() + pd.Timedelta(days=1)
    known = latest is not None and earliest_date <= latest < upper
    shared = {"source": source, "extract_date": extract_date, "earliest_date": earliest_date}
    ranges = runner.map(_data_range, range(source.count), **shared, products=products, read_times=not known)
    if known and any(r is None for r in ranges):
        known = False  # a partition without balances: its transactions do not count, so they are read
        ranges = runner.map(_data_range, range(source.count), **shared, products=products)
    ranges = [r for r in ranges if r is not None]
    if not ranges:
        raise ValueError(f"balances: no valid row in {config.data.source}; features need month-end balances")
    last_day = max(r[2] for r in ranges)
    if known:
        last_day = max(last_day, latest.normalize())
    rejects_dir = config.output_path / "rejects"
    shutil.rmtree(rejects_dir / PARTS_DIR, ignore_errors=True)
    for name in TABLE_NAMES:
        (rejects_dir / PARTS_DIR / name).mkdir(parents=True)
    return Partitions(
        source=source,
        extract_date=extract_date,
        earliest_date=earliest_date,
        products=products,
        actions=config.action_codes,
        rejects_dir=str(rejects_dir),
        months=(min(r[0] for r in ranges), max(r[1] for r in ranges)),
        last_day=last_day,
    )


EVENT_KEYS = {name: SCHEMAS[name].key[0] for name in ("transactions", "interactions")}


def validated_partition(
    parts: Partitions, k: int, seconds: dict[str, float] | None = None, keep_event_ids: bool = True
) -> ValidatedTables:
    """Partition k read and validated; its rejects written to `<rejects>/.parts/<table>/part-<k>.csv`.

    The share of rejected rows is checked on the whole bank afterwards (`check_reject_shares`).
    `seconds`, when given, receives the time spent reading and validating. Without
    `keep_event_ids`, the two large event tables lose their row ids once validated: no feature
    reads them, and they are a sixth of a partition's memory.
    """
    bound_process_memory()
    release_memory(collect=True)  # what the previous partition let go, cycles included
    started = time.perf_counter()
    raw = parts.source.read(k)
    read = time.perf_counter()
    release_memory()  # the Parquet buffers freed by the conversion
    validated = validate_tables(
        raw,
        extract_date=parts.extract_date,
        earliest_date=parts.earliest_date,
        products=parts.products,
        actions=parts.actions,
        max_reject_share=1.0,
    )
    del raw
    if not keep_event_ids:
        for name, key in EVENT_KEYS.items():
            if key in validated.tables[name].columns:
                del validated.tables[name][key]  # in place: `drop` would copy every other column
    release_memory()  # the raw columns validation replaced
    for name, rejects in validated.rejects.items():
        rejects.to_csv(Path(parts.rejects_dir) / PARTS_DIR / name / f"part-{k:05d}.csv", index=False)
    if seconds is not None:
        seconds["read"] = read - started
        seconds["validate"] = time.perf_counter() - read
    return validated


def _row_counts(source: PartSource) -> dict[str, int]:
    """Rows per table in the whole source, from Parquet metadata where there is some."""
    if isinstance(source, WholeParts):
        return source.rows
    counts = {}
    for name in TABLE_NAMES:
        if isinstance(source, RangeParts):
            files = [p for p in [Path(source.directory) / f"{name}.parquet"] if p.exists()]
        elif name in GLOBAL_TABLES:
            files = list((Path(source.root) / name).glob(GLOBAL_FILE))
        else:
            files = list((Path(source.root) / name).glob("bucket=*/*.parquet"))
        counts[name] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return counts


def check_reject_shares(parts: Partitions, max_reject_share: float) -> dict[str, int]:
    """Join every partition's rejects into `<rejects>/<table>.csv` and count them; raises like the
    validation of a whole bank when a table's share is above `max_reject_share`."""
    root = Path(parts.rejects_dir)
    totals = _row_counts(parts.source)
    counts = {}
    for name in TABLE_NAMES:
        files = sorted((root / PARTS_DIR / name).glob("part-*.csv"))
        if name in GLOBAL_TABLES:  # validated whole by every partition: count it once
            files = files[:1]
        rejects = pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)
        rejects.to_csv(root / f"{name}.csv", index=False)
        check_reject_share(name, rejects, totals[name], max_reject_share)
        counts[name] = len(rejects)
    shutil.rmtree(root / PARTS_DIR, ignore_errors=True)
    return counts


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
