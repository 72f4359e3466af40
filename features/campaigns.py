"""The bank's retention campaigns as rows: who was contacted with what (or held back), their
features at the first of the month and whether they churned within the horizon.

Used to learn uplift (`training/uplift.py`) and to prove what the campaigns kept
(`monitoring/impact.py`). Reads the `contacts` table and the other raw tables, nothing else.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.schema import NO_ACTION, for_customers

CONTROL = "control"
NOT_DRAWN = "not drawn"


def keyed_uniform(ids: np.ndarray, seed: int, day: int) -> np.ndarray:
    """A number in [0, 1) per customer, fixed by (seed, day, customer id) alone (a SplitMix64
    hash): a partition of the customers draws exactly the customers the whole bank would."""
    with np.errstate(over="ignore"):
        x = np.asarray(ids, dtype=np.int64).view(np.uint64) ^ np.uint64(
            (seed * 0x9E3779B97F4A7C15 + day * 0xD1B54A32D192ED03) % 2**64
        )
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def _not_drawn(
    tables: Mapping[str, pd.DataFrame], contacts: pd.DataFrame, as_of: pd.Timestamp, share: float, seed: int
) -> np.ndarray:
    """A random `share` of the customers the month's campaigns could have drawn and did not: active,
    contactable, not contacted in the three months before nor in this one. The bank's exploration
    drew at random from them, so they are its control group (the campaigns' own controls are few).
    Each customer's draw depends on the customer alone, so partitions draw what the bank would."""
    from features.build import active_customers

    active = pd.Index(active_customers(tables, as_of)["customer_id"])
    customers = tables["customers"].set_index("customer_id")
    blocked = customers.index[customers["do_not_contact"].astype(bool)]
    recent = contacts.loc[
        (contacts["ts"] >= as_of - pd.DateOffset(months=3))
        & (contacts["ts"] < as_of + pd.DateOffset(months=1)),
        "customer_id",
    ]
    pool = active.difference(blocked).difference(pd.Index(recent.unique())).to_numpy()
    day = int(as_of.value // 86_400_000_000_000)
    return np.sort(pool[keyed_uniform(pool, seed, day) < share])


def campaign_rows(
    tables: Mapping[str, pd.DataFrame],
    config: AppConfig,
    not_drawn_share: float | None = None,
    only_months: Collection[str] | None = None,
    months: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """One row per campaign contact whose horizon the data confirms, plus a sample of the customers
    the month's exploration did not draw: the features at the first of the contact's month, `arm`
    (the action, or `control`), `churn`, `as_of`, `campaign` (`not drawn` for the sample) and the
    contact's recorded `outcome` (accepted, declined, not_reached, control).
    `only_months` ("YYYY-MM") keeps only those campaign months.

    Rows come ordered by month and customer id. `months` (the whole bank's first and last
    month-end) is given when `tables` hold one partition of the customers: the partitions' rows,
    put together and ordered, are then the whole bank's (`combine_campaign_rows`)."""
    from features.labels import confirmable_as_of
    from features.snapshots import build_training_set

    share = config.uplift.not_drawn_share if not_drawn_share is None else not_drawn_share
    contacts = tables.get("contacts")
    if contacts is None or contacts.empty or "control_group" not in contacts.columns:
        return pd.DataFrame()
    if months is None:
        month_end = tables["balances"]["month_end"]
        months = (month_end.min(), month_end.max())
    last = confirmable_as_of(months[1], config.labels)
    everyone = contacts
    contacts = contacts.assign(as_of=contacts["ts"].dt.to_period("M").dt.to_timestamp())
    contacts = contacts[(contacts["as_of"] <= last) & (contacts["as_of"] > months[0])]
    if only_months is not None:
        contacts = contacts[contacts["as_of"].dt.strftime("%Y-%m").isin(list(only_months))]
    control = contacts["control_group"].astype(bool)
    contacts = contacts.assign(arm=np.where(control, CONTROL, contacts["action"].astype(str)))
    contacts = contacts[control | (contacts["action"].astype(str) != NO_ACTION)]
    # a customer in two campaigns of one month counts once, as the first
    contacts = contacts.sort_values("ts").drop_duplicates(["customer_id", "as_of"])
    frames = []
    for as_of, group in contacts.groupby("as_of", sort=True):
        outcome = group["outcome"].astype(str) if "outcome" in group.columns else ""
        group = group[["customer_id", "arm", "campaign"]].assign(outcome=outcome)
        if share > 0:
            pool = _not_drawn(tables, everyone, as_of, share, config.training.seed)
            drawn = {"customer_id": pool, "arm": CONTROL, "campaign": NOT_DRAWN, "outcome": CONTROL}
            group = pd.concat([group, pd.DataFrame(drawn)], ignore_index=True)
        try:
            rows = build_training_set(
                for_customers(tables, group["customer_id"].unique()),
                [as_of],
                config.features,
                config.labels,
                tuple(config.products),
                months,
            )
        except ValueError:  # too little history before this month
            continue
        frames.append(rows.reset_index().merge(group, on="customer_id"))
    return combine_campaign_rows(frames)


def combine_campaign_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Campaign rows of several months or partitions as one frame, ordered by month and customer."""
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    return rows.sort_values(["as_of", "customer_id"], kind="stable", ignore_index=True)


__all__ = ["CONTROL", "NOT_DRAWN", "campaign_rows", "combine_campaign_rows", "keyed_uniform"]
