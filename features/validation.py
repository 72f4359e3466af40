"""Validate raw tables against their contracts: fatal problems raise, bad rows go to rejects."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.io import empty_table
from features.schema import (
    ACTIONS_PLACEHOLDER,
    CATEGORY_DIRECTION,
    NO_ACTION,
    PRODUCTS_PLACEHOLDER,
    SCHEMAS,
    Column,
    TableSchema,
)

log = logging.getLogger(__name__)

_SHOWN_ROWS = 5
EARLIEST_DATE = pd.Timestamp("1900-01-01")  # `data.earliest_date`'s default


class TableValidationError(ValueError):
    """A table that cannot be used at all; the message names table, column, rule and example rows."""

    def __init__(self, table: str, column: str | None, rule: str, examples: pd.DataFrame | None = None):
        self.table, self.column, self.rule = table, column, rule
        where = f"{table}.{column}" if column else table
        message = f"{where}: {rule}"
        if examples is not None and len(examples):
            message += f"\n  offending rows (first {min(len(examples), _SHOWN_ROWS)}):\n" + examples.head(
                _SHOWN_ROWS
            ).to_string(max_colwidth=40)
        super().__init__(message)

    def __reduce__(self):
        """Pickled whole (a worker process of the local engine, a Dask task, raises it)."""
        return _restore_error, (type(self), str(self), self.table, self.column, self.rule)


def _restore_error(
    cls: type, message: str, table: str, column: str | None, rule: str
) -> TableValidationError:
    error = cls.__new__(cls)
    ValueError.__init__(error, message)
    error.table, error.column, error.rule = table, column, rule
    return error


@dataclass(frozen=True)
class ValidatedTables:
    """Tables that passed validation, and the rows split off from each with their reasons."""

    tables: dict[str, pd.DataFrame]
    rejects: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @property
    def reject_counts(self) -> dict[str, int]:
        return {name: len(frame) for name, frame in self.rejects.items()}


def _clean_text(series: pd.Series) -> pd.Series:
    """Text trimmed of spaces, blanks as missing, as a categorical.

    The work is done on the distinct values only, so a column of tens of millions of rows with a
    handful of values costs one pass over integer codes.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques = series.cat.codes.to_numpy(), series.cat.categories
        if uniques.dtype == object and all(
            isinstance(value, str) and value and value == value.strip() for value in uniques
        ):
            return series  # already clean text: nothing to remap
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = np.array([str(value).strip() for value in uniques], dtype=object)
    keep = text != ""
    new_codes_of_kept, categories = pd.factorize(text[keep])
    old_to_new = np.full(len(text) + 1, -1, dtype=np.int64)  # the extra slot maps code -1 to missing
    old_to_new[np.flatnonzero(keep)] = new_codes_of_kept
    cleaned = pd.Categorical.from_codes(old_to_new[codes], categories=pd.Index(categories, dtype=object))
    return pd.Series(cleaned, index=series.index)


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype)


def _coerce(series: pd.Series, column: Column) -> pd.Series:
    """Convert to the column's logical type; values that cannot be converted become null."""
    kind = column.kind
    if _is_text(series):
        series = _clean_text(series)
        if kind in ("category", "string"):
            return series
        series = series.astype(object)
    if kind == "int" and series.dtype == "int64":
        return series  # already the type: no copy
    if kind == "float" and series.dtype == "float64":
        return series
    if kind in ("int", "float"):
        numbers = pd.to_numeric(series, errors="coerce")
        if kind == "int":
            whole = numbers.notna() & (numbers % 1 == 0)
            return numbers.astype("int64") if whole.all() else numbers.where(whole).astype("Int64")
        return numbers.astype("float64")
    if kind in ("date", "timestamp"):
        values = pd.to_datetime(series, errors="coerce", format="mixed") if series.dtype == object else series
        if not pd.api.types.is_datetime64_any_dtype(values):  # already times: nothing to parse
            values = pd.to_datetime(values, errors="coerce")
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        values = _as_nanoseconds(values)
        return values.dt.normalize() if kind == "date" else values
    if kind == "bool":
        if series.dtype == bool:
            return series
        mapping = {
            "true": True,
            "1": True,
            "yes": True,
            "y": True,
            "false": False,
            "0": False,
            "no": False,
            "n": False,
        }
        return series.map(lambda v: mapping.get(str(v).lower()) if v is not None and v == v else None).astype(
            "boolean"
        )
    return pd.Series(pd.Categorical(series), index=series.index)


def _as_nanoseconds(values: pd.Series) -> pd.Series:
    """Timestamps of any unit as datetime64[ns]. A Parquet file can hold dates a nanosecond
    timestamp cannot (before 1677-09-21 or after 2262-04-11): they become missing, so the row is
    rejected as not a valid date instead of stopping the job."""
    if values.dtype == "datetime64[ns]":
        return values
    inside = (values >= pd.Timestamp.min) & (values <= pd.Timestamp.max)
    return values.where(inside).astype("datetime64[ns]")


class _RowProblems:
    """Collects per-row reasons for one table."""

    def __init__(self, length: int):
        self.reasons: list[tuple[np.ndarray, str]] = []
        self.length = length

    def add(self, mask: pd.Series | np.ndarray, reason: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.reasons.append((mask, reason))

    def mask(self) -> np.ndarray:
        combined = np.zeros(self.length, dtype=bool)
        for mask, _ in self.reasons:
            combined |= mask
        return combined

    def reason_column(self) -> np.ndarray:
        reasons = np.full(self.length, "", dtype=object)
        for mask, reason in self.reasons:
            reasons[mask] = np.where(reasons[mask] == "", reason, reasons[mask] + "; " + reason)
        return reasons


def validate_table(
    frame: pd.DataFrame,
    schema: TableSchema,
    *,
    extract_date: pd.Timestamp,
    products: tuple[str, ...],
    known_customers: pd.Index | None = None,
    earliest_date: pd.Timestamp = EARLIEST_DATE,
    actions: tuple[str, ...] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check one table against its contract.

    Args:
        frame: the table as read.
        schema: its contract.
        extract_date: event dates after this day are in the future of the data.
        earliest_date: no date of any column may lie before this day.
        actions: the playbook's actions (allowed values of `contacts.action`, with "none");
            None accepts any.
        products: the product catalogue (allowed values of `holdings.product`).
        known_customers: valid customer ids; rows of other customers are rejected.

    Returns:
        (valid rows with coerced types, rejected rows as read with a `reason` column; personal
        attributes are left out of the rejects).

    Raises:
        TableValidationError: a missing column, or a column whose values are all of the wrong type.
    """
    missing = [c for c in schema.column_names if c not in frame.columns]
    if missing:
        raise TableValidationError(
            schema.name,
            missing[0],
            f"required column missing (missing: {', '.join(missing)}; found: {', '.join(map(str, frame.columns))})",
        )
    names = list(schema.column_names)
    index = frame.index
    plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    # read only: the table as read, without a copy when it already has these columns in order
    raw = frame if plain and list(frame.columns) == names else frame[names].reset_index(drop=True)
    clean_columns: dict[str, pd.Series] = {}
    problems = _RowProblems(len(raw))
    last_allowed = extract_date.normalize() + pd.Timedelta(days=1)
    for column in schema.columns:
        values = _coerce(raw[column.name], column)
        as_read = raw[column.name]
        given = _clean_text(as_read).notna() if _is_text(as_read) else as_read.notna()
        unconvertible = given & values.isna()
        if len(raw) and unconvertible.all():
            raise TableValidationError(
                schema.name,
                column.name,
                f"wrong type: no value converts to {column.kind} (dtype as read: {raw[column.name].dtype})",
                raw.loc[unconvertible, [column.name]],
            )
        problems.add(unconvertible, f"{column.name}: not a valid {column.kind}")
        if column.required:
            problems.add(~given, f"{column.name}: missing value")
        allowed = column.allowed
        if allowed == (PRODUCTS_PLACEHOLDER,):
            allowed = products
        elif allowed == (ACTIONS_PLACEHOLDER,):
            allowed = (*actions, NO_ACTION) if actions is not None else None
        if allowed is not None:
            problems.add(
                values.notna() & ~values.isin(allowed), f"{column.name}: not one of {', '.join(allowed)}"
            )
        if column.min_value is not None:
            problems.add(values < column.min_value, f"{column.name}: below minimum {column.min_value:g}")
        if column.max_value is not None:
            problems.add(values > column.max_value, f"{column.name}: above maximum {column.max_value:g}")
        if column.event_date:
            problems.add(
                values >= last_allowed, f"{column.name}: after the extract date {extract_date:%Y-%m-%d}"
            )
        if column.kind in ("date", "timestamp"):
            problems.add(
                values < earliest_date,
                f"{column.name}: before the earliest allowed date {earliest_date:%Y-%m-%d}",
            )
        clean_columns[column.name] = values

    clean = pd.DataFrame(clean_columns, index=raw.index, copy=False)
    for earlier, later in schema.ordered:
        problems.add(clean[later] < clean[earlier], f"{later}: before {earlier}")
    if schema.name == "transactions":
        mismatch = np.zeros(len(clean), dtype=bool)
        for category, direction in CATEGORY_DIRECTION.items():
            mismatch |= np.asarray(clean["category"] == category) & np.asarray(
                clean["direction"].notna() & (clean["direction"] != direction)
            )
        problems.add(mismatch, "direction: does not match category")
    if schema.references_customers and known_customers is not None:
        problems.add(
            np.asarray(clean["customer_id"].notna()) & ~known_ids(clean["customer_id"], known_customers),
            "customer_id: unknown customer",
        )
    key = list(schema.key)
    if not _increasing_integer_key(clean, key):
        problems.add(
            clean.duplicated(key, keep=False) & clean[key].notna().all(axis=1),
            f"{'+'.join(key)}: duplicate key",
        )

    bad = problems.mask()
    kept = [c.name for c in schema.columns if not c.personal]
    if not bad.any():  # the usual case: no copy of the table
        rejects = raw.iloc[:0][kept].assign(reason=pd.Series([], dtype=object))
        return _final_dtypes(clean, schema), rejects.reset_index(drop=True)
    rejects = raw.loc[bad, kept].copy()
    rejects["reason"] = problems.reason_column()[bad]
    valid = clean.loc[~bad].reset_index(drop=True)
    return _final_dtypes(valid, schema), rejects.reset_index(drop=True)


def known_ids(ids: pd.Series, known: pd.Index) -> np.ndarray:
    """`ids.isin(known)` as an array; for integer ids by a lookup table over the known ids' span
    (or a binary search when the span is wide) instead of sorting both sides every call."""
    if ids.dtype != "int64" or known.dtype != "int64" or len(known) == 0:
        return np.asarray(ids.isin(known))
    keys = np.unique(known.to_numpy())
    values = ids.to_numpy()
    low, high = int(keys[0]), int(keys[-1])
    if high - low < max(16 * len(keys), 1 << 20):
        table = np.zeros(high - low + 1, dtype=bool)
        table[keys - low] = True
        found = np.zeros(len(values), dtype=bool)
        inside = (values >= low) & (values <= high)
        found[inside] = table[values[inside] - low]
        return found
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return keys[at] == values


def _increasing_integer_key(frame: pd.DataFrame, key: list[str]) -> bool:
    """A one-column integer key in strictly increasing order (as most extracts are written): it
    has no duplicates, shown by one comparison instead of hashing every value."""
    if len(key) != 1:
        return False
    ids = frame[key[0]].to_numpy()
    return ids.dtype.kind in "iu" and (len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()))


def _final_dtypes(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    for column in schema.columns:
        values = frame[column.name]
        if column.kind == "int" and values.dtype != "int64":
            frame[column.name] = values.astype("int64")
        elif column.kind == "bool" and values.dtype != bool:
            frame[column.name] = values.astype(bool)
        elif column.kind in ("category", "string"):
            # categoricals keep tens of millions of rows at one byte a value, and compare fast
            codes = values.cat.codes.to_numpy()
            used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
            if not used.all():  # `remove_unused_categories` without its sort of every code
                remap = (np.cumsum(used) - 1).astype(codes.dtype)
                kept = np.where(codes >= 0, remap[np.maximum(codes, 0)], codes)
                frame[column.name] = pd.Categorical.from_codes(
                    kept, categories=values.cat.categories[used], ordered=values.cat.ordered
                )
    return frame


def validate_tables(
    tables: dict[str, pd.DataFrame],
    *,
    extract_date: pd.Timestamp | str,
    products: tuple[str, ...],
    max_reject_share: float = 0.05,
    earliest_date: pd.Timestamp | str = EARLIEST_DATE,
    actions: tuple[str, ...] | None = None,
) -> ValidatedTables:
    """Validate all six tables; customers first, so other tables can be checked against them.

    Raises:
        TableValidationError: a fatal problem, or a table whose rejected share exceeds `max_reject_share`.
    """
    extract_date, earliest_date = pd.Timestamp(extract_date), pd.Timestamp(earliest_date)
    missing = [name for name, schema in SCHEMAS.items() if name not in tables and not schema.optional]
    if missing:
        raise TableValidationError(missing[0], None, "table missing")
    tables = {name: tables[name] if name in tables else empty_table(name) for name in SCHEMAS}
    valid: dict[str, pd.DataFrame] = {}
    rejects: dict[str, pd.DataFrame] = {}
    known: pd.Index | None = None
    for name, schema in SCHEMAS.items():
        valid[name], rejects[name] = validate_table(
            tables[name],
            schema,
            extract_date=extract_date,
            products=products,
            known_customers=known,
            earliest_date=earliest_date,
            actions=actions,
        )
        if name == "customers":
            known = pd.Index(valid[name]["customer_id"])
        total = len(tables[name])
        if rejects[name].shape[0]:
            log.warning("%s: %d of %d rows rejected", name, len(rejects[name]), total)
        check_reject_share(name, rejects[name], total, max_reject_share)
    return ValidatedTables(valid, rejects)


def check_reject_share(name: str, rejects: pd.DataFrame, total: int, max_reject_share: float) -> None:
    """Stop when more than `max_reject_share` of a table's `total` rows were rejected.

    Raises:
        TableValidationError: naming the table, the share and the most common reasons.
    """
    if total and len(rejects) / total > max_reject_share:
        top = rejects["reason"].str.split("; ").explode().value_counts().head(3)
        raise TableValidationError(
            name,
            None,
            f"{len(rejects)} of {total} rows rejected, above the allowed share {max_reject_share:.0%} "
            f"(most common: {'; '.join(f'{r} ({c})' for r, c in top.items())})",
            rejects,
        )
