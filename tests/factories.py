"""Tiny hand-built banks for unit tests: two customers with a current account, other tables empty."""

from __future__ import annotations

import pandas as pd

from churn.config import load_config
from features.schema import SCHEMAS

AS_OF = pd.Timestamp("2025-07-01")
PRODUCTS = tuple(load_config(environ={}).products)  # the catalogue lives in the config

_DTYPES = {
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "date": "datetime64[ns]",
    "timestamp": "datetime64[ns]",
}


def empty(name: str) -> pd.DataFrame:
    """An empty table with the contract's columns and dtypes."""
    return pd.DataFrame(
        {c.name: pd.Series(dtype=_DTYPES.get(c.kind, "object")) for c in SCHEMAS[name].columns}
    )


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    """A table from row dicts; missing columns get defaults that pass validation."""
    defaults = {
        "transactions": {"direction": "out", "channel": "mobile", "category": "card_spend"},
        "interactions": {"channel": "mobile", "category": None, "resolved_at": pd.NaT},
        "contacts": {
            "campaign": "RET",
            "channel": "phone",
            "offer": "rate_bonus",
            "control_group": False,
            "outcome": "declined",
        },
        "holdings": {"closed": pd.NaT, "maturity_date": pd.NaT},
    }.get(name, {})
    key = SCHEMAS[name].key[0]
    filled = []
    for number, row in enumerate(rows, start=1):
        filled.append({key: number} | defaults | row if key != "customer_id" else defaults | row)
    result = pd.DataFrame(filled, columns=SCHEMAS[name].column_names)
    for column in SCHEMAS[name].columns:
        if column.kind in ("date", "timestamp"):
            result[column.name] = pd.to_datetime(result[column.name], format="mixed")
    return result


def bank(**tables: list[dict]) -> dict[str, pd.DataFrame]:
    """Two customers (ids 1 and 2) who joined in 2020 and hold a current account, plus `tables` rows."""
    customers = frame(
        "customers",
        [
            {
                "customer_id": cid,
                "join_date": "2020-01-15",
                "birth_year": 1980,
                "gender": "F",
                "segment": "mass",
                "region": "North",
                "branch_id": "BR001",
                "income_band": "2k-4k",
                "is_payroll": True,
                "do_not_contact": False,
            }
            for cid in (1, 2)
        ],
    )
    holdings = [{"customer_id": cid, "product": "current_account", "opened": "2020-01-15"} for cid in (1, 2)]
    result = {"customers": customers, "holdings": frame("holdings", holdings + tables.pop("holdings", []))}
    for name in ("balances", "transactions", "interactions", "contacts"):
        result[name] = frame(name, tables.pop(name)) if name in tables else empty(name)
    if "customers" in tables:
        result["customers"] = frame("customers", tables.pop("customers"))
    assert not tables, f"unknown tables {list(tables)}"
    return result
