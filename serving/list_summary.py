"""What a day's list shows in a summary: counts and sums (`ListDigest`), the CLI lines and the page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

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
    ]
    if meta["rejects"].get("contact_history"):
        lines.append(
            f"recorded contacts     {meta['rejects']['contact_history']} rejected: dated outside the allowed "
            "range, not counted by the contact policy (rejects/contact_history.csv)"
        )
    # customer ids stay in the list's files and tables: a summary ends up in job logs
    lines.append(f"top {top} by expected saving (ids in risk_list.csv):")
    for _, row in contacted.head(top).iterrows():
        lines.append(
            f"  {int(row['list_rank']):>3}. branch {row['branch_id']}  P={row['churn_probability']:.2f}  "
            f"value {row['value']:,.0f}  saving {row['expected_saving']:,.0f}  {row['action']}: "
            f"{row['reason_1_text']}"
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
