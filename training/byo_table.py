"""Bring your own table: read, label, coerce and split a customer-level table with a churn flag.

Real tables are messy. Each column is coerced where that is safe, and what was coerced or
refused is reported:
- numeric columns with blanks or stray text: the text becomes missing, counted per column;
- categories: trimmed and lower-cased, so "France" and " france" are one level;
- a text column with few distinct values that is not listed as categorical becomes categorical;
- unusable columns are reported and not used: constant, identifier-like (a distinct value per
  row), free text (too many distinct values), and leaks (a single column that alone separates
  the label, ROC-AUC >= 0.98 on the training rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from churn.config import AppConfig, SourceTableConfig

MAX_CATEGORY_LEVELS = 50
LEAK_AUC = 0.98
NOT_NUMERIC_SHARE = 0.5  # a column is text when more than this share of its values are not numbers


class SourceTableError(ValueError):
    """A table or source config that cannot be trained on; the message names the column and the problem."""


@dataclass
class DataReport:
    """What was done to the table's columns, for the user and the MLflow run."""

    rows: int = 0
    rows_without_label: int = 0
    used_numeric: list[str] = field(default_factory=list)
    used_categorical: list[str] = field(default_factory=list)
    coerced: dict[str, str] = field(default_factory=dict)
    not_used: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def lines(self) -> list[str]:
        out = [f"table rows            {self.rows} ({self.rows_without_label} without a label, not used)"]
        out.append(
            f"features              {len(self.used_numeric)} numeric, {len(self.used_categorical)} categorical"
        )
        out += [f"coerced               {c}: {why}" for c, why in self.coerced.items()]
        out += [f"not used              {c}: {why}" for c, why in self.not_used.items()]
        return out


@dataclass(frozen=True)
class SplitDescription:
    kind: str
    details: dict[str, str]
    test_label: str

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind} | self.details


def read_source_table(source: SourceTableConfig) -> pd.DataFrame:
    path = Path(source.table)
    if not path.exists():
        raise SourceTableError(f"source.table: file {path} not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:  # any reader failure is an unreadable file to the user
        raise SourceTableError(f"source.table: cannot read {path}: {exc}") from exc


def _label(
    frame: pd.DataFrame, source: SourceTableConfig, report: DataReport
) -> tuple[pd.DataFrame, np.ndarray]:
    raw = frame[source.label_column]
    text = raw.astype("string").str.strip().str.lower()
    missing = text.isna() | (text == "")
    report.rows_without_label = int(missing.sum())
    frame, text = frame[~missing.to_numpy()], text[~missing]
    values = sorted(text.unique())
    positive = str(source.positive_label).strip().lower()
    if isinstance(source.positive_label, bool):
        positive = "true" if source.positive_label else "false"
    if positive not in values and positive in ("1", "1.0"):
        positive = next((v for v in values if v in ("1", "1.0", "true", "yes")), positive)
    if len(values) != 2:
        shown = ", ".join(values[:6]) + (" ..." if len(values) > 6 else "")
        raise SourceTableError(
            f"{source.label_column}: label is not binary ({len(values)} distinct values: {shown})"
        )
    if positive not in values:
        raise SourceTableError(
            f"{source.label_column}: positive_label {source.positive_label!r} is not one of the label's values ({', '.join(values)})"
        )
    y = (text == positive).to_numpy().astype(int)
    if y.sum() < source.min_positives or (1 - y).sum() < source.min_positives:
        raise SourceTableError(
            f"{source.label_column}: too few positives or negatives to train ({int(y.sum())} positive, "
            f"{int((1 - y).sum())} negative; at least {source.min_positives} of each needed)"
        )
    return frame, y


def prepare_columns(frame: pd.DataFrame, source: SourceTableConfig, report: DataReport) -> pd.DataFrame:
    """Coerce usable columns, drop the rest, and record both in the report."""
    reserved = {
        source.id_column,
        source.label_column,
        *([source.snapshot_column] if source.snapshot_column else []),
    }
    for column in [*source.drop_columns, *source.categorical, *reserved]:
        if column not in frame.columns:
            raise SourceTableError(f"{column}: column named in the source config is not in the table")
    out: dict[str, pd.Series] = {}
    n = len(frame)
    for column in frame.columns:
        if column in reserved:
            continue
        if column in source.drop_columns:
            report.not_used[column] = "dropped by the config"
            continue
        raw = frame[column]
        text = raw.astype("string").str.strip()
        present = text.notna() & (text != "")
        distinct = text[present].nunique()
        if distinct <= 1:
            report.not_used[column] = "constant"
            continue
        numbers = (
            pd.to_numeric(text.where(present), errors="coerce")
            if raw.dtype == object or isinstance(raw.dtype, pd.StringDtype)
            else pd.to_numeric(raw, errors="coerce")
        )
        stray = int((present & numbers.isna()).sum())
        is_numeric = column not in source.categorical and stray <= NOT_NUMERIC_SHARE * max(
            int(present.sum()), 1
        )
        if is_numeric:
            whole = numbers.dropna()
            if whole.nunique() == n and (whole % 1 == 0).all():
                report.not_used[column] = "looks like an identifier (a distinct whole number per row)"
                continue
            if stray:
                report.coerced[column] = f"{stray} non-numeric value(s) treated as missing"
            out[column] = numbers.astype(float)
            report.used_numeric.append(column)
            continue
        levels = text.where(present).str.lower()
        if distinct > MAX_CATEGORY_LEVELS:
            report.not_used[column] = f"free text or identifier ({distinct} distinct values)"
            continue
        if levels.nunique() < distinct:
            report.coerced[column] = f"case and spaces normalised ({distinct} -> {levels.nunique()} levels)"
        elif column not in source.categorical:
            report.coerced[column] = f"text with {distinct} levels treated as categorical"
        out[column] = levels.astype(object)
        report.used_categorical.append(column)
    if not out:
        raise SourceTableError("no usable feature columns are left after coercion (see the report)")
    return pd.DataFrame(out, index=frame.index)


def single_feature_auc(x: pd.Series, y: np.ndarray) -> float:
    if x.dtype == object:
        rate = pd.Series(y, index=x.index).groupby(x.fillna("__missing__")).transform("mean")
        score = rate.to_numpy()
    else:
        score = x.fillna(x.median()).to_numpy()
    auc = roc_auc_score(y, score)
    return max(auc, 1 - auc)


def as_categorical(X: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    X = X.copy()
    for column, cats in levels.items():
        X[column] = pd.Categorical(X[column], categories=cats)
    return X


def _split(frame: pd.DataFrame, y: np.ndarray, source: SourceTableConfig, seed: int):
    index = np.arange(len(frame))
    if source.snapshot_column:
        dates = pd.to_datetime(frame[source.snapshot_column], errors="coerce", format="mixed")
        if dates.isna().any():
            bad = frame.loc[dates.isna().to_numpy(), source.snapshot_column].head(3).tolist()
            raise SourceTableError(
                f"{source.snapshot_column}: not a date in {int(dates.isna().sum())} rows (e.g. {bad})"
            )
        periods = np.sort(dates.unique())
        if len(periods) < 3:
            raise SourceTableError(
                f"{source.snapshot_column}: {len(periods)} distinct snapshots; an out-of-time split needs 3"
            )
        n_test = max(1, int(round(source.test_share * len(periods))))
        n_valid = max(1, int(round(source.validation_share * len(periods))))
        test_from, valid_from = periods[-n_test], periods[-n_test - n_valid]
        d = dates.to_numpy()
        parts = {
            "train": index[d < valid_from],
            "validation": index[(d >= valid_from) & (d < test_from)],
            "test": index[d >= test_from],
        }
        fmt = lambda v: f"{pd.Timestamp(v):%Y-%m-%d}"  # noqa: E731
        details = {
            "train": f"before {fmt(valid_from)}",
            "validation": f"{fmt(valid_from)}..{fmt(periods[-n_test - 1])}",
            "test": f"from {fmt(test_from)}",
        }
        return parts, SplitDescription("out of time", details, fmt(test_from))
    rest, test = train_test_split(index, test_size=source.test_share, stratify=y, random_state=seed)
    share = source.validation_share / (1 - source.test_share)
    train, valid = train_test_split(rest, test_size=share, stratify=y[rest], random_state=seed)
    parts = {"train": train, "validation": valid, "test": test}
    details = {name: f"{len(rows)} rows (stratified random)" for name, rows in parts.items()}
    return parts, SplitDescription("stratified random", details, f"random-{seed}")


@dataclass(frozen=True)
class LoadedTable:
    """The configured table read, labelled, coerced and split: what training and promotion share."""

    frame: pd.DataFrame
    y: np.ndarray
    X: pd.DataFrame
    parts: dict[str, np.ndarray]
    split: SplitDescription
    report: DataReport


def load_source_table(config: AppConfig) -> LoadedTable:
    """Read the `source:` table, label it, coerce its columns and split it (same seed, same split)."""
    source = config.source
    if source is None:
        raise SourceTableError("source: no source table configured")
    report = DataReport()
    frame = read_source_table(source)
    report.rows = len(frame)
    for column in (source.id_column, source.label_column):
        if column not in frame.columns:
            raise SourceTableError(f"{column}: column named in the source config is not in the table")
    frame, y = _label(frame, source, report)
    X = prepare_columns(frame, source, report)
    parts, split = _split(frame, y, source, config.training.seed)
    return LoadedTable(frame, y, X, parts, split, report)


def drop_leaks(X: pd.DataFrame, y: np.ndarray, train: np.ndarray, report: DataReport) -> pd.DataFrame:
    """The columns without those that alone separate the label on the training rows (ROC-AUC >=
    `LEAK_AUC`), each reported as not used."""
    for column in list(X.columns):  # leaks are judged on training rows only
        auc = single_feature_auc(X[column].iloc[train], y[train])
        if auc >= LEAK_AUC:
            report.not_used[column] = (
                f"leaks the label (alone it reaches ROC-AUC {auc:.3f}); check how it was recorded"
            )
            report.used_numeric = [c for c in report.used_numeric if c != column]
            report.used_categorical = [c for c in report.used_categorical if c != column]
            X = X.drop(columns=column)
    if X.empty:
        raise SourceTableError("no usable feature columns are left after removing leaks (see the report)")
    return X
