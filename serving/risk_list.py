"""The daily risk list: score every customer with the champion model and write what the team reads.

Every customer in the customer table ends in exactly one place: the scored list (contacted or
not, with the rule that decided), the excluded rows with their reason (not active, already
churned), or the validation rejects.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from churn.config import AppConfig
from serving.model_bundle import categoricals_as_text
from serving.registry import load_champion
from serving.store import (
    LIST_TABLE,
    RUNS_TABLE,
    api_contacts,
    append_daily_tables,
    clear_daily_tables,
    index_daily_tables,
    make_engine,
)


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


def staging_folder(out_dir: Path, as_of: str) -> Path:
    """An empty folder to write one date's files into before `publish` swaps it in."""
    staging = out_dir / f".{as_of}.writing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def publish(staging: Path, digest: ListDigest, meta: dict[str, Any]) -> Path:
    """Add the metadata and the HTML page, then replace that date's folder whole."""
    (staging / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    (staging / "summary.html").write_text(summary_html(digest, meta))
    final = staging.parent / f"{meta['as_of']}"
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)  # readers see the old folder or the new one, never half of one
    return final


def write_files(
    digest: ListDigest, table: pd.DataFrame, features: pd.DataFrame, meta: dict[str, Any], out_dir: Path
) -> Path:
    """Write Parquet and CSV (`table`), the scored feature rows (`features.parquet`, which
    monitoring compares with the model's training reference), metadata and the HTML page for one
    date; replaces that date's folder whole."""
    staging = staging_folder(out_dir, meta["as_of"])
    table.to_parquet(staging / "risk_list.parquet", index=False)
    table.to_csv(staging / "risk_list.csv", index=False)
    categoricals_as_text(features).to_parquet(staging / "features.parquet")
    return publish(staging, digest, meta)


def write_database(
    batches: Iterable[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]],
    meta: dict[str, Any],
    url: str,
) -> None:
    """Replace this date's list and run record, the latest feature rows and customer context, and
    the bank's contacts in the contact history, in one transaction.

    `batches`: (the list's rows as stored, their feature rows, their customers' context, their
    bank contacts) per group of customers: the local engine passes one, the dask engine one per
    partition and never holds more than one in memory.
    """
    engine = make_engine(url)
    as_of = meta["as_of"]
    recorded_at = pd.Timestamp(meta["created_at"])
    try:
        with engine.begin() as connection:
            inspector = sa.inspect(connection)
            for name in (LIST_TABLE, RUNS_TABLE):
                if inspector.has_table(name):
                    connection.execute(sa.text(f"DELETE FROM {name} WHERE as_of = :as_of"), {"as_of": as_of})
            clear_daily_tables(connection)
            for table, features, context, contacts in batches:
                table = table.assign(as_of=as_of)
                table.to_sql(LIST_TABLE, connection, if_exists="append", index=False, chunksize=20_000)
                append_daily_tables(connection, features, context, contacts, as_of, recorded_at)
            index_daily_tables(connection)
            run = pd.DataFrame(
                [
                    {"as_of": as_of, "meta": json.dumps(meta, default=str)}
                    | {
                        k: meta[k]
                        for k in ("model_version", "scored", "excluded", "contacts_planned", "created_at")
                    }
                ]
            )
            run.to_sql(RUNS_TABLE, connection, if_exists="append", index=False)
    finally:
        engine.dispose()


_NORMALISED_RULE = (r"\d+ days ago", "N days ago")


@dataclass(frozen=True)
class ListDigest:
    """What the summary and the HTML page show of a day's list: counts and sums over the scored
    customers, and the contacted rows themselves (at most the teams' capacity). Digests of
    disjoint sets of customers add up (`combine`), so the dask engine builds one per partition."""

    scored: int
    tiers: pd.Series  # customers per risk tier
    value_at_risk: float
    control_group: int
    by_segment: pd.DataFrame  # value_at_risk, customers, contacts
    by_region: pd.DataFrame
    reasons: pd.Series  # customers per top reason code
    decisions: pd.Series  # customers per contact rule ("N days ago" for the gap rule)
    contacted: pd.DataFrame  # the contacted rows, by list rank

    @classmethod
    def of(cls, rows: pd.DataFrame) -> ListDigest:
        scored = rows[rows["status"] == "scored"]
        contacted = scored[scored["contact"].astype(bool)].sort_values("list_rank")

        def by(column: str) -> pd.DataFrame:
            groups = scored.groupby(column, observed=True)
            summary = groups[["value_at_risk"]].sum()
            summary["customers"] = groups.size()
            summary["contacts"] = groups["contact"].sum().astype(int)
            return summary

        return cls(
            scored=len(scored),
            tiers=scored["risk_tier"].value_counts().reindex(["high", "medium", "low"], fill_value=0),
            value_at_risk=float(scored["value_at_risk"].sum()),
            control_group=int(scored["control_group"].sum()),
            by_segment=by("segment"),
            by_region=by("region"),
            reasons=scored["reason_1_code"].value_counts(),
            decisions=scored["contact_rule"].str.replace(*_NORMALISED_RULE, regex=True).value_counts(),
            contacted=contacted,
        )

    @classmethod
    def combine(cls, digests: list[ListDigest]) -> ListDigest:
        def add(parts: list) -> Any:
            return pd.concat(parts).groupby(level=0).sum()

        return cls(
            scored=sum(d.scored for d in digests),
            tiers=add([d.tiers for d in digests]).reindex(["high", "medium", "low"], fill_value=0),
            value_at_risk=sum(d.value_at_risk for d in digests),
            control_group=sum(d.control_group for d in digests),
            by_segment=add([d.by_segment for d in digests]),
            by_region=add([d.by_region for d in digests]),
            reasons=add([d.reasons for d in digests]).sort_values(ascending=False, kind="stable"),
            decisions=add([d.decisions for d in digests]).sort_values(ascending=False, kind="stable"),
            contacted=pd.concat([d.contacted for d in digests]).sort_values("list_rank"),
        )


def summary_lines(digest: ListDigest, meta: dict[str, Any], top: int = 10) -> list[str]:
    contacted, tiers = digest.contacted, digest.tiers
    lines = [
        f"as-of date            {meta['as_of']} (champion model version {meta['model_version']})",
        f"customers             {meta['customers']} in all: {meta['scored']} scored, {meta['excluded']} excluded, "
        f"{meta['rejected_customers']} rejected by validation",
        f"risk tiers            high {tiers['high']}, medium {tiers['medium']}, low {tiers['low']}",
        f"value at risk         {digest.value_at_risk:,.0f} in all, {contacted['value_at_risk'].sum():,.0f} in today's list",
        f"contacts planned      {len(contacted)}: "
        + ", ".join(f"{team} {n}" for team, n in contacted["action_owner"].value_counts().items()),
        f"control group         {digest.control_group} scored, never contacted",
        f"top {top} by expected saving:",
    ]
    for customer_id, row in contacted.head(top).iterrows():
        lines.append(
            f"  {int(row['list_rank']):>3}. customer {customer_id}  P={row['churn_probability']:.2f}  value {row['value']:,.0f}  "
            f"saving {row['expected_saving']:,.0f}  {row['action']}: {row['reason_1_text']}"
        )
    return lines


def summary_html(digest: ListDigest, meta: dict[str, Any]) -> str:
    """A self-contained page of the day's list: tiers, value at risk, top reasons, planned actions."""
    contacted = digest.contacted

    def table(frame: pd.DataFrame, index: bool = True) -> str:
        return frame.to_html(
            classes="t", border=0, float_format=lambda v: f"{v:,.2f}", na_rep="", index=index
        )

    def ordered(summary: pd.DataFrame) -> pd.DataFrame:
        return summary.sort_values("value_at_risk", ascending=False)

    reasons = digest.reasons.rename_axis("top reason").to_frame("customers")
    actions = (
        contacted.groupby(["action", "action_owner"])
        .agg(customers=("action", "size"), expected_saving=("expected_saving", "sum"))
        .reset_index()
    )
    listing = contacted.head(50).assign(list_rank=lambda f: f["list_rank"].astype(int))[
        [
            "list_rank",
            "churn_probability",
            "value",
            "expected_saving",
            "action",
            "action_owner",
            "branch_id",
            "reason_1_text",
            "next_product_1",
        ]
    ]
    tiers = digest.tiers.to_frame("customers")
    title = f"Retention risk list {html.escape(str(meta['as_of']))}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}h1{{font-size:1.4rem}}
h2{{font-size:1.1rem;margin-top:2rem}}table.t{{border-collapse:collapse;font-size:.85rem}}
table.t td,table.t th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}}
table.t th{{background:#f3f3f3}}.k{{display:inline-block;margin-right:2rem}}.k b{{font-size:1.3rem;display:block}}</style>
</head><body><h1>{title}</h1>
<p>Champion model version {html.escape(str(meta["model_version"]))}; data up to {html.escape(str(meta["data_end"]))}.
Customer ids are the bank's own; no names or contact details appear here.</p>
<div><span class="k"><b>{meta["scored"]:,}</b>customers scored</span>
<span class="k"><b>{len(contacted):,}</b>contacts planned today</span>
<span class="k"><b>{contacted["expected_saving"].sum():,.0f}</b>expected net saving of the list</span>
<span class="k"><b>{digest.value_at_risk:,.0f}</b>value at risk, all scored</span></div>
<h2>Risk tiers</h2>{table(tiers)}
<h2>Value at risk by segment</h2>{table(ordered(digest.by_segment))}
<h2>Value at risk by region</h2>{table(ordered(digest.by_region))}
<h2>Top reasons (customers at or above the reporting threshold)</h2>{table(reasons)}
<h2>Planned actions</h2>{table(actions, index=False)}
<h2>Contact decisions: the rule that decided for each scored customer</h2>{table(digest.decisions.to_frame("customers"))}
<h2>Today's list (first 50 of {len(contacted)})</h2>{table(listing)}
<p>Excluded from scoring: {meta["excluded"]} customers ({html.escape(json.dumps(meta["exclusions"]))}).</p>
</body></html>"""


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
    validated = load_validated(config)
    tables = validated.tables
    as_of = pd.Timestamp(as_of) if as_of is not None else default_as_of(tables)
    steps.update()
    bundle, version = load_champion(config)
    rows, features = build_risk_list(
        tables, bundle, version, as_of, config, recorded_contacts=api_contacts(config.database_url)
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
        "rejects": validated.reject_counts,
        "contacts_planned": int(rows["contact"].fillna(False).sum()),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
    }
    # the rows as files and databases store them: plain text, customer id as a column
    table = categoricals_as_text(rows).reset_index()
    digest = ListDigest.of(rows)
    out_dir = write_files(digest, table, features, meta, config.output_path / "risk_lists")
    steps.update()
    meta["seconds"] = round(time.perf_counter() - started, 2)
    context = tables["customers"].set_index("customer_id").loc[features.index]
    write_database([(table, features, context, tables["contacts"])], meta, config.database_url)
    steps.update()
    steps.close()
    lines = summary_lines(digest, meta) + [
        f"written to            {out_dir} (risk_list.parquet, risk_list.csv, summary.html) and {LIST_TABLE} in "
        f"{sa.make_url(config.database_url).render_as_string(hide_password=True)}",
        f"took                  {time.perf_counter() - started:.1f} s",
    ]
    return RiskListRun(as_of, version, rows, meta, out_dir), lines
