"""A bank's raw tables as customer partitions, whatever the source: what every engine reads.

Partition k of every table holds every row of the same customers (ids in
`[limits[k], limits[k + 1])`; the first partition also takes ids below the first bound and
missing ids, the last those above the last bound, so validation sees and rejects every row).
Three sources give that view:

- `DatasetParts`: a customer-partitioned dataset (`features.partitioned`, `churn partition`);
- `RangeParts`: a directory of flat Parquet tables, each partition read with a customer-id range
  filter; on a table sorted by customer (our generator's files, an export `ORDER BY customer_id`)
  Parquet's row-group statistics skip every row group outside the range, so a partition costs
  about its share of the file; on an unsorted table each partition scans the file;
- `WholeParts`: anything else (CSV files, a database, ids that are not integers): the whole bank
  as one partition, read once.

`open_source` picks one. Each is small and picklable, so a Dask task can read its own partition.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.io import SourceError, empty_table, is_database_url, read_tables
from features.partitioned import bounds, is_partitioned, partition_bounds, read_all, read_partition_table
from features.schema import GLOBAL_TABLES, SCHEMAS, TABLE_NAMES

log = logging.getLogger(__name__)


class DatasetParts:
    """A dataset written by `features.partitioned.partition_tables`."""

    def __init__(self, root: str | Path):
        self.root = str(root)
        self.limits = tuple(int(b) for b in bounds(root))

    @property
    def count(self) -> int:
        return len(self.limits) - 1

    def read_table(self, name: str, k: int, columns: list[str] | None = None) -> pd.DataFrame:
        frame = read_partition_table(self.root, name, k)
        return frame[columns] if columns is not None else frame

    def read(self, k: int) -> dict[str, pd.DataFrame]:
        return {name: self.read_table(name, k) for name in TABLE_NAMES}

    def column_max(self, name: str, column: str) -> pd.Timestamp | None:
        """The largest time in a table's column over every partition, from Parquet statistics."""
        return parquet_time_max(sorted((Path(self.root) / name).glob("bucket=*/*.parquet")), column)

    def describe(self) -> str:
        return f"{self.count} partition{'s' if self.count != 1 else ''} of {self.root}"


class RangeParts:
    """Flat Parquet tables read partition by partition with a customer-id range filter."""

    def __init__(self, directory: str | Path, limits: tuple[int, ...], sorted_tables: bool):
        self.directory = str(directory)
        self.limits = limits
        self.sorted_tables = sorted_tables

    @property
    def count(self) -> int:
        return len(self.limits) - 1

    def _filter(self, k: int):
        import pyarrow.dataset as ds

        if self.count == 1:
            return None
        column = ds.field("customer_id")
        if k == 0:
            return (column < self.limits[1]) | column.is_null()
        if k == self.count - 1:
            return column >= self.limits[k]
        return (column >= self.limits[k]) & (column < self.limits[k + 1])

    def read_table(self, name: str, k: int, columns: list[str] | None = None) -> pd.DataFrame:
        import pyarrow.dataset as ds

        path = Path(self.directory) / f"{name}.parquet"
        if not path.exists():
            if SCHEMAS[name].optional:
                frame = empty_table(name)
                return frame[columns] if columns is not None else frame
            raise SourceError(f"{name}: no {name}.parquet or {name}.csv in {self.directory}")
        where = None if name in GLOBAL_TABLES else self._filter(k)
        try:
            table = ds.dataset(path, format="parquet").to_table(columns=columns, filter=where)
        except Exception as exc:  # any reader failure is an unreadable file to the user
            raise SourceError(f"{name}: cannot read {path}: {exc}") from exc
        # each Arrow buffer freed once converted, each column its own block (as `features.io`)
        return table.to_pandas(self_destruct=True, split_blocks=True)

    def read(self, k: int) -> dict[str, pd.DataFrame]:
        return {name: self.read_table(name, k) for name in TABLE_NAMES}

    def column_max(self, name: str, column: str) -> pd.Timestamp | None:
        """The largest time in a table's column over every row, from Parquet statistics."""
        path = Path(self.directory) / f"{name}.parquet"
        return parquet_time_max(sorted(path.rglob("*.parquet")) if path.is_dir() else [path], column)

    def describe(self) -> str:
        order = "sorted by customer" if self.sorted_tables else "not sorted by customer: each partition scans"
        return f"{self.count} customer range{'s' if self.count != 1 else ''} of {self.directory} ({order})"


@dataclass
class WholeParts:
    """The whole source as one partition, read once: `read` hands the tables over and forgets them."""

    source: str
    limits: tuple[int, ...] = ()
    rows: dict[str, int] = field(default_factory=dict)  # rows per table, once read
    _tables: dict[str, pd.DataFrame] | None = field(default=None, repr=False)

    count = 1

    def _loaded(self) -> dict[str, pd.DataFrame]:
        if self._tables is None:
            self._tables = read_bank(self.source)
            self.rows = {name: len(frame) for name, frame in self._tables.items()}
        return self._tables

    def read_table(self, name: str, k: int, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self._loaded()[name]
        return frame[columns] if columns is not None else frame

    def read(self, k: int) -> dict[str, pd.DataFrame]:
        tables, self._tables = self._loaded(), None
        return tables

    def column_max(self, name: str, column: str) -> pd.Timestamp | None:
        return None  # read whole anyway: nothing to save

    def __getstate__(self):  # a task reads the source itself, not this process's copy
        return {"source": self.source, "limits": self.limits, "rows": {}, "_tables": None}

    def describe(self) -> str:
        return f"{self.source} read whole (one partition)"


PartSource = DatasetParts | RangeParts | WholeParts


def parquet_time_max(paths: list[Path], column: str) -> pd.Timestamp | None:
    """The largest value of a time column (without a time zone) over these Parquet files, from
    their row-group statistics alone; None when a file is missing or unreadable, the column is
    not such a time, or a row group with values has no statistics (the caller then reads it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    latest = None
    for path in paths:
        try:
            file = pq.ParquetFile(path)
        except Exception:  # missing or unreadable: the read itself reports it
            return None
        schema = file.schema_arrow
        if column not in schema.names or column not in file.schema.names:
            return None
        kind = schema.field(column).type
        if not pa.types.is_timestamp(kind) or kind.tz is not None:
            return None
        position = file.schema.names.index(column)  # the column's leaf in the row groups
        metadata = file.metadata
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            if group.num_rows == 0:
                continue
            stats = group.column(position).statistics
            if stats is None or not stats.has_min_max:
                if stats is not None and stats.null_count == group.num_rows:
                    continue  # only missing values
                return None
            value = pd.Timestamp(stats.max)
            latest = value if latest is None else max(latest, value)
    return latest


def read_bank(source: str | Path) -> dict[str, pd.DataFrame]:
    """The whole bank in memory, as read (not validated), from any source, a partitioned dataset too:
    what the jobs that are not yet per partition read (training, promotion, monitoring)."""
    if not is_database_url(str(source)) and is_partitioned(source):
        return read_all(source)
    return read_tables(source)


def _integer_ids(directory: Path) -> dict[str, object] | None:
    """Each customer table's Parquet metadata when every one has integer customer ids, else None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = {}
    for name in TABLE_NAMES:
        path = directory / f"{name}.parquet"
        if name in GLOBAL_TABLES:
            continue
        if not path.exists():
            if SCHEMAS[name].optional:
                continue
            return None
        try:
            metadata = pq.ParquetFile(path).metadata
        except Exception as exc:
            raise SourceError(f"{name}: cannot read {path}: {exc}") from exc
        schema = metadata.schema.to_arrow_schema()
        if "customer_id" not in schema.names or not pa.types.is_integer(schema.field("customer_id").type):
            return None  # validation names the problem; the whole table is read to show it
        found[name] = metadata
    return found


def _sorted_by_customer(metadata) -> bool:
    """True when the row groups' customer-id ranges follow each other (a sorted table)."""
    index = metadata.schema.to_arrow_schema().get_field_index("customer_id")
    previous = None
    for g in range(metadata.num_row_groups):
        stats = metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max:
            return False
        if previous is not None and stats.min < previous:
            return False
        previous = stats.max
    return True


def open_source(source: str | Path, per_partition: int) -> PartSource:
    """The source as customer partitions of about `per_partition` customers (module docstring)."""
    source = str(source)
    if not is_database_url(source) and is_partitioned(source):
        return DatasetParts(source)
    directory = Path(source)
    if is_database_url(source) or not directory.is_dir():
        return WholeParts(source)
    metadata = _integer_ids(directory)
    if metadata is None or "customers" not in metadata:
        return WholeParts(source)
    import pyarrow.parquet as pq

    ids = pq.read_table(directory / "customers.parquet", columns=["customer_id"]).column(0)
    ids = ids.drop_null().to_numpy()
    if not len(ids):
        return WholeParts(source)
    limits = tuple(int(b) for b in partition_bounds(np.asarray(ids, dtype=np.int64), per_partition))
    ordered = all(_sorted_by_customer(m) for m in metadata.values())
    if not ordered and len(limits) > 2:
        log.warning(
            "%s: tables not sorted by customer_id; each of the %d partitions reads every file "
            "(sort them, or run `churn partition` once)",
            source,
            len(limits) - 1,
        )
    return RangeParts(source, limits, ordered)
