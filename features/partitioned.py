"""The raw tables as a customer-partitioned Parquet dataset, the layout the `dask` engine reads.

    <root>/_partitions.json                   {"bounds": [b0, b1, ..., bn], ...}
    <root>/<table>/bucket=<k>/part-*.parquet  the rows of customers with b_k <= customer_id < b_(k+1)
    <root>/<table>/_empty.parquet             the table's columns and types, no rows
    <root>/market/all.parquet                 a table not split by customer, whole

Partition k of every table holds every row of the same customers, so each feature family, the
labels and the scoring core run on one partition exactly as they run on the whole bank: all they
compute is per customer. Within a partition each customer's rows keep the order of the source
table, so sums come out bit for bit the same as on the whole table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.io import CSV_OPTIONS, SourceError, empty_table, is_database_url
from features.schema import GLOBAL_TABLES, SCHEMAS, TABLE_NAMES

MANIFEST = "_partitions.json"
EMPTY = "_empty.parquet"
GLOBAL_FILE = "all.parquet"  # a table not split by customer (the market feed), whole
_BUCKET = re.compile(r"bucket=(\d+)$")


def is_partitioned(source: str | Path) -> bool:
    """True for a directory written by `partition_tables` (or laid out the same way)."""
    return not is_database_url(str(source)) and (Path(source) / MANIFEST).is_file()


def bounds(root: str | Path) -> np.ndarray:
    """The partition bounds: partition k holds customer ids in [bounds[k], bounds[k + 1])."""
    return np.asarray(json.loads((Path(root) / MANIFEST).read_text())["bounds"], dtype=np.int64)


def partition_count(root: str | Path) -> int:
    return len(bounds(root)) - 1


def bucket_of(customer_ids: pd.Series, limits: np.ndarray) -> np.ndarray:
    """The partition of each row; ids that are not whole numbers go to partition 0, where
    validation rejects them with their reason (nothing is dropped on the way)."""
    ids = pd.to_numeric(customer_ids, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bucket = np.searchsorted(limits, np.nan_to_num(ids, nan=limits[0]), side="right") - 1
    return np.clip(bucket, 0, len(limits) - 2).astype(np.int64)


def _bucket_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.parquet"))  # part names are zero-padded: sorted = written order


def read_partition_table(root: str | Path, name: str, k: int) -> pd.DataFrame:
    """One table's rows of partition k (its zero-row schema when the partition has none); a
    table that is not split by customer (`GLOBAL_TABLES`) whole."""
    table_dir = Path(root) / name
    if name in GLOBAL_TABLES:
        return (
            pd.read_parquet(table_dir / GLOBAL_FILE)
            if (table_dir / GLOBAL_FILE).exists()
            else pd.read_parquet(table_dir / EMPTY)
        )
    files = _bucket_files(table_dir / f"bucket={k}")
    if not files:
        return pd.read_parquet(table_dir / EMPTY)
    # each Arrow buffer freed once converted, each column its own block (as `features.io`)
    frames = [pq.read_table(f).to_pandas(self_destruct=True, split_blocks=True) for f in files]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if "bucket" in frame.columns:  # in place: `drop` would copy every column
        del frame["bucket"]
    return frame


def read_partition(root: str | Path, k: int) -> dict[str, pd.DataFrame]:
    """The raw tables of partition k, as read (not validated); global tables whole."""
    return {name: read_partition_table(root, name, k) for name in TABLE_NAMES}


def read_all(root: str | Path) -> dict[str, pd.DataFrame]:
    """The whole dataset as in-memory tables, partition after partition (the local engine)."""
    count = partition_count(root)
    tables = {name: read_partition_table(root, name, 0) for name in GLOBAL_TABLES}
    for name in TABLE_NAMES:
        if name in GLOBAL_TABLES:
            continue
        parts = [read_partition_table(root, name, k) for k in range(count)]
        tables[name] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        # categories may differ between partitions; concat then leaves object columns, which
        # validation turns back into categoricals
    return tables


def write_global_table(root: str | Path, name: str, frame: pd.DataFrame) -> None:
    """Write a table that is not split by customer, whole (every partition reads it)."""
    directory = Path(root) / name
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(directory / GLOBAL_FILE, index=False)
    frame.head(0).to_parquet(directory / EMPTY, index=False)


def write_partition_table(root: str | Path, name: str, k: int, frame: pd.DataFrame, part: int = 0) -> None:
    """Write one table's rows of partition k (one file; `part` orders several files)."""
    directory = Path(root) / name / f"bucket={k}"
    directory.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(directory / f"part-{part:06d}.parquet", index=False)
    empty = Path(root) / name / EMPTY
    if not empty.exists():
        frame.head(0).to_parquet(empty, index=False)


def write_manifest(root: str | Path, limits: np.ndarray, **extra) -> None:
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    (path / MANIFEST).write_text(json.dumps({"bounds": [int(b) for b in limits], **extra}, indent=2) + "\n")


def partition_bounds(customer_ids: np.ndarray, per_partition: int) -> np.ndarray:
    """Bounds giving `per_partition` customers per partition (the last may hold fewer)."""
    ids = np.unique(customer_ids)
    if not len(ids):
        raise SourceError("customers: no customer id that is a whole number; nothing to partition")
    limits = ids[::per_partition].astype(np.int64)
    return np.append(limits, np.int64(ids[-1]) + 1)


def partition_tables(source: str | Path, out: str | Path, per_partition: int) -> dict[str, int]:
    """Partition a directory of flat tables (Parquet or CSV) by customer, with Dask.

    Each table is read as a Dask dataframe (Parquet row groups or CSV blocks, so no table has to
    fit in memory), every row is given its customer's partition, and the rows are written to
    `<out>/<table>/bucket=<k>/` in source order. Only the customer ids are gathered here.

    Returns:
        Rows written per table.
    """
    import dask
    import dask.dataframe as dd

    dask.config.set({"dataframe.convert-string": False})  # keep text as pandas reads it
    source, out = Path(source), Path(out)
    if is_database_url(str(source)) or not source.is_dir():
        raise SourceError(
            f"data source {source}: the dask engine reads a directory of Parquet or CSV tables; "
            "export the database tables to Parquet first (one file or folder per table)"
        )

    def read(name: str):
        parquet, csv = source / f"{name}.parquet", source / f"{name}.csv"
        if parquet.exists():
            return dd.read_parquet(str(parquet))
        if csv.exists():
            return dd.read_csv(str(csv), blocksize="64MB", **CSV_OPTIONS)
        if SCHEMAS[name].optional:
            return dd.from_pandas(empty_table(name), npartitions=1)
        raise SourceError(f"{name}: no {name}.parquet or {name}.csv in {source}")

    customer_ids = pd.to_numeric(read("customers")["customer_id"].compute(), errors="coerce").dropna()
    limits = partition_bounds(customer_ids.to_numpy(dtype=np.int64), per_partition)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in TABLE_NAMES:
        frame = read(name)
        if name in GLOBAL_TABLES:  # small reference data: every partition gets all of it
            whole = frame.compute()
            write_global_table(out, name, whole)
            rows[name] = len(whole)
            continue
        frame = frame.assign(
            bucket=frame["customer_id"].map_partitions(bucket_of, limits, meta=("bucket", "i8"))
        )
        (out / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(
            str(out / name),
            partition_on=["bucket"],
            name_function=lambda i: f"part-{i:06d}.parquet",
            write_index=False,
            write_metadata_file=False,
        )
        frame._meta.drop(columns="bucket").to_parquet(out / name / EMPTY, index=False)
        rows[name] = sum(pq.ParquetFile(f).metadata.num_rows for f in (out / name).glob("bucket=*/*.parquet"))
    write_manifest(out, limits, source=str(source), per_partition=per_partition)
    return rows
