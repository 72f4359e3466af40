"""What the desk's pages read: the tables the daily job and the API write (`serving.tables`), the
monitoring alerts, the latest campaign impact, and the desk's own access audit log.

Every query takes its filters as bound parameters on reflected tables; sort columns come from a
fixed list. Branch staff see their branch only: the branch is forced into every list query.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.tables import LIST_TABLE, contact_history, metadata

# what a user may filter the list by: query parameter -> column
FILTERS = {
    "team": "action_owner",
    "branch": "branch_id",
    "tier": "risk_tier",
    "churn_type": "churn_type",
    "action": "action",
    "segment": "segment",
    "region": "region",
}
SORTS = {
    "rank": "list_rank",
    "probability": "churn_probability",
    "value_at_risk": "value_at_risk",
    "saving": "expected_saving",
    "customer": "customer_id",
}
LIST_COLUMNS = [
    "customer_id",
    "branch_id",
    "segment",
    "region",
    "churn_probability",
    "risk_tier",
    "value_at_risk",
    "churn_type",
    "reason_1_text",
    "action",
    "action_owner",
    "expected_saving",
    "contact",
    "contact_rule",
    "list_rank",
]

desk_access_log = sa.Table(
    "desk_access_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("logged_at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("page", sa.String(32), nullable=False),  # customer, outcome, export
    sa.Column("customer_key", sa.String(64)),  # keyed hash of the customer id, never the id
    sa.Column("entry_id", sa.String(32), unique=True),
)


@dataclass(frozen=True)
class ListQuery:
    """The list page's parameters, already checked (`serving.desk.forms.list_query`)."""

    filters: dict[str, str] = field(default_factory=dict)
    decision: str | None = None  # "contact", "no contact" or None for both
    customer_id: int | None = None
    sort: str = "rank"
    descending: bool = False
    page: int = 1
    page_size: int = 50


def _order(table: sa.Table, query: ListQuery) -> tuple[Any, Any]:
    """The list's order: the chosen column (missing values last), then the customer id."""
    column = table.c[SORTS[query.sort]]
    return (column.desc() if query.descending else column.asc()).nulls_last(), table.c.customer_id


class DeskData:
    def __init__(self, engine: sa.Engine, output_dir: Path):
        self.engine, self.output_dir = engine, Path(output_dir)
        desk_access_log.create(engine, checkfirst=True)

    def _list_table(self) -> sa.Table | None:
        if not sa.inspect(self.engine).has_table(LIST_TABLE):
            return None
        return sa.Table(LIST_TABLE, sa.MetaData(), autoload_with=self.engine)

    def latest_as_of(self) -> str | None:
        table = self._list_table()
        if table is None:
            return None
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sa.func.max(table.c.as_of))).scalar()

    def choices(self, as_of: str, branch: str | None) -> dict[str, list[str]]:
        """The values each filter can take in the day's list (what the drop-downs offer)."""
        table = self._list_table()
        out: dict[str, list[str]] = {}
        with self.engine.connect() as connection:
            for name, column in FILTERS.items():
                query = (
                    sa.select(table.c[column])
                    .distinct()
                    .where(table.c.as_of == as_of, table.c.status == "scored")
                )
                if branch is not None:
                    query = query.where(table.c.branch_id == branch)
                values = [v for (v,) in connection.execute(query) if v is not None]
                out[name] = sorted(str(v) for v in values)
        return out

    def _where(self, table: sa.Table, as_of: str, query: ListQuery, branch: str | None) -> list[Any]:
        where = [table.c.as_of == as_of, table.c.status == "scored"]
        for name, value in query.filters.items():
            where.append(table.c[FILTERS[name]] == value)
        if branch is not None:
            where.append(table.c.branch_id == branch)
        if query.decision == "contact":
            where.append(table.c.contact == sa.true())
        elif query.decision == "no contact":
            where.append(sa.or_(table.c.contact == sa.false(), table.c.contact.is_(None)))
        if query.customer_id is not None:
            where.append(table.c.customer_id == query.customer_id)
        return where

    def list_page(self, as_of: str, query: ListQuery, branch: str | None) -> tuple[int, pd.DataFrame]:
        """(matching rows in all, this page's rows)."""
        table = self._list_table()
        where = self._where(table, as_of, query, branch)
        with self.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
            page = pd.read_sql(
                sa.select(*[table.c[c] for c in LIST_COLUMNS])
                .where(*where)
                .order_by(*_order(table, query))
                .limit(query.page_size)
                .offset((query.page - 1) * query.page_size),
                connection,
            )
        return int(total or 0), page

    def export(self, as_of: str, query: ListQuery, branch: str | None) -> pd.DataFrame:
        """Every row of the filtered view (no paging), the columns the list shows and the reasons."""
        table = self._list_table()
        columns = [*LIST_COLUMNS, "reason_2_text", "reason_3_text", "action_why", "value"]
        with self.engine.connect() as connection:
            return pd.read_sql(
                sa.select(*[table.c[c] for c in columns])
                .where(*self._where(table, as_of, query, branch))
                .order_by(*_order(table, query)),
                connection,
            )

    def customer(self, as_of: str, customer_id: int) -> dict[str, Any] | None:
        table = self._list_table()
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(table).where(table.c.as_of == as_of, table.c.customer_id == customer_id)
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    def trend(self, customer_id: int) -> pd.DataFrame:
        """The customer's churn probability on every stored list."""
        table = self._list_table()
        with self.engine.connect() as connection:
            return pd.read_sql(
                sa.select(table.c.as_of, table.c.churn_probability)
                .where(table.c.customer_id == customer_id, table.c.status == "scored")
                .order_by(table.c.as_of),
                connection,
            )

    def contacts(self, customer_id: int) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return pd.read_sql(
                sa.select(
                    contact_history.c.contacted_at,
                    contact_history.c.source,
                    contact_history.c.channel,
                    contact_history.c.action,
                    contact_history.c.control_group,
                    contact_history.c.reached,
                    contact_history.c.offer_accepted,
                    contact_history.c.customer_status,
                )
                .where(contact_history.c.customer_id == customer_id)
                .order_by(contact_history.c.contacted_at.desc()),
                connection,
            )

    def overview(self, as_of: str) -> dict[str, pd.DataFrame]:
        """Risk by tier, segment, region and branch on the day's list; predicted churn types on
        every stored list."""
        table = self._list_table()
        scored = [table.c.as_of == as_of, table.c.status == "scored"]
        out: dict[str, pd.DataFrame] = {}
        with self.engine.connect() as connection:
            for name in ("risk_tier", "segment", "region", "branch_id"):
                out[name] = pd.read_sql(
                    sa.select(
                        table.c[name].label("group"),
                        sa.func.count().label("customers"),
                        sa.func.avg(table.c.churn_probability).label("mean_probability"),
                        sa.func.sum(table.c.value_at_risk).label("value_at_risk"),
                        sa.func.sum(sa.case((table.c.contact == sa.true(), 1), else_=0)).label("to_contact"),
                    )
                    .where(*scored)
                    .group_by(table.c[name])
                    .order_by(table.c[name]),
                    connection,
                )
            out["types"] = pd.read_sql(
                sa.select(table.c.as_of, table.c.churn_type, sa.func.count().label("customers"))
                .where(table.c.status == "scored", table.c.risk_tier != "low")
                .group_by(table.c.as_of, table.c.churn_type)
                .order_by(table.c.as_of),
                connection,
            )
        return out

    def alerts(self, limit: int = 20) -> pd.DataFrame:
        if not sa.inspect(self.engine).has_table("monitoring_alerts"):
            return pd.DataFrame(columns=["created_at", "as_of", "kind", "subject", "message"])
        with self.engine.connect() as connection:
            return pd.read_sql(
                sa.text(
                    "SELECT created_at, as_of, kind, subject, message FROM monitoring_alerts "
                    "ORDER BY created_at DESC LIMIT :limit"
                ),
                connection,
                params={"limit": limit},
            )

    def impact(self) -> tuple[str, pd.DataFrame, pd.DataFrame] | None:
        from serving.list_summary import latest_impact

        return latest_impact(self.output_dir)

    # -- the access audit log ---------------------------------------------------------------------
    def audit(self, user: Any, page: str, customer_key: str | None) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                desk_access_log.insert().values(
                    logged_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    user_name=user.name,
                    role=user.role,
                    page=page,
                    customer_key=customer_key,
                    entry_id=uuid.uuid4().hex,
                )
            )

    def audit_log(self, limit: int = 200) -> pd.DataFrame:
        with self.engine.connect() as connection:
            return pd.read_sql(
                sa.select(
                    desk_access_log.c.logged_at,
                    desk_access_log.c.user_name,
                    desk_access_log.c.role,
                    desk_access_log.c.page,
                    desk_access_log.c.customer_key,
                )
                .order_by(desk_access_log.c.id.desc())
                .limit(limit),
                connection,
            )


__all__ = ["FILTERS", "LIST_COLUMNS", "SORTS", "DeskData", "ListQuery", "desk_access_log"]
