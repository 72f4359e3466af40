"""The DataFrame contracts of the six raw bank tables: columns, types, allowed values, keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["int", "float", "bool", "date", "timestamp", "category", "string"]

SEGMENTS = ("mass", "affluent", "private")
REGIONS = ("Capital", "North", "South", "East", "West", "Central")
INCOME_BANDS = ("<2k", "2k-4k", "4k-8k", "8k-15k", "15k+")
GENDERS = ("F", "M", "U")
TRANSACTION_CHANNELS = ("branch", "atm", "mobile", "online", "card")
TRANSACTION_CATEGORIES = (
    "salary",
    "pension",
    "transfer_in",
    "interest",
    "transfer_out_external",
    "card_spend",
    "bill_pay",
    "cash",
    "fee",
)
DIRECTIONS = ("in", "out")
INTERACTION_TYPES = (
    "login",
    "complaint",
    "service_call",
    "branch_visit",
    "product_application",
    "service_incident",  # a failed payment, a declined card, an outage the customer met
    "address_change",  # the customer told the bank of a new address (the address is not kept)
    "missed_payment",  # a loan or card repayment not made on time
    "bereavement_notice",  # the family told the bank the customer died
)
INTERACTION_CHANNELS = ("mobile", "online", "branch", "phone")
COMPLAINT_CATEGORIES = ("fees", "service", "card", "app", "mortgage", "branch")
FEE_COMPLAINT = "fees"  # complaints about fees are their own cause (FEES), the rest are COMPLAINT
INCIDENT_CATEGORIES = ("payment_failed", "card_declined", "app_error")
CONTACT_CHANNELS = ("phone", "branch", "email", "sms")
NO_ACTION = "none"  # a control-group record: the customer was drawn but not contacted
CONTACT_OUTCOMES = ("accepted", "declined", "not_reached", "control")
# Which direction each transaction category must have; a row that disagrees is rejected.
CATEGORY_DIRECTION = {
    "salary": "in",
    "pension": "in",
    "transfer_in": "in",
    "interest": "in",
    "transfer_out_external": "out",
    "card_spend": "out",
    "bill_pay": "out",
    "cash": "out",
    "fee": "out",
}
PRODUCTS_PLACEHOLDER = "<catalogue>"  # allowed values of holdings.product come from the config catalogue
ACTIONS_PLACEHOLDER = "<playbook>"  # allowed values of contacts.action: the playbook's actions and "none"


@dataclass(frozen=True)
class Column:
    """One column's contract.

    Attributes:
        name: column name.
        kind: logical type the column is coerced to.
        required: a null value rejects the row.
        allowed: allowed values for categories; `PRODUCTS_PLACEHOLDER` means the product catalogue,
            `ACTIONS_PLACEHOLDER` the playbook's actions.
        min_value: smallest allowed value (inclusive) for numbers.
        max_value: largest allowed value (inclusive) for numbers.
        event_date: a date of something that happened, so it cannot lie after the extract date.
        personal: a personal attribute of the customer: never copied into a rejects file (the
            reason names the column and the rule, the key finds the row in the source).
    """

    name: str
    kind: Kind
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    event_date: bool = False
    personal: bool = False


@dataclass(frozen=True)
class TableSchema:
    """A table's contract: columns, the key that must be unique, and its link to customers."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references_customers: bool = True
    # (earlier column, later column) pairs: the later one may not precede the earlier one.
    ordered: tuple[tuple[str, str], ...] = field(default=())
    # a source may lack the table: it is read as empty (its features are then missing)
    optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


CUSTOMERS = TableSchema(
    name="customers",
    key=("customer_id",),
    references_customers=False,
    columns=(
        Column("customer_id", "int", min_value=1),
        Column("join_date", "date", event_date=True),
        Column("birth_year", "int", min_value=1900, max_value=2015, personal=True),
        Column("gender", "category", allowed=GENDERS, personal=True),
        Column("segment", "category", allowed=SEGMENTS),
        Column("region", "category", allowed=REGIONS),
        Column("branch_id", "string"),
        Column("income_band", "category", allowed=INCOME_BANDS),
        Column("is_payroll", "bool"),
        Column("do_not_contact", "bool"),
    ),
)

HOLDINGS = TableSchema(
    name="holdings",
    key=("holding_id",),
    ordered=(("opened", "closed"), ("opened", "maturity_date")),
    columns=(
        Column("holding_id", "int", min_value=1),
        Column("customer_id", "int", min_value=1),
        Column("product", "category", allowed=(PRODUCTS_PLACEHOLDER,)),
        Column("opened", "date", event_date=True),
        Column("closed", "date", required=False, event_date=True),
        Column("maturity_date", "date", required=False),
    ),
)

BALANCES = TableSchema(
    name="balances",
    key=("customer_id", "month_end"),
    columns=(
        Column("customer_id", "int", min_value=1),
        Column("month_end", "date", event_date=True),
        Column("deposits", "float", min_value=0.0),
        Column("investments", "float", min_value=0.0),
        Column("loans", "float", min_value=0.0),
    ),
)

TRANSACTIONS = TableSchema(
    name="transactions",
    key=("transaction_id",),
    columns=(
        Column("transaction_id", "int", min_value=1),
        Column("customer_id", "int", min_value=1),
        Column("ts", "timestamp", event_date=True),
        Column("amount", "float", min_value=0.0),
        Column("direction", "category", allowed=DIRECTIONS),
        Column("channel", "category", allowed=TRANSACTION_CHANNELS),
        Column("category", "category", allowed=TRANSACTION_CATEGORIES),
    ),
)

INTERACTIONS = TableSchema(
    name="interactions",
    key=("interaction_id",),
    ordered=(("ts", "resolved_at"),),
    columns=(
        Column("interaction_id", "int", min_value=1),
        Column("customer_id", "int", min_value=1),
        Column("ts", "timestamp", event_date=True),
        Column("type", "category", allowed=INTERACTION_TYPES),
        Column("channel", "category", allowed=INTERACTION_CHANNELS),
        # complaint category, or the product applied for; empty for other interaction types
        Column("category", "string", required=False),
        # when a complaint was resolved; empty while unresolved (a flag would leak the future)
        Column("resolved_at", "timestamp", required=False, event_date=True),
    ),
)

CONTACTS = TableSchema(
    name="contacts",
    key=("contact_id",),
    columns=(
        Column("contact_id", "int", min_value=1),
        Column("customer_id", "int", min_value=1),
        Column("ts", "timestamp", event_date=True),
        Column("campaign", "string"),
        Column("channel", "category", allowed=CONTACT_CHANNELS),
        Column("action", "category", allowed=(ACTIONS_PLACEHOLDER,)),
        Column("control_group", "bool"),
        Column("outcome", "category", allowed=CONTACT_OUTCOMES),
    ),
)

# Competitor rates by region and month, from a market-data feed: how far the best rival savings
# rate is above the bank's own (percentage points). Not customer data: read whole everywhere.
MARKET = TableSchema(
    name="market",
    key=("region", "month"),
    references_customers=False,
    optional=True,
    columns=(
        Column("region", "category", allowed=REGIONS),
        Column("month", "date", event_date=True),
        Column("competitor_rate_gap", "float", min_value=-20.0, max_value=20.0),
    ),
)

SCHEMAS: dict[str, TableSchema] = {
    schema.name: schema
    for schema in (CUSTOMERS, HOLDINGS, BALANCES, TRANSACTIONS, INTERACTIONS, CONTACTS, MARKET)
}
# tables that are not split by customer (the dask engine gives every partition all of them)
GLOBAL_TABLES: tuple[str, ...] = tuple(
    name for name, s in SCHEMAS.items() if not s.references_customers and name != "customers"
)
TABLE_NAMES: tuple[str, ...] = tuple(SCHEMAS)


def for_customers(tables: Mapping[str, pd.DataFrame], ids) -> dict[str, pd.DataFrame]:
    """The tables' rows of these customers; a table not split by customer (`GLOBAL_TABLES`, or
    one without a customer id) comes whole."""
    return {
        name: frame
        if name in GLOBAL_TABLES or "customer_id" not in frame.columns
        else frame[frame["customer_id"].isin(ids)]
        for name, frame in tables.items()
    }
