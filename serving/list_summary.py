"""What a day's list shows in a summary: counts and sums (`ListDigest`), the CLI lines and the page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from markupsafe import Markup

# a contact rule's per-customer figures, so that the decisions count one line per rule
_NORMALISED_RULES = (
    (r"\d+ days ago", "N days ago"),
    (r"predicted take-up \d+%, below", "predicted take-up below"),
)
CHURN_TYPE_ORDER = ["service_failure", "competitive", "natural", "unclear"]


def _normalised(rules: pd.Series) -> pd.Series:
    for pattern, replacement in _NORMALISED_RULES:
        rules = rules.str.replace(pattern, replacement, regex=True)
    return rules


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
    churn_types: pd.Series  # customers explained, per kind of churn
    decisions: pd.Series  # customers per contact rule (`_NORMALISED_RULES`: "N days ago", ...)
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
            churn_types=scored["churn_type"].value_counts().reindex(CHURN_TYPE_ORDER, fill_value=0),
            decisions=_normalised(scored["contact_rule"]).value_counts(),
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
            churn_types=add([d.churn_types for d in digests]).reindex(CHURN_TYPE_ORDER, fill_value=0),
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
        f"ranking               {meta['ranking']['mode']} ({meta['ranking']['why']})"
        if "ranking" in meta
        else "ranking               not recorded",
        *(
            [f"action valued by      {meta['ranking']['playbook_effect']}"]
            if "playbook_effect" in meta.get("ranking", {})
            else []
        ),
        *(
            [f"take-up floor         {meta['ranking']['take_up_floor']}"]
            if "take_up_floor" in meta.get("ranking", {})
            else []
        ),
        "churn types           "
        + ", ".join(f"{kind} {n}" for kind, n in digest.churn_types.items())
        + " (customers at or above the reporting threshold)",
        "first reasons         " + ", ".join(f"{code} {n}" for code, n in digest.reasons.head(6).items()),
        "trigger lists         "
        + (
            ", ".join(
                f"{name} {c['contacts']} of {c['customers']}" for name, c in meta.get("triggers", {}).items()
            )
            or "none configured"
        )
        + " (contacts of customers)",
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
            f"value {row['value']:,.0f}  saving {row['expected_saving']:,.0f}  {row['churn_type']}  {row['action']}: "
            f"{row['reason_1_text']}"
        )
    return lines


def latest_impact_folder(output_dir: Path) -> Path | None:
    """The latest `churn impact` output folder (`<output>/impact/<month>/`), if any."""
    folders = sorted(p for p in (Path(output_dir) / "impact").glob("*") if (p / "overall.csv").exists())
    return folders[-1] if folders else None


def latest_impact(output_dir: Path) -> tuple[str, pd.DataFrame, pd.DataFrame] | None:
    """The latest `churn impact` figures (month, the overall row, the per-action rows), if any."""
    latest = latest_impact_folder(output_dir)
    if latest is None:
        return None
    return (
        latest.name,
        pd.read_csv(latest / "overall.csv", index_col=0),
        pd.read_csv(latest / "action.csv", index_col=0),
    )


IMPACT_COLUMNS = [
    "contacted",
    "controls",
    "churn_rate_contacted",
    "churn_rate_control",
    "incremental_customers",
    "incremental_customers_low",
    "incremental_customers_high",
    "value_kept",
    "cost",
    "net_value",
    "verdict",
]


def summary_html(
    digest: ListDigest, meta: dict[str, Any], impact: tuple[str, pd.DataFrame, pd.DataFrame] | None = None
) -> str:
    """A self-contained page of the day's list (templates/summary.html): the kinds of churn,
    tiers, value at risk, the causes, planned actions, trigger lists, who is not contacted, and
    what past campaigns kept against their control groups (`impact`, from `latest_impact`)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    contacted = digest.contacted

    def table(frame: pd.DataFrame, index: bool = True) -> Markup:
        # pandas escapes the cells; the markup it builds is the table itself
        return Markup(
            frame.to_html(classes="t", border=0, float_format=lambda v: f"{v:,.2f}", na_rep="", index=index)
        )

    def ordered(summary: pd.DataFrame) -> pd.DataFrame:
        return summary.sort_values("value_at_risk", ascending=False)

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
            "churn_type",
            "action",
            "action_owner",
            "branch_id",
            "reason_1_text",
            "evidence",
            "action_why",
            "next_product_1",
        ]
    ]
    triggers = pd.DataFrame.from_dict(meta.get("triggers", {}), orient="index").rename_axis("trigger")
    explained = digest.churn_types.drop("unclear", errors="ignore").sum()
    own_fault = digest.churn_types.get("service_failure", 0) / explained if explained else 0.0
    environment = Environment(loader=PackageLoader("serving", "templates"), autoescape=select_autoescape())
    return environment.get_template("summary.html").render(
        meta=meta,
        digest=digest,
        planned=len(contacted),
        saving=float(contacted["expected_saving"].sum()),
        own_fault=f"{own_fault:.0%}",
        exclusions=json.dumps(meta["exclusions"]),
        tables={
            "churn_types": table(digest.churn_types.rename_axis("churn type").to_frame("customers")),
            "tiers": table(digest.tiers.to_frame("customers")),
            "by_segment": table(ordered(digest.by_segment)),
            "by_region": table(ordered(digest.by_region)),
            "reasons": table(digest.reasons.rename_axis("first reason").to_frame("customers")),
            "actions": table(actions, index=False),
            "triggers": table(triggers) if len(triggers) else "none configured",
            "decisions": table(digest.decisions.to_frame("customers")),
            "listing": table(listing),
            "impact": None
            if impact is None
            else table(
                pd.concat([impact[1], impact[2]])[[c for c in IMPACT_COLUMNS if c in impact[1].columns]]
            ),
        },
        impact_month=None if impact is None else impact[0],
    )
