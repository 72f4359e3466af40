"""The feature stage's settings: the source and its checks, the products, the behavioural
features, the churn label and the training snapshots (composed into the application config by
`churn.config`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator

from churn.frozen import Frozen


class DataConfig(Frozen):
    source: str = Field(description="Directory of Parquet/CSV tables, or a SQLAlchemy URL.")
    extract_date: dt.date | None = None
    max_reject_share: float = Field(0.05, ge=0.0, le=1.0)
    # No date the product accepts (a table's, an API request's) may lie before this day: older
    # ones are data errors, and dates before 1677 cannot even be held as nanosecond timestamps.
    earliest_date: dt.date = dt.date(1900, 1, 1)

    def resolved_extract_date(self) -> dt.date:
        """The date after which event dates count as 'in the future of the data'."""
        return self.extract_date or dt.date.today()


class Product(Frozen):
    name: str
    kind: Literal["deposit", "investment", "credit", "loan", "insurance"]
    balance_margin: float = Field(ge=0.0, le=1.0)
    annual_fee_margin: float = Field(ge=0.0)


class FeatureConfig(Frozen):
    windows_days: tuple[int, ...] = (30, 90, 180)
    large_outflow_share: float = Field(0.25, gt=0.0, le=1.0)
    salary_gap_days: int = Field(45, gt=0)
    maturity_window_days: int = Field(60, gt=0)

    @field_validator("windows_days", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w <= 0 for w in value) or list(value) != sorted(set(value)):
            raise ValueError("must be a non-empty, increasing list of positive day counts")
        return value


class LabelConfig(Frozen):
    horizon_days: int = Field(90, gt=0)
    drain_ratio: float = Field(0.2, gt=0.0, lt=1.0)
    stay_months: int = Field(2, ge=0)
    min_reference_assets: float = Field(500.0, ge=0.0)


class SnapshotConfig(Frozen):
    count: int = Field(12, ge=1)
