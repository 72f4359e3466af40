"""Churn analytics for bank management: who left, why, what it cost, month by month.

For each of the last months whose churn the data can confirm, the customers who churned in it
(the labels' rule: every product closed, or assets drained and stayed drained) are diagnosed by
the champion as they stood at the start of that month: the kind of churn and the cause their
first reason names. From that: churn by kind, by cause, by branch, region and segment, customers
and value lost; the monthly table of customers gained, lost and the net change; and the headline
bank management asks first, what share of the churn is the bank's own fault (service failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.causes import UNCLEAR

KINDS = ["service_failure", "competitive", "natural", UNCLEAR]


@dataclass(frozen=True)
class ChurnReport:
    months: pd.DatetimeIndex
    churners: pd.DataFrame  # one row per churned customer: month, kind, cause, value, branch, region, segment
    monthly: pd.DataFrame  # per month: customers at the start, gained, lost, net, value lost

    @property
    def own_fault_share(self) -> float:
        """Share of the churners with a known kind whose kind is service failure."""
        known = self.churners[self.churners["churn_type"] != UNCLEAR]
        return float((known["churn_type"] == "service_failure").mean()) if len(known) else 0.0

    @property
    def own_fault_value_share(self) -> float:
        known = self.churners[self.churners["churn_type"] != UNCLEAR]
        total = known["value"].sum()
        return (
            float(known.loc[known["churn_type"] == "service_failure", "value"].sum() / total)
            if total
            else 0.0
        )

    def by(self, column: str) -> pd.DataFrame:
        """Customers and value lost per `column` and kind of churn."""
        table = self.churners.pivot_table(
            index=column,
            columns="churn_type",
            values="value",
            aggfunc=["size", "sum"],
            fill_value=0,
            observed=True,
        )
        customers = table["size"].reindex(columns=KINDS, fill_value=0)
        value = table["sum"].reindex(columns=KINDS, fill_value=0.0)
        out = customers.add_prefix("customers_").join(value.add_prefix("value_"))
        out["customers"] = customers.sum(axis=1)
        out["value_lost"] = value.sum(axis=1)
        return out.sort_values("value_lost", ascending=False)

    def by_month_and_kind(self) -> pd.DataFrame:
        table = self.churners.pivot_table(
            index="month", columns="churn_type", values="value", aggfunc="size", fill_value=0, observed=True
        )
        return table.reindex(index=self.months, columns=KINDS, fill_value=0)

    def by_cause(self) -> pd.DataFrame:
        groups = self.churners.groupby(["cause", "churn_type"], observed=True)["value"]
        return groups.agg(customers="size", value_lost="sum").sort_values("customers", ascending=False)

    def lines(self) -> list[str]:
        counts = self.churners["churn_type"].value_counts().reindex(KINDS, fill_value=0)
        last = self.monthly.iloc[-1]
        return [
            f"months                {self.months[0]:%Y-%m} .. {self.months[-1]:%Y-%m} (churn the data confirms)",
            f"customers lost        {len(self.churners):,} ({self.churners['value'].sum():,.0f} of value): "
            + ", ".join(f"{kind} {n}" for kind, n in counts.items()),
            f"our own fault         {self.own_fault_share:.0%} of the churn with a known kind is service failure "
            f"({self.own_fault_value_share:.0%} of its value)",
            f"last month            {last.name:%Y-%m}: {int(last['gained'])} gained, {int(last['lost'])} lost, "
            f"net {int(last['net']):+d}",
        ]


CHURNER_COLUMNS = ["month", "churn_type", "cause", "value", "branch_id", "region", "segment"]


def report_months(
    bank: tuple[pd.Timestamp, pd.Timestamp], config: AppConfig, months: int
) -> pd.DatetimeIndex:
    """The first days of the last `months` months whose churn a bank spanning `bank` (first and
    last month-end of its balances) can confirm."""
    # a drain shows at a month-end and is confirmed by `stay_months` more: later months are open
    last = (bank[1].normalize().replace(day=1) - pd.DateOffset(months=config.labels.stay_months)).normalize()
    starts = pd.date_range(end=last, periods=months, freq="MS")
    return starts[starts > bank[0] + pd.Timedelta(days=1)]


def report_partition(
    tables: dict[str, pd.DataFrame],
    bank: tuple[pd.Timestamp, pd.Timestamp],
    config: AppConfig,
    bundle: Any,
    months: int = 12,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One partition's (or a whole bank's) churners, diagnosed by `bundle`, and its monthly
    counts; `bank` is the whole bank's first and last month-end (`features.partition_work`)."""
    from features.build import active_customers, build_features
    from features.labels import churn_dates

    dates = churn_dates(tables, config.labels, bank)
    customers = tables["customers"].set_index("customer_id")
    parts, monthly = [], []
    for start in report_months(bank, config, months):
        end = start + pd.DateOffset(months=1)
        left = dates[(dates >= start) & (dates < end)].index
        active = active_customers(tables, start)
        gained = int(((customers["join_date"] >= start) & (customers["join_date"] < end)).sum())
        row = {"month": start, "customers_at_start": len(active), "gained": gained, "lost": len(left)}
        row["value_lost"] = 0.0
        if len(left):
            features = build_features(tables, start, config.features, tuple(config.products))
            features = features.loc[features.index.intersection(left)]
            x = bundle.matrix(bundle.prepare(features))
            scoring = config.scoring
            diagnoses = bundle.diagnose(
                x, bundle.contributions_array(x), 1, scoring.min_type_share, scoring.min_driver_logit
            )
            value = np.nan_to_num(bundle.value(x), nan=0.0)
            context = customers.loc[features.index]
            parts.append(
                pd.DataFrame(
                    {
                        "month": start,
                        "churn_type": [d.churn_type for d in diagnoses],
                        "cause": [d.reasons[0].code if d.reasons else "none" for d in diagnoses],
                        "value": value,
                        "branch_id": context["branch_id"].astype(str).to_numpy(),
                        "region": context["region"].astype(str).to_numpy(),
                        "segment": context["segment"].astype(str).to_numpy(),
                    },
                    index=features.index,
                )
            )
            row["value_lost"] = float(value.sum())
        monthly.append(row)
    churners = pd.concat(parts) if parts else pd.DataFrame(columns=CHURNER_COLUMNS)
    return churners, pd.DataFrame(
        monthly, columns=["month", "customers_at_start", "gained", "lost", "value_lost"]
    )


def combine_report(
    bank: tuple[pd.Timestamp, pd.Timestamp], config: AppConfig, months: int, pieces: list[tuple]
) -> ChurnReport:
    """The report from the partitions' pieces: churners put together by month and customer,
    the monthly counts added up."""
    starts = report_months(bank, config, months)
    found = [p[0] for p in pieces if not p[0].empty]
    churners = pd.concat(found) if found else pd.DataFrame(columns=CHURNER_COLUMNS)
    if len(found) > 1:
        churners = churners.sort_values("month", kind="stable")
    table = pd.concat([p[1] for p in pieces]).groupby("month", sort=True).sum().reindex(starts)
    table.index.name = "month"
    table["net"] = table["gained"] - table["lost"]
    return ChurnReport(starts, churners, table)


def build_report(
    tables: dict[str, pd.DataFrame], bundle: Any, config: AppConfig, months: int = 12
) -> ChurnReport:
    """The report over the last `months` months whose churn the data can confirm, on a whole bank
    held in this process (the job reads the bank partition by partition: `report_partition`)."""
    from features.partition_work import bank_months

    bank = bank_months(tables)
    return combine_report(bank, config, months, [report_partition(tables, bank, config, bundle, months)])
