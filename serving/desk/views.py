"""What each desk page shows, from `DeskData`: the query parameters checked, the rows shaped for
the templates, the charts drawn (`serving.desk.charts`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import sqlalchemy as sa

from serving.desk import charts
from serving.desk.data import FILTERS, SORTS, DeskData, ListQuery
from serving.desk.users import DeskUser
from serving.policy import contact_history_arrays
from serving.store import ServingStore
from serving.tables import CONTEXT_TABLE

DECISIONS = {"contact": "contact", "no-contact": "no contact"}
REASON_COUNT = 3


class QueryError(ValueError):
    """A query parameter the list cannot use; the message names it."""


def list_query(params: Mapping[str, str], page_size: int) -> ListQuery:
    unknown = sorted(set(params) - {*FILTERS, "decision", "q", "sort", "order", "page"})
    if unknown:
        raise QueryError(f"{unknown[0]}: not a filter of the list")
    filters = {k: params[k] for k in FILTERS if params.get(k)}
    decision = params.get("decision") or None
    if decision is not None and decision not in DECISIONS:
        raise QueryError("decision: contact or no-contact")
    q = (params.get("q") or "").strip()
    if q and not q.isdigit():
        raise QueryError("q: a customer id is a whole number")
    sort = params.get("sort") or "rank"
    if sort not in SORTS:
        raise QueryError(f"sort: one of {', '.join(SORTS)}")
    order = params.get("order") or ("asc" if sort in ("rank", "customer") else "desc")
    if order not in ("asc", "desc"):
        raise QueryError("order: asc or desc")
    page = params.get("page") or "1"
    if not page.isdigit() or int(page) < 1 or int(page) > 100_000:
        raise QueryError("page: a whole number from 1")
    return ListQuery(
        filters=filters,
        decision=DECISIONS.get(decision) if decision else None,
        customer_id=int(q) if q else None,
        sort=sort,
        descending=order == "desc",
        page=int(page),
        page_size=page_size,
    )


def _branch(user: DeskUser) -> str | None:
    return user.branch_id if user.role == "branch" else None


def list_context(data: DeskData, config: Any, user: DeskUser, params: Mapping[str, str]) -> dict[str, Any]:
    as_of = data.latest_as_of()
    if as_of is None:
        return {"as_of": None, "rows": [], "total": 0, "params": dict(params)}
    choices = data.choices(as_of, _branch(user))
    try:
        query = list_query(params, config.desk.page_size)
    except QueryError as exc:
        return {
            "as_of": as_of,
            "rows": [],
            "total": 0,
            "params": dict(params),
            "choices": choices,
            "error": str(exc),
        }
    total, page = data.list_page(as_of, query, _branch(user))
    pages = max(1, -(-total // query.page_size))
    keep = {k: v for k, v in params.items() if k != "page" and v}
    return {
        "as_of": as_of,
        "rows": page.to_dict("records"),
        "total": total,
        "page": query.page,
        "pages": pages,
        "params": keep,
        "choices": choices,
        "query": query,
        "export_query": urlencode(keep),
    }


def export_frame(
    data: DeskData, config: Any, user: DeskUser, params: Mapping[str, str]
) -> tuple[pd.DataFrame, str]:
    from starlette.exceptions import HTTPException

    as_of = data.latest_as_of()
    if as_of is None:
        raise HTTPException(404, "no list has been published yet")
    try:
        query = list_query(params, config.desk.page_size)
    except QueryError as exc:
        raise HTTPException(400, str(exc)) from None
    return data.export(as_of, query, _branch(user)), str(as_of)


def join_date(store: ServingStore, customer_id: int) -> Any:
    """The customer's join date from the context the daily job wrote (None if unknown)."""
    if not sa.inspect(store.engine).has_table(CONTEXT_TABLE):
        return None
    with store.engine.connect() as connection:
        return connection.execute(
            sa.text(f"SELECT join_date FROM {CONTEXT_TABLE} WHERE customer_id = :id"), {"id": customer_id}
        ).scalar()


def customer_context(data: DeskData, config: Any, row: dict[str, Any], as_of: str) -> dict[str, Any]:
    reasons = [
        {
            "text": row.get(f"reason_{k}_text"),
            "code": row.get(f"reason_{k}_code"),
            "contribution": row.get(f"reason_{k}_contribution"),
        }
        for k in range(1, REASON_COUNT + 1)
        if row.get(f"reason_{k}_text")
    ]
    chart = (
        charts.contributions(
            [r["code"] or r["text"] for r in reasons],
            [float(r["contribution"] or 0.0) for r in reasons],
            "what drives this customer's churn score",
        )
        if reasons
        else None
    )
    trend = data.trend(row["customer_id"])
    trend_chart = (
        charts.trend(
            [str(d) for d in trend["as_of"]],
            trend["churn_probability"].tolist(),
            "churn probability on past lists",
        )
        if len(trend) > 1
        else None
    )
    products = [
        (row.get(f"next_product_{k}"), row.get(f"next_product_{k}_propensity"))
        for k in (1, 2, 3)
        if row.get(f"next_product_{k}")
    ]
    contacts = data.contacts(row["customer_id"])
    policy = config.contact_policy
    # the policy's counts as of now, from every contact recorded so far (an outcome entered a
    # minute ago counts), by the same function the list and the API use
    made = ~contacts["control_group"].fillna(False).astype(bool).to_numpy()
    live = contact_history_arrays(
        np.full(len(contacts), row["customer_id"]),
        pd.to_datetime(contacts["contacted_at"]).to_numpy(dtype="datetime64[ns]"),
        ~made,
        [row["customer_id"]],
        pd.Timestamp.now(tz="UTC").tz_localize(None),
    )
    last = pd.to_datetime(contacts["contacted_at"][made]).max() if made.any() else None
    again = last + pd.Timedelta(days=policy.min_days_between_contacts) if last is not None else None
    actions = list(config.playbook.actions) if config.playbook else []
    return {
        "as_of": as_of,
        "row": row,
        "reasons": reasons,
        "chart": chart,
        "trend_chart": trend_chart,
        "trend": trend.to_dict("records"),
        "products": products,
        "contacts": contacts.to_dict("records"),
        "contactable_again": again,
        "contacts_quarter": int(live["contacts_last_quarter"][0]),
        "days_since_contact": live["days_since_last_contact"][0],
        "policy": policy,
        "actions": actions,
    }


def overview_context(data: DeskData, user: DeskUser) -> dict[str, Any]:
    as_of = data.latest_as_of()
    if as_of is None:
        return {"as_of": None}
    groups = data.overview(as_of)
    out: dict[str, Any] = {"as_of": as_of, "tables": {}, "charts": {}}
    for name, label in (
        ("risk_tier", "risk tier"),
        ("segment", "segment"),
        ("region", "region"),
        ("branch_id", "branch"),
    ):
        frame = groups[name].fillna({"group": "unknown"})
        out["tables"][label] = frame.to_dict("records")
        out["charts"][label] = charts.bars(
            frame["group"].astype(str).tolist(),
            frame["value_at_risk"].fillna(0).tolist(),
            f"value at risk by {label}",
            "value at risk",
        )
    types = groups["types"]
    if len(types):
        wide = types.pivot_table(
            index="as_of", columns="churn_type", values="customers", aggfunc="sum"
        ).fillna(0)
        out["types_chart"] = charts.stacked(
            [str(d) for d in wide.index],
            {str(c): wide[c].tolist() for c in wide.columns},
            "kinds of churn on each list",
            "customers at medium or high risk",
        )
    impact = data.impact()
    if impact is not None:
        month, overall, by_action = impact
        out["impact_month"] = month
        out["impact"] = overall.reset_index().to_dict("records")
        rows = by_action.reset_index()
        out["impact_actions"] = rows.to_dict("records")
        have = rows.dropna(
            subset=["incremental_customers", "incremental_customers_low", "incremental_customers_high"]
        )
        if len(have):
            out["impact_chart"] = charts.intervals(
                have.iloc[:, 0].astype(str).tolist(),
                have["incremental_customers"].tolist(),
                have["incremental_customers_low"].tolist(),
                have["incremental_customers_high"].tolist(),
                "customers kept by each action, with 95% intervals",
                "customers kept against the control group",
            )
    out["alerts"] = data.alerts().to_dict("records")
    return out


__all__ = ["QueryError", "customer_context", "export_frame", "list_context", "list_query", "overview_context"]
