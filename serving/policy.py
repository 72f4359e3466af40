"""Retention policy: tiers, the playbook's action per customer, and who may be contacted today.

Pure, vectorised functions of plain arrays and frames; the rules live in the config.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

import numpy as np
import pandas as pd

from churn.config import ContactPolicyConfig, PlaybookConfig

CONTACT = "contact"


def tiers(values: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """'high' at or above thresholds['high'], 'medium' at or above thresholds['medium'], else 'low'."""
    values = np.asarray(values, dtype=float)
    return np.where(
        values >= thresholds["high"], "high", np.where(values >= thresholds["medium"], "medium", "low")
    )


def in_control_group(customer_ids: Sequence[int | str], key: str, share: float) -> np.ndarray:
    """Stable random control-group membership from a keyed hash of the id: the same every day.

    Integer ids (the bank's own) are mixed with a 64-bit seed derived from the key by SHA-256,
    through splitmix64: vectorised, so a million customers take milliseconds. Other ids use
    HMAC-SHA256. Either way membership cannot be worked out from the id without the key, and
    changing the key draws a new group.
    """
    ids = np.asarray(customer_ids)
    if np.issubdtype(ids.dtype, np.integer):
        seed = np.uint64(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
        with np.errstate(over="ignore"):
            z = ids.astype(np.uint64) ^ seed
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 < share
    secret = key.encode()
    draws = np.array(
        [
            int.from_bytes(hmac.new(secret, str(c).encode(), hashlib.sha256).digest()[:8], "big") / 2**64
            for c in ids
        ]
    )
    return draws < share


def choose_actions(
    risk_tier: np.ndarray,
    value_tier: np.ndarray,
    segment: np.ndarray,
    reason_codes: Sequence[Sequence[str]],
    playbook: PlaybookConfig,
) -> np.ndarray:
    """The first playbook rule whose conditions all hold, per customer."""
    n = len(risk_tier)
    chosen = np.full(n, None, dtype=object)
    for rule in playbook.rules:
        match = np.array([c is None for c in chosen])
        if rule.risk_tier is not None:
            match &= risk_tier == rule.risk_tier
        if rule.value_tier is not None:
            match &= value_tier == rule.value_tier
        if rule.segment is not None:
            match &= segment == rule.segment
        if rule.reason is not None:
            match &= np.array([rule.reason in codes for codes in reason_codes], dtype=bool)
        chosen[match] = rule.action
    return chosen


def contact_decisions(
    candidates: pd.DataFrame, policy: ContactPolicyConfig, playbook: PlaybookConfig
) -> pd.DataFrame:
    """Decide who is contacted today, and say which rule decided for everyone else.

    Args:
        candidates: one row per customer with `reportable` (above the reporting threshold),
            `do_not_contact`, `control_group`, `days_since_last_contact` (NaN if never),
            `contacts_last_quarter`, `expected_saving`, `owner` (team of the action) and `branch_id`.
        policy: the contact policy.
        playbook: for each team's daily capacity.

    Returns:
        `contact` (bool), `contact_rule` (why), and `list_rank` (1 = contact first; NaN if not
        contacted), indexed like `candidates`. The first rule that applies decides.
    """
    c = {column: candidates[column].to_numpy() for column in candidates.columns}
    n = len(candidates)
    rule = np.full(n, CONTACT, dtype=object)
    undecided = np.ones(n, dtype=bool)

    def apply(mask: np.ndarray, text: str | np.ndarray) -> None:
        hit = undecided & mask
        rule[hit] = text if isinstance(text, str) else text[hit]
        undecided[hit] = False

    apply(~c["reportable"].astype(bool), "low risk: below the reporting threshold")
    apply(c["do_not_contact"].astype(bool), "do-not-contact flag")
    apply(c["control_group"].astype(bool), "control group: scored, never contacted")
    days = c["days_since_last_contact"].astype(float)
    too_soon = days < policy.min_days_between_contacts  # NaN (never contacted) compares False
    if too_soon.any():
        apply(
            too_soon,
            np.array(
                [
                    f"contacted {int(d) if d == d else 0} days ago (minimum gap {policy.min_days_between_contacts})"
                    for d in days
                ],
                dtype=object,
            ),
        )
    apply(
        c["contacts_last_quarter"] >= policy.max_contacts_per_quarter,
        f"reached the limit of {policy.max_contacts_per_quarter} contacts per quarter",
    )
    saving = c["expected_saving"].astype(float)
    apply(saving <= 0, "expected saving does not cover the contact cost")

    # capacity: the best expected savings first, within each team (and branch, for branch teams)
    open_rows = np.flatnonzero(undecided)
    open_rows = open_rows[np.argsort(-saving[open_rows], kind="stable")]
    owner = c["owner"][open_rows].astype(str)
    branch = c["branch_id"][open_rows].astype(str)
    per_branch = np.isin(owner, list(playbook.per_branch))
    group = np.where(per_branch, np.char.add(np.char.add(owner, "@"), branch), owner)
    position = pd.Series(group).groupby(group, sort=False).cumcount().to_numpy()
    limit = np.array(
        [playbook.per_branch.get(team, playbook.capacity.get(team, 0)) for team in owner], dtype=float
    )
    over = position >= limit
    if over.any():
        texts = np.full(n, None, dtype=object)
        texts[open_rows] = [
            f"over the daily capacity of {team}" + (f" in branch {b}" if by_branch else "")
            for team, b, by_branch in zip(owner, branch, per_branch, strict=True)
        ]
        mask = np.zeros(n, dtype=bool)
        mask[open_rows[over]] = True
        apply(mask, texts)

    contact = rule == CONTACT
    rank = np.full(n, np.nan)
    chosen = np.flatnonzero(contact)
    rank[chosen[np.argsort(-saving[chosen], kind="stable")]] = np.arange(1, len(chosen) + 1)
    return pd.DataFrame({"contact": contact, "contact_rule": rule, "list_rank": rank}, index=candidates.index)


def contact_history(contacts: pd.DataFrame, customer_ids: pd.Index, as_of: pd.Timestamp) -> pd.DataFrame:
    """Days since the last contact actually made, and contacts in the last 91 days, before `as_of`.

    Control-group records are not contacts.
    """
    ts = pd.to_datetime(contacts["ts"]).to_numpy(dtype="datetime64[ns]")
    made = (ts < as_of.to_datetime64()) & ~contacts["control_group"].to_numpy(dtype=bool)
    ids = contacts["customer_id"].to_numpy()[made]
    ts = ts[made]
    if not len(ids):
        return pd.DataFrame(
            {"days_since_last_contact": np.nan, "contacts_last_quarter": 0}, index=customer_ids
        )
    last = pd.Series(ts).groupby(ids).max()
    recent_since = (as_of - pd.Timedelta(days=91)).to_datetime64()
    recent = pd.Series(ts >= recent_since).groupby(ids).sum()
    return pd.DataFrame(
        {
            "days_since_last_contact": ((as_of - last).dt.total_seconds() / 86400)
            .reindex(customer_ids)
            .to_numpy(),
            "contacts_last_quarter": recent.reindex(customer_ids, fill_value=0).to_numpy(dtype=int),
        },
        index=customer_ids,
    )
