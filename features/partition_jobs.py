"""Per-partition work plus a combine step, for every engine: what the feature stage
(`features.feature_run`), the daily list and the distributed trainer share.

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
