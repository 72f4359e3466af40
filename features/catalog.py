"""The feature catalogue: every feature's name, family, meaning and window, in one place.

`build_features` checks its output against this catalogue, and `docs/features.md` is generated
from it (`churn features --doc`), so the documentation cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from features.schema import INCOME_BANDS, REGIONS, SEGMENTS
from features.settings import FeatureConfig

RECENCY_CAP_DAYS = 365  # "days since" features look back this far and read this value when nothing happened

Dtype = Literal["float", "int", "category"]


@dataclass(frozen=True)
class FeatureSpec:
    """One documented feature."""

    name: str
    family: str
    meaning: str
    window: str
    dtype: Dtype = "float"
    categories: tuple[str, ...] | None = None
    # the values the definition allows (counts are never negative, shares lie in [0, 1]);
    # None: unbounded on that side
    minimum: float | None = None
    maximum: float | None = None


def feature_catalog(config: FeatureConfig, products: tuple[str, ...]) -> list[FeatureSpec]:
    """All features `build_features` produces, in output order."""
    windows = config.windows_days
    specs: list[FeatureSpec] = [
        FeatureSpec("tenure_days", "profile", "days since the customer joined", "all history", "int"),
        FeatureSpec("age", "profile", "age in years at the as-of date (from birth year)", "-", "int"),
        FeatureSpec("segment", "profile", "customer segment", "-", "category", SEGMENTS),
        FeatureSpec("region", "profile", "region of the home branch", "-", "category", REGIONS),
        FeatureSpec("income_band", "profile", "declared monthly income band", "-", "category", INCOME_BANDS),
        FeatureSpec(
            "declared_payroll", "profile", "1 if salary was declared as paid in at onboarding", "-", "int"
        ),
    ]
    for w in windows:
        specs += [
            FeatureSpec(f"txn_count_{w}d", "rfm", "number of transactions", f"{w} days", "int"),
            FeatureSpec(f"inflow_{w}d", "rfm", "money in (all incoming transactions)", f"{w} days"),
            FeatureSpec(f"outflow_{w}d", "rfm", "money out (all outgoing transactions)", f"{w} days"),
        ]
    specs += [
        FeatureSpec(
            "days_since_last_txn", "rfm", "days since the last transaction", f"capped at {RECENCY_CAP_DAYS}"
        ),
        FeatureSpec(
            "assets_latest", "balance", "deposits + investments at the last month-end", "last month-end"
        ),
        FeatureSpec("deposits_latest", "balance", "deposits at the last month-end", "last month-end"),
        FeatureSpec("investments_latest", "balance", "investments at the last month-end", "last month-end"),
        FeatureSpec("loans_latest", "balance", "outstanding loans at the last month-end", "last month-end"),
    ]
    for months in (1, 3, 6):
        specs.append(
            FeatureSpec(
                f"assets_change_{months}m",
                "balance",
                f"relative change of assets over {months} month(s): (now - then) / max(then, 100)",
                f"{months} month-ends",
            )
        )
    specs += [
        FeatureSpec(
            "assets_slope_6m",
            "balance",
            "least-squares slope of assets per month / mean assets",
            "6 month-ends",
        ),
        FeatureSpec("assets_drawdown_6m", "balance", "1 - assets now / peak assets", "6 month-ends"),
        FeatureSpec("external_out_30d", "outflow", "money transferred to other banks", "30 days"),
        FeatureSpec("external_out_90d", "outflow", "money transferred to other banks", "90 days"),
        FeatureSpec(
            "external_out_share_90d", "outflow", "share of all money out that went to other banks", "90 days"
        ),
        FeatureSpec(
            "large_outflows_90d",
            "outflow",
            f"external transfers above {config.large_outflow_share:.0%} of the 6-month average assets",
            "90 days",
            "int",
        ),
        FeatureSpec(
            "external_out_trend",
            "outflow",
            "log((external out last 30 days + 100) / (monthly average of the 90 days before + 100))",
            "30 vs 31-120 days",
        ),
        FeatureSpec("salary_count_180d", "salary", "number of salary payments received", "180 days", "int"),
        FeatureSpec("salary_amount_90d", "salary", "salary received", "90 days"),
        FeatureSpec(
            "days_since_last_salary",
            "salary",
            "days since the last salary payment",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec(
            "salary_stopped",
            "salary",
            f"1 if salary came in during the last 180 days but none in the last {config.salary_gap_days}",
            "180 days",
            "int",
        ),
        FeatureSpec("logins_30d", "engagement", "digital logins", "30 days", "int"),
        FeatureSpec("logins_90d", "engagement", "digital logins", "90 days", "int"),
        FeatureSpec(
            "login_trend",
            "engagement",
            "logins in the last 30 days / monthly average of the 90 days before (+1 smoothing)",
            "30 vs 31-120 days",
        ),
        FeatureSpec(
            "days_since_last_login",
            "engagement",
            "days since the last login",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec(
            "digital_txn_share_90d", "engagement", "share of transactions made on mobile or online", "90 days"
        ),
        FeatureSpec(
            "complaints_90d", "complaints", "complaints about the service (not fees) filed", "90 days", "int"
        ),
        FeatureSpec(
            "complaints_365d",
            "complaints",
            "complaints about the service (not fees) filed",
            "365 days",
            "int",
        ),
        FeatureSpec(
            "unresolved_complaints",
            "complaints",
            "service complaints filed and not resolved by the as-of date",
            "365 days",
            "int",
        ),
        FeatureSpec(
            "oldest_unresolved_complaint_days",
            "complaints",
            "days the oldest unresolved service complaint has been open (0 if none)",
            "365 days",
        ),
        FeatureSpec(
            "days_since_last_complaint",
            "complaints",
            "days since the last service complaint",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec("service_calls_90d", "complaints", "service calls", "90 days", "int"),
        FeatureSpec("branch_visits_90d", "complaints", "branch visits", "90 days", "int"),
        FeatureSpec("fee_complaints_365d", "fees", "complaints about fees and charges", "365 days", "int"),
        FeatureSpec(
            "unresolved_fee_complaints",
            "fees",
            "fee complaints not resolved by the as-of date",
            "365 days",
            "int",
        ),
        FeatureSpec("fees_charged_90d", "fees", "fees and charges debited", "90 days"),
        FeatureSpec(
            "service_incidents_90d",
            "incidents",
            "service incidents that hit the customer (failed payments, declined cards, app errors)",
            "90 days",
            "int",
        ),
        FeatureSpec(
            "service_incidents_180d",
            "incidents",
            "service incidents that hit the customer",
            "180 days",
            "int",
        ),
        FeatureSpec(
            "days_since_last_incident",
            "incidents",
            "days since the last service incident",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec(
            "competitor_gap_latest",
            "competition",
            "best rival savings rate above the bank's own in the customer's region (percentage points, market feed)",
            "last full month",
        ),
        FeatureSpec(
            "competitor_gap_change_3m", "competition", "change of that gap over three months", "4 months"
        ),
        FeatureSpec(
            "competitor_gap_max_6m", "competition", "the highest gap in the last six full months", "6 months"
        ),
        FeatureSpec(
            "saver_competitor_gap",
            "competition",
            "that highest gap (if positive) for customers who held savings or a term deposit 180 days ago; else 0",
            "6 months",
        ),
        FeatureSpec("product_count", "products", "number of products held", "at as-of", "int"),
    ]
    specs += [
        FeatureSpec(
            f"has_{p}", "products", f"1 if the customer holds {p.replace('_', ' ')}", "at as-of", "int"
        )
        for p in products
    ]
    specs += [
        FeatureSpec("products_opened_180d", "products", "products opened", "180 days", "int"),
        FeatureSpec("products_closed_180d", "products", "products closed", "180 days", "int"),
        FeatureSpec(
            "maturities_last_60d",
            "maturities",
            "term deposits that matured",
            f"{config.maturity_window_days} days",
            "int",
        ),
        FeatureSpec(
            "maturing_next_60d",
            "maturities",
            "term deposits due to mature (maturity dates are known when a deposit is opened)",
            f"next {config.maturity_window_days} days",
            "int",
        ),
        FeatureSpec(
            "matured_not_renewed_60d",
            "maturities",
            "1 if a term deposit matured and no new one was opened since",
            f"{config.maturity_window_days} days",
            "int",
        ),
        FeatureSpec(
            "matured_not_renewed_180d",
            "maturities",
            "1 if a term deposit matured in the last 180 days and no new one was opened since",
            "180 days",
            "int",
        ),
        FeatureSpec(
            "days_to_next_maturity",
            "maturities",
            "days until the next term deposit matures",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec("cc_applications_90d", "applications", "credit card applications", "90 days", "int"),
        FeatureSpec(
            "loan_applications_90d",
            "applications",
            "personal loan and mortgage applications",
            "90 days",
            "int",
        ),
        FeatureSpec(
            "days_since_last_application",
            "applications",
            "days since the last product application",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec(
            "address_changes_180d",
            "life_events",
            "changes of address the customer reported",
            "180 days",
            "int",
        ),
        FeatureSpec("pension_payments_90d", "life_events", "pension payments received", "90 days", "int"),
        FeatureSpec("missed_payments_90d", "life_events", "loan or card repayments missed", "90 days", "int"),
        FeatureSpec(
            "missed_payments_365d", "life_events", "loan or card repayments missed", "365 days", "int"
        ),
        FeatureSpec(
            "bereavement_notices_365d", "life_events", "notices that the customer died", "365 days", "int"
        ),
        FeatureSpec(
            "contacts_90d", "contacts", "retention contacts made (control group excluded)", "90 days", "int"
        ),
        FeatureSpec(
            "contacts_365d", "contacts", "retention contacts made (control group excluded)", "365 days", "int"
        ),
        FeatureSpec(
            "days_since_last_contact",
            "contacts",
            "days since the last retention contact",
            f"capped at {RECENCY_CAP_DAYS}",
        ),
        FeatureSpec(
            "last_contact_accepted",
            "contacts",
            "1 if the last contact's offer was accepted",
            "365 days",
            "int",
        ),
        FeatureSpec(
            "offers_accepted_365d",
            "contacts",
            "retention offers the customer was reached with and accepted",
            "365 days",
            "int",
        ),
        FeatureSpec(
            "offers_declined_365d",
            "contacts",
            "retention offers the customer was reached with and declined",
            "365 days",
            "int",
        ),
    ]
    return [_bounded(spec) for spec in specs]


_FLAGS = {
    "declared_payroll",
    "salary_stopped",
    "matured_not_renewed_60d",
    "matured_not_renewed_180d",
    "last_contact_accepted",
}
_AMOUNTS = ("inflow_", "outflow_", "external_out_30d", "external_out_90d", "salary_amount_", "_latest")


def _bounded(spec: FeatureSpec) -> FeatureSpec:
    """The spec with the bounds its definition implies (what a caller's feature row must respect)."""
    from dataclasses import replace

    name = spec.name
    if spec.dtype == "category":
        return spec
    if name in _FLAGS or name.startswith("has_"):
        return replace(spec, minimum=0.0, maximum=1.0)
    if name.startswith("days_since_") or name == "days_to_next_maturity":
        return replace(spec, minimum=0.0, maximum=float(RECENCY_CAP_DAYS))
    if "_share_" in name or name == "assets_drawdown_6m":
        return replace(spec, minimum=0.0, maximum=1.0)
    if name.startswith("assets_change_"):
        return replace(spec, minimum=-1.0)  # (now - then) / max(then, 100) with now >= 0
    if spec.dtype == "int" or name == "login_trend" or any(part in name for part in _AMOUNTS):
        return replace(spec, minimum=0.0)
    if name in ("fees_charged_90d", "oldest_unresolved_complaint_days", "saver_competitor_gap"):
        return replace(spec, minimum=0.0)
    return spec  # trends, slopes and the competitor gap: any real number


def catalog_markdown(config: FeatureConfig, products: tuple[str, ...]) -> str:
    """The catalogue as a Markdown page."""
    lines = [
        "# Feature catalogue",
        "",
        "Generated from `features/catalog.py` by `churn features --doc`; do not edit by hand.",
        "Every feature uses only data strictly before the as-of date. Windows end the day before as-of.",
        "",
        "| feature | family | meaning | window | type |",
        "|---|---|---|---|---|",
    ]
    for spec in feature_catalog(config, products):
        lines.append(f"| `{spec.name}` | {spec.family} | {spec.meaning} | {spec.window} | {spec.dtype} |")
    return "\n".join(lines) + "\n"
