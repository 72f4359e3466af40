"""The daily risk list: score every customer with the champion model and write what the team reads.

Every customer in the customer table ends in exactly one place: the scored list (contacted or
not, with the rule that decided), the excluded rows with their reason (not active, already
churned), or the validation rejects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import AppConfig
from serving.store import api_contacts, contact_window


@dataclass(frozen=True)
class RiskListRun:
    as_of: pd.Timestamp
    model_version: str
    meta: dict[str, Any]
    out_dir: Path


def default_as_of(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The day after the data's last month-end: 'today' for the data at hand."""
    return (tables["balances"]["month_end"].max() + pd.Timedelta(days=1)).normalize()


def check_as_of(as_of: pd.Timestamp, first_month_end: pd.Timestamp, last_day: pd.Timestamp) -> None:
    """A scoring date the data can answer for: after its first month-end (features need one
    month-end before the date) and no later than the day after its last event (beyond it the
    data says nothing, and a list would report windows with nothing in them as behaviour).

    Raises:
        ValueError: naming --as-of and the data's range.
    """
    earliest = first_month_end + pd.Timedelta(days=1)
    latest = last_day.normalize() + pd.Timedelta(days=1)
    if not earliest <= as_of <= latest:
        raise ValueError(
            f"--as-of: {as_of:%Y-%m-%d} is outside what the data covers: from {earliest:%Y-%m-%d} "
            f"(the day after its first month-end) to {latest:%Y-%m-%d} (the day after its last "
            "transaction or month-end)"
        )


def read_recorded_contacts(config: AppConfig, rejects_dir: Path) -> tuple[pd.DataFrame, int]:
    """Contacts recorded through the API since the bank's extract, for the contact policy; rows
    dated outside the sane range are written to `<rejects_dir>/contact_history.csv` with their
    reason, and counted (the job goes on without them).

    Returns:
        (customer_id, ts, control_group of the usable contacts, how many were rejected).
    """
    window = contact_window(config.data.earliest_date, config.serving.clock_tolerance_minutes)
    usable, rejected = api_contacts(config.database_url, window)
    rejects_dir.mkdir(parents=True, exist_ok=True)
    rejected.to_csv(rejects_dir / "contact_history.csv", index=False)
    return usable, len(rejected)


def build_risk_list(
    tables: dict[str, pd.DataFrame],
    bundle,
    model_version: str,
    as_of: pd.Timestamp,
    config: AppConfig,
    recorded_contacts: pd.DataFrame | None = None,
    seconds: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the customers active at `as_of` and list everyone else with the reason they are not scored.

    `recorded_contacts` (customer_id, ts, control_group): contacts recorded through the API since
    the bank's extract; the contact policy counts them with the bank's own. `seconds`, when
    given, receives the time spent on features, scoring and deciding, and explaining.

    Returns:
        (rows for every customer: scored and excluded, the feature rows that were scored).
    """
    from features.build import build_features
    from features.labels import drained_before
    from serving.scoring import ScoringContext, score_customers

    products = tuple(config.products)
    customers = tables["customers"].set_index("customer_id")
    started = time.perf_counter()
    features = build_features(tables, as_of, config.features, products)
    drained = drained_before(tables, as_of, config.labels).reindex(features.index, fill_value=False)
    to_score = features[~drained.to_numpy()]
    built = time.perf_counter()
    contacts = tables["contacts"][["customer_id", "ts", "control_group"]]
    if recorded_contacts is not None and len(recorded_contacts):
        contacts = pd.concat([contacts, recorded_contacts[contacts.columns]], ignore_index=True)
        contacts = contacts.drop_duplicates(["customer_id", "ts"])
    context = ScoringContext(as_of, customers, contacts)
    timed: dict[str, float] = {}
    scored = score_customers(bundle, to_score, context, config, timed)
    if seconds is not None:  # scoring and deciding apart from explaining (SHAP)
        seconds["features"] = built - started
        seconds["score"] = time.perf_counter() - built - timed.get("explain", 0.0)
        seconds["explain"] = timed.get("explain", 0.0)
    scored.insert(0, "status", "scored")

    not_active = customers.index.difference(features.index)
    excluded_ids = not_active.append(drained.index[drained.to_numpy()])
    joined_later = customers.loc[not_active, "join_date"] >= as_of
    excluded = customers.loc[excluded_ids, ["segment", "region", "branch_id"]].copy()
    excluded.insert(0, "status", "excluded")
    excluded["exclusion_reason"] = [
        "not a customer yet: joined on or after the as-of date"
        if later
        else "already churned: every product closed"
        for later in joined_later
    ] + ["already churned: assets drained at the last month-end"] * int(drained.sum())
    excluded.index.name = "customer_id"
    scored["exclusion_reason"] = None
    rows = pd.concat([scored, excluded])
    for column in ("contact", "control_group"):  # missing for excluded customers
        rows[column] = rows[column].astype("boolean")
    rows.insert(0, "as_of", as_of.date())
    rows.insert(1, "model_version", model_version)
    rows.index.name = "customer_id"
    return rows, to_score


def retention_line(config: AppConfig) -> str:
    """Apply the retention periods (the daily job is what runs every day) and say what went."""
    from serving.privacy import describe, expire

    removed = {place: n for place, n in expire(config).items() if n}
    return f"retention             {'removed ' + describe(removed) if removed else 'nothing past its retention period'}"


def trigger_counts(triggers: pd.DataFrame, config: AppConfig) -> dict[str, dict[str, int]]:
    """Customers and contacts per trigger list, every configured list present."""
    counts = triggers.groupby("trigger")["contact"].agg(["size", "sum"]) if len(triggers) else None
    return {
        name: {
            "customers": int(counts.loc[name, "size"]) if counts is not None and name in counts.index else 0,
            "contacts": int(counts.loc[name, "sum"]) if counts is not None and name in counts.index else 0,
        }
        for name in config.triggers.lists
    }
