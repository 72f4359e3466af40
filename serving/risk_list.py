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
import sqlalchemy as sa

from churn.config import AppConfig
from serving.actions import ranking_mode
from serving.list_summary import ListDigest, latest_impact, summary_html, summary_lines
from serving.model_bundle import categoricals_as_text
from serving.publish import finish_version, new_version, publish, reconcile, write_database
from serving.registry import load_champion
from serving.store import LIST_TABLE, api_contacts, contact_window
from serving.triggers import decide_triggers, trigger_candidates


@dataclass(frozen=True)
class RiskListRun:
    as_of: pd.Timestamp
    model_version: str
    rows: pd.DataFrame | None  # scored and excluded customers (None on the dask engine: too many)
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


def last_data_day(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The latest day with data: the last month-end or the last transaction, whichever is later."""
    return (
        pd.Series([tables["balances"]["month_end"].max(), tables["transactions"]["ts"].max()])
        .max()
        .normalize()
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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score the customers active at `as_of` and list everyone else with the reason they are not scored.

    `recorded_contacts` (customer_id, ts, control_group): contacts recorded through the API since
    the bank's extract; the contact policy counts them with the bank's own.

    Returns:
        (rows for every customer: scored and excluded, the feature rows that were scored).
    """
    from features.build import build_features
    from features.labels import drained_before
    from serving.scoring import ScoringContext, score_customers

    products = tuple(config.products)
    customers = tables["customers"].set_index("customer_id")
    features = build_features(tables, as_of, config.features, products)
    drained = drained_before(tables, as_of, config.labels).reindex(features.index, fill_value=False)
    to_score = features[~drained.to_numpy()]
    contacts = tables["contacts"][["customer_id", "ts", "control_group"]]
    if recorded_contacts is not None and len(recorded_contacts):
        contacts = pd.concat([contacts, recorded_contacts[contacts.columns]], ignore_index=True)
        contacts = contacts.drop_duplicates(["customer_id", "ts"])
    context = ScoringContext(as_of, customers, contacts)
    scored = score_customers(bundle, to_score, context, config)
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


def write_files(folder: Path, table: pd.DataFrame, features: pd.DataFrame, triggers: pd.DataFrame) -> None:
    """The list and the trigger lists as Parquet and CSV and the scored feature rows
    (`features.parquet`, which monitoring compares with the model's training reference), into a
    version folder."""
    table.to_parquet(folder / "risk_list.parquet", index=False)
    table.to_csv(folder / "risk_list.csv", index=False)
    triggers.to_parquet(folder / "triggers.parquet", index=False)
    triggers.to_csv(folder / "triggers.csv", index=False)
    categoricals_as_text(features).to_parquet(folder / "features.parquet")


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


def run_daily_list(config: AppConfig, as_of: pd.Timestamp | None = None) -> tuple[RiskListRun, list[str]]:
    """Validate, score every customer with the champion, write files and the database, summarise."""
    if config.engine.kind == "dask":
        from churn.cluster import dask_client
        from serving.distributed import run_daily_list_dask

        with dask_client(config.engine) as client:
            return run_daily_list_dask(config, client, as_of)
    from tqdm import tqdm

    from features.jobs import load_validated

    started = time.perf_counter()
    steps = tqdm(total=4, desc="risk list", unit="step", disable=None)
    reconcile(config.output_path / "risk_lists", config.database_url)  # finish a run killed mid-publish
    validated = load_validated(config)
    tables = validated.tables
    as_of = pd.Timestamp(as_of) if as_of is not None else default_as_of(tables)
    check_as_of(as_of, tables["balances"]["month_end"].min(), last_data_day(tables))
    steps.update()
    bundle, version = load_champion(config)
    recorded, rejected_contacts = read_recorded_contacts(config, config.output_path / "rejects")
    rows, features = build_risk_list(tables, bundle, version, as_of, config, recorded_contacts=recorded)
    scored = rows[rows["status"] == "scored"]
    triggers = decide_triggers(
        trigger_candidates(features, scored, config),
        scored[scored["contact"].fillna(False).astype(bool)],
        config,
    )
    steps.update()
    excluded = rows[rows["status"] == "excluded"]
    meta = {
        "as_of": f"{as_of:%Y-%m-%d}",
        "model_version": version,
        "model_name": config.mlflow.model_name,
        "data_source": config.data.source,
        "data_start": f"{tables['balances']['month_end'].min():%Y-%m-%d}",
        "data_end": f"{tables['balances']['month_end'].max():%Y-%m-%d}",
        "customers": len(validated.tables["customers"]) + validated.reject_counts["customers"],
        "scored": int((rows["status"] == "scored").sum()),
        "excluded": len(excluded),
        "exclusions": excluded["exclusion_reason"].value_counts().to_dict(),
        "rejected_customers": validated.reject_counts["customers"],
        "rejects": validated.reject_counts | {"contact_history": rejected_contacts},
        "contacts_planned": int(rows["contact"].fillna(False).sum()),
        "ranking": dict(zip(("mode", "why"), ranking_mode(bundle, config), strict=True)),
        "triggers": trigger_counts(triggers, config),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    }
    # the rows as files and databases store them: plain text, customer id as a column
    table = categoricals_as_text(rows).reset_index()
    digest = ListDigest.of(rows)
    folder = new_version(config.output_path / "risk_lists", meta["as_of"])
    write_files(folder, table, features, triggers)
    steps.update()
    meta["seconds"] = round(time.perf_counter() - started, 2)  # up to the commit, which follows at once
    finish_version(folder, meta, summary_html(digest, meta, latest_impact(config.output_path)))
    context = tables["customers"].set_index("customer_id").loc[features.index]
    write_database([(table, features, context, tables["contacts"])], meta, config.database_url, triggers)
    out_dir = publish(folder)
    steps.update()
    steps.close()
    lines = summary_lines(digest, meta) + [
        f"written to            {out_dir} (risk_list, triggers: .parquet and .csv; summary.html) and {LIST_TABLE} in "
        f"{sa.make_url(config.database_url).render_as_string(hide_password=True)}",
        retention_line(config),
        f"took                  {time.perf_counter() - started:.1f} s",
    ]
    return RiskListRun(as_of, version, rows, meta, out_dir), lines
