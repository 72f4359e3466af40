"""The simulated bank's events as the seven raw tables, and its ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.bank.flows import INTERACTION_CATEGORIES
from features.bank.state import PRODUCTS, Events, Holdings
from features.schema import (
    CATEGORY_DIRECTION,
    DIRECTIONS,
    INTERACTION_CHANNELS,
    INTERACTION_TYPES,
    REGIONS,
    SCHEMAS,
    TRANSACTION_CATEGORIES,
    TRANSACTION_CHANNELS,
)

_NAT = np.iinfo(np.int64).min


def _date(day_numbers: np.ndarray) -> pd.Series:
    return pd.Series(day_numbers.astype("datetime64[D]").astype("datetime64[ns]"))


def _seconds_to_ts(seconds: np.ndarray) -> pd.Series:
    return pd.Series(seconds.astype("datetime64[s]").astype("datetime64[ns]"))


def holdings_table(holdings: Holdings, ids: np.ndarray, end_day: int) -> pd.DataFrame:
    k = holdings.count
    closed, maturity = holdings.closed[:k], holdings.maturity[:k]
    frame = pd.DataFrame(
        {
            "customer_id": ids[holdings.customer[:k]],
            "product": np.array(PRODUCTS, dtype=object)[holdings.product[:k]],
            "opened": _date(holdings.opened[:k]),
            "closed": pd.to_datetime(np.where(closed >= 0, closed, _NAT).astype("datetime64[D]")),
            "maturity_date": pd.to_datetime(np.where(maturity >= 0, maturity, _NAT).astype("datetime64[D]")),
        }
    )
    # a deposit renewed at maturity opens on the old one's maturity date; products opened after the
    # data's end (an application approved in the last days) are not yet on the books
    end = pd.Timestamp(end_day, unit="D")
    frame = frame[frame["opened"] < end]
    frame.loc[frame["closed"] >= end, "closed"] = pd.NaT
    frame = frame.sort_values(["customer_id", "opened", "product"], kind="stable").reset_index(drop=True)
    frame.insert(0, "holding_id", np.arange(1, len(frame) + 1))
    return frame


def assemble(
    events: Events,
    holdings: Holdings,
    ids: np.ndarray,
    attributes: dict[str, np.ndarray],
    end_day: int,
    gap: np.ndarray,
    month_starts: pd.DatetimeIndex,
) -> dict[str, pd.DataFrame]:
    """The raw tables, as a bank's systems would extract them at `end_day`."""
    join_day = attributes["join_date"]
    customers = pd.DataFrame({"customer_id": ids} | attributes)
    customers["join_date"] = _date(join_day)

    b = events.concat("bal")
    balances = pd.DataFrame(
        {
            "customer_id": ids[b["customer"]],
            "month_end": _date(b["month_end"]),
            "deposits": b["deposits"],
            "investments": b["investments"],
            "loans": b["loans"],
        }
    ).sort_values(["customer_id", "month_end"], kind="stable", ignore_index=True)

    t = events.concat("tx")
    keep = (t["ts"] >= join_day[t["customer"]] * 86400) & (t["amount"] > 0) & (t["ts"] < end_day * 86400)
    direction = np.array([DIRECTIONS.index(CATEGORY_DIRECTION[c]) for c in TRANSACTION_CATEGORIES])
    transactions = pd.DataFrame(
        {
            "customer_id": ids[t["customer"][keep]],
            "ts": _seconds_to_ts(t["ts"][keep]),
            "amount": t["amount"][keep],
            "category": pd.Categorical.from_codes(t["category"][keep], TRANSACTION_CATEGORIES),
            "channel": pd.Categorical.from_codes(t["channel"][keep], TRANSACTION_CHANNELS),
            "direction": pd.Categorical.from_codes(direction[t["category"][keep]], DIRECTIONS),
        }
    )
    transactions = transactions.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    transactions.insert(0, "transaction_id", np.arange(1, len(transactions) + 1))
    transactions = transactions[SCHEMAS["transactions"].column_names]

    x = events.concat("ix")
    keep = (x["ts"] >= join_day[x["customer"]] * 86400) & (x["ts"] < end_day * 86400)
    resolved = np.where((x["resolved"] < end_day) & keep, x["resolved"], -1)
    interactions = pd.DataFrame(
        {
            "customer_id": ids[x["customer"][keep]],
            "ts": _seconds_to_ts(x["ts"][keep]),
            "type": pd.Categorical.from_codes(x["type"][keep], INTERACTION_TYPES),
            "channel": pd.Categorical.from_codes(x["channel"][keep], INTERACTION_CHANNELS),
            "category": pd.Categorical.from_codes(x["category"][keep], INTERACTION_CATEGORIES),
            "resolved_at": pd.to_datetime(
                np.where(resolved[keep] >= 0, resolved[keep] * 86400 + 43200, _NAT).astype("datetime64[s]")
            ),
        }
    )
    late_filing = interactions["resolved_at"] <= interactions["ts"]
    interactions.loc[late_filing, "resolved_at"] = interactions.loc[late_filing, "ts"] + pd.Timedelta(hours=6)
    interactions = interactions.sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    interactions.insert(0, "interaction_id", np.arange(1, len(interactions) + 1))

    c = events.concat("ct")
    contacts = pd.DataFrame(
        {
            "customer_id": ids[c["customer"]],
            "ts": _seconds_to_ts(c["ts"]),
            "campaign": c["campaign"],
            "channel": c["channel"],
            "action": c["action"],
            "control_group": c["control"],
            "outcome": c["outcome"],
        }
    ).sort_values(["customer_id", "ts"], kind="stable", ignore_index=True)
    contacts.insert(0, "contact_id", np.arange(1, len(contacts) + 1))

    months = len(month_starts) - 1
    market = pd.DataFrame(
        {
            "region": pd.Categorical(np.repeat(np.array(REGIONS), months), categories=REGIONS),
            "month": np.tile(month_starts[:-1].to_numpy(), len(REGIONS)),
            "competitor_rate_gap": np.round(gap[:months].T.reshape(-1), 3),
        }
    )
    tables = {
        "customers": customers,
        "holdings": holdings_table(holdings, ids, end_day),
        "balances": balances,
        "transactions": transactions,
        "interactions": interactions,
        "contacts": contacts,
        "market": market,
    }
    for frame in tables.values():
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].astype("datetime64[ns]")
    return tables
