"""Retention policy: tiers, the playbook's action per customer, and who may be contacted today.

Pure, vectorised functions of plain arrays and frames; the rules live in the config.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from churn.retention_config import PlaybookConfig
from serving.settings import ContactPolicyConfig

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
    reason_codes: Sequence[np.ndarray],
    playbook: PlaybookConfig,
    churn_type: np.ndarray | None = None,
) -> np.ndarray:
    """The first playbook rule whose conditions all hold, per customer.

    `reason_codes`: one array per reason rank, the k-th holding each customer's k-th reason code
    (None where the customer has fewer reasons); a rule's `reason` matches the first reason,
    `any_reason` any rank. `churn_type`: each customer's kind of churn (None: not diagnosed)."""
    n = len(risk_tier)
    chosen = np.full(n, None, dtype=object)
    undecided = np.ones(n, dtype=bool)
    for rule in playbook.rules:
        match = undecided.copy()
        if rule.risk_tier is not None:
            match &= risk_tier == rule.risk_tier
        if rule.value_tier is not None:
            match &= value_tier == rule.value_tier
        if rule.segment is not None:
            match &= segment == rule.segment
        if rule.churn_type is not None:
            match &= (
                churn_type if churn_type is not None else np.full(n, None, dtype=object)
            ) == rule.churn_type
        if rule.reason is not None:
            match &= reason_codes[0] == rule.reason
        if rule.any_reason is not None:
            held = np.zeros(n, dtype=bool)
            for codes in reason_codes:
                held |= codes == rule.any_reason
            match &= held
        chosen[match] = rule.action
        undecided &= ~match
    return chosen


def action_attributes(action: np.ndarray, playbook: PlaybookConfig) -> dict[str, np.ndarray]:
    """Each customer's action's channel, owner, cost, effect and description (None without one)."""
    names = list(playbook.actions)
    which = np.full(len(action), len(names))  # the last slot: no action
    for j, name in enumerate(names):
        which[action == name] = j
    return {
        field: np.array([getattr(playbook.actions[name], field) for name in names] + [None], dtype=object)[
            which
        ]
        for field in ("channel", "owner", "cost", "effect", "description")
    }


def contact_decisions(
    candidates: pd.DataFrame | Mapping[str, np.ndarray],
    policy: ContactPolicyConfig,
    playbook: PlaybookConfig,
) -> pd.DataFrame:
    """Decide who is contacted today, and say which rule decided for everyone else.

    Args:
        candidates: one row per customer with `reportable` (above the reporting threshold),
            `do_not_contact`, `control_group`, `days_since_last_contact` (NaN if never),
            `contacts_last_quarter`, `expected_saving`, `owner` (team of the action) and `branch_id`;
            optionally `sleeping_dog` (bool) and `unlikely_to_respond` (the rule's text, or None).
        policy: the contact policy.
        playbook: for each team's daily capacity.

    Returns:
        `contact` (bool), `contact_rule` (why), and `list_rank` (1 = contact first; NaN if not
        contacted), indexed like `candidates`. The first rule that applies decides.
    """
    columns = {column: np.asarray(candidates[column]) for column in candidates}
    return pd.DataFrame(decide_contacts(columns, policy, playbook), index=candidates.index)


def decide_contacts(
    c: Mapping[str, np.ndarray], policy: ContactPolicyConfig, playbook: PlaybookConfig
) -> dict[str, np.ndarray]:
    """`contact_decisions` on plain arrays (the columns named there); returns the same columns."""
    n = len(c["reportable"])
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
    if "sleeping_dog" in c:
        apply(
            np.asarray(c["sleeping_dog"], dtype=bool),
            "predicted sleeping dog: every allowed action is expected to raise their churn",
        )
    if "unlikely_to_respond" in c:
        texts = np.asarray(c["unlikely_to_respond"], dtype=object)
        apply(np.array([t is not None for t in texts], dtype=bool), texts)
    saving = c["expected_saving"].astype(float)
    apply(saving <= 0, "expected saving does not cover the contact cost")

    # capacity: the best expected savings first, within each team (and branch, for branch teams)
    open_rows = np.flatnonzero(undecided)
    if open_rows.size:
        open_rows = open_rows[np.argsort(-saving[open_rows], kind="stable")]
        owner, teams = pd.factorize(c["owner"][open_rows].astype(str))
        branch, branches = pd.factorize(c["branch_id"][open_rows].astype(str))
        by_branch_team = np.isin(teams, list(playbook.per_branch))
        per_branch = by_branch_team[owner]
        group = owner.astype(np.int64) * (len(branches) + 1) + np.where(per_branch, branch + 1, 0)
        limit = np.array(
            [playbook.per_branch.get(team, playbook.capacity.get(team, 0)) for team in teams], dtype=float
        )[owner]
        over = _position_in_group(group) >= limit
        if over.any():
            texts = np.full(n, None, dtype=object)
            texts[open_rows[over]] = [
                f"over the daily capacity of {teams[t]}" + (f" in branch {branches[b]}" if by_branch else "")
                for t, b, by_branch in zip(owner[over], branch[over], per_branch[over], strict=True)
            ]
            mask = np.zeros(n, dtype=bool)
            mask[open_rows[over]] = True
            apply(mask, texts)

    contact = rule == CONTACT
    rank = np.full(n, np.nan)
    chosen = np.flatnonzero(contact)
    rank[chosen[np.argsort(-saving[chosen], kind="stable")]] = np.arange(1, len(chosen) + 1)
    return {"contact": contact, "contact_rule": rule, "list_rank": rank}


def _position_in_group(group: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its group (0 for the first)."""
    _, inverse = np.unique(group, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_groups = inverse[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    position = np.empty(len(group), dtype=int)
    position[order] = np.arange(len(group)) - first
    return position


def contact_history(contacts: pd.DataFrame, customer_ids: pd.Index, as_of: pd.Timestamp) -> pd.DataFrame:
    """Days since the last contact actually made, and contacts in the last 91 days, before `as_of`.

    Control-group records are not contacts.
    """
    history = contact_history_arrays(
        contacts["customer_id"].to_numpy(),
        pd.to_datetime(contacts["ts"]).to_numpy(dtype="datetime64[ns]"),
        contacts["control_group"].to_numpy(dtype=bool),
        customer_ids,
        as_of,
    )
    return pd.DataFrame(history, index=customer_ids)


def contact_history_arrays(
    contact_ids: np.ndarray,
    ts: np.ndarray,
    control_group: np.ndarray,
    customer_ids: pd.Index | np.ndarray,
    as_of: pd.Timestamp,
) -> dict[str, np.ndarray]:
    """`contact_history` on plain arrays: contacts as (customer id, datetime64[ns], control
    record) arrays; `customer_ids` unique. Returns `days_since_last_contact` (NaN if never) and
    `contacts_last_quarter`, one per customer id."""
    n = len(customer_ids)
    days = np.full(n, np.nan)
    recent = np.zeros(n, dtype=int)
    ts = np.asarray(ts, dtype="datetime64[ns]").view("int64")
    now = as_of.to_datetime64().astype("datetime64[ns]").view("int64")
    made = (ts < now) & ~np.asarray(control_group, dtype=bool)
    if not made.any():
        return {"days_since_last_contact": days, "contacts_last_quarter": recent}
    position = pd.Index(customer_ids).get_indexer(np.asarray(contact_ids)[made])
    ts = ts[made]
    known = position >= 0
    position, ts = position[known], ts[known]
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, position, ts)
    seen = last > np.iinfo(np.int64).min
    days[seen] = (now - last[seen]) / 1e9 / 86400
    since = now - 91 * 86400 * 10**9
    np.add.at(recent, position[ts >= since], 1)
    return {"days_since_last_contact": days, "contacts_last_quarter": recent}
