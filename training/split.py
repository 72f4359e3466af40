"""Out-of-time split of stacked monthly snapshots, with gaps so no label window overlaps a later set."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    train: list[pd.Timestamp]
    validation: list[pd.Timestamp]
    test: pd.Timestamp

    def describe(self) -> dict[str, str]:
        fmt = "{:%Y-%m-%d}".format
        return {
            "train": f"{fmt(self.train[0])}..{fmt(self.train[-1])} ({len(self.train)} snapshots)",
            "validation": ", ".join(map(fmt, self.validation)),
            "test": fmt(self.test),
        }


def out_of_time_split(
    as_of_dates: list[pd.Timestamp], horizon_days: int, validation_snapshots: int
) -> TimeSplit:
    """Split monthly as-of dates into train / validation / test.

    The latest date is the test snapshot. Validation takes the `validation_snapshots` latest dates
    whose label windows (as-of + horizon) end by the test date; training takes the dates whose
    label windows end by the first validation date. So nothing a model learns from can have
    happened on or after the as-of date of a set it is judged or calibrated on.

    Raises:
        ValueError: too few snapshots for the gaps the horizon needs.
    """
    dates = sorted(pd.Timestamp(d) for d in as_of_dates)
    gap_months = math.ceil(horizon_days / 30.4)
    test = dates[-1]

    def label_end(d: pd.Timestamp) -> pd.Timestamp:
        return d + pd.Timedelta(days=horizon_days)

    candidates = [d for d in dates if label_end(d) <= test]
    validation = candidates[-validation_snapshots:]
    train = [d for d in dates if validation and label_end(d) <= validation[0]]
    if len(validation) < validation_snapshots or not train:
        raise ValueError(
            f"{len(dates)} monthly snapshots are too few for a {horizon_days}-day horizon "
            f"({gap_months}-month gaps) with {validation_snapshots} validation snapshot(s); "
            f"raise snapshots.count or use more history"
        )
    return TimeSplit(train=train, validation=validation, test=test)
