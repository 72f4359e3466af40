"""Policy evaluation on the simulated bank: what a list of contacts would save.

`simulate_list` rebuilds a generated bank's state at the list's date from its manifest (the
generator is deterministic), then continues it for the horizon twice from that one state: once
with the list's contacts applied, once without, on common random numbers (every part of every
month draws from its own stream, the same in both runs), so what differs is the contacts. The
bank's own campaigns are off in both continuations: the list replaces them. Repeated over
`seeds` continuation streams, the figures come with an interval.

A contact reaches the customer with the probability the bank's campaigns have (`REACH`); an
attempt costs the action's cost whether it reaches or not. A contact can reach a customer who has
already decided and is draining their money out, and may win them back. A customer is counted as
lost when at the end of the horizon they are no longer an active customer (draining, closed or
an empty account), so one who had left before the list date counts as lost in both runs; value is the customer's value at the list date, by the
product's own value formula (`features.value.customer_value`) on the true balances and holdings.
This module reads the generator's truth: it is the test bench, never a part of the product.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.bank.contacts import EXPLORATION_SHARE
from features.bank.response import ACTIONS, EFFECT_MONTHS, RESPONSE_TYPES
from features.bank.state import ACTIVE, DRAINING, FIRST_ID, PRODUCTS, Events, P

if TYPE_CHECKING:
    from features.bank.months import Bank

REACH = 0.7  # share of contact attempts that reach the customer (as in the bank's campaigns)
STREAM = 7919  # separates the continuation streams from the generator's own seed


class SimulationError(ValueError):
    """The bank or the list cannot be simulated; the message names the field and the problem."""


class _Discard(Events):
    """Rows the continuation would emit are not needed: nothing is kept."""

    def add(self, kind: str, **columns: np.ndarray) -> None:
        return None


@dataclass(frozen=True)
class ListToSimulate:
    """The contacted rows of a list: bank positions, action indices and costs."""

    as_of: pd.Timestamp
    position: np.ndarray
    action: np.ndarray
    cost: np.ndarray
    listed: int


def read_list(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SimulationError(f"--list: {path} does not exist")
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() in (".parquet", ".pq") or path.is_dir():
        return pd.read_parquet(path)
    raise SimulationError(f"--list: {path.name}: a Parquet or CSV file is expected")


def _contact_flags(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    known = text.isin(["1", "1.0", "true", "0", "0.0", "false", "nan", "none", ""])
    if not known.all():
        raise SimulationError(
            f"contact: {int((~known).sum())} row(s) are not a flag (1/0 or true/false), e.g. {values[~known].iloc[0]!r}"
        )
    return text.isin(["1", "1.0", "true"]).to_numpy()


def prepare_list(
    frame: pd.DataFrame,
    manifest: Mapping[str, Any],
    costs: Mapping[str, float],
    as_of: pd.Timestamp | None,
) -> ListToSimulate:
    """Check a list against the bank and the playbook's actions; keep its contacted rows."""
    missing = [c for c in ("customer_id", "action", "contact") if c not in frame.columns]
    if missing:
        raise SimulationError(
            f"list: missing column(s) {', '.join(missing)} (needs customer_id, action, contact)"
        )
    contact = _contact_flags(frame["contact"])
    rows = frame.loc[contact]
    ids = pd.to_numeric(rows["customer_id"], errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        raise SimulationError("customer_id: contacted rows need whole-number customer ids")
    if ids.duplicated().any():
        raise SimulationError(f"customer_id: {int(ids.duplicated().sum())} customer(s) are contacted twice")
    position = ids.to_numpy(dtype=np.int64) - FIRST_ID
    outside = (position < 0) | (position >= int(manifest["customers"]))
    if outside.any():
        raise SimulationError(
            f"customer_id: {int(outside.sum())} contacted id(s) are not customers of this bank, e.g. {int(ids[outside].iloc[0])}"
        )
    actions = rows["action"].astype(str).to_numpy()
    unknown = sorted(set(actions) - set(costs))
    if unknown:
        raise SimulationError(
            f"action: {', '.join(unknown[:5])} not in the playbook ({', '.join(sorted(costs))})"
        )
    not_simulated = sorted(set(actions) - set(ACTIONS))
    if not_simulated:
        raise SimulationError(
            f"action: the simulated bank has no response model for {', '.join(not_simulated)}"
        )
    date = as_of
    if date is None and "as_of" in frame.columns and frame["as_of"].notna().any():
        dates = pd.to_datetime(frame["as_of"].dropna().unique())
        if len(dates) > 1:
            raise SimulationError("as_of: the list holds more than one date; pass --as-of")
        date = pd.Timestamp(dates[0])
    if date is None:
        date = pd.Timestamp(manifest["end"]) + pd.Timedelta(days=1)
    return ListToSimulate(
        as_of=pd.Timestamp(date).normalize(),
        position=position,
        action=np.array([ACTIONS.index(a) for a in actions], dtype=np.int64),
        cost=np.array([float(costs[a]) for a in actions]),
        listed=len(frame),
    )


def _month_of(as_of: pd.Timestamp, manifest: Mapping[str, Any]) -> int:
    start, months = pd.Timestamp(manifest["start"]), int(manifest["months"])
    m = (as_of.year - start.year) * 12 + as_of.month - start.month
    if not 1 <= m <= months:
        end = pd.Timestamp(manifest["end"]) + pd.Timedelta(days=1)
        raise SimulationError(
            f"as_of: {as_of:%Y-%m-%d} is outside the bank's months ({start:%Y-%m-%d} .. {end:%Y-%m-%d})"
        )
    return m


def _value(
    bank: Any, products: Mapping[str, Mapping[str, Any]], years: float, discount_rate: float
) -> np.ndarray:
    from features.value import customer_value

    columns: dict[str, np.ndarray] = {
        "deposits_latest": np.maximum(bank.deposits, 0.0),
        "investments_latest": bank.investments,
        "loans_latest": bank.mortgage + bank.loan,
    }
    for code in products:
        columns[f"has_{code}"] = bank.holdings.held(P[code]) if code in PRODUCTS else np.zeros(bank.n, bool)
    return customer_value(columns, bank.n, products, years, discount_rate)


def _continue(
    base: Any, m0: int, months: int, streams: tuple[int, ...], contacts: ListToSimulate | None
) -> np.ndarray:
    """Lost flags (not an active customer at the horizon's end) for every customer, after one
    continuation."""
    bank = copy.deepcopy(base)
    bank.campaigns, bank.streams = False, streams
    if contacts is not None:
        reached = np.random.default_rng((*streams, 1)).random(contacts.position.size) < REACH
        status = bank.status[contacts.position]
        live = (status == ACTIVE) | (status == DRAINING)
        who = contacts.position[live]
        bank.contact_month[who] = m0
        bank.contact_reached[who] = reached[live]
        bank.contact_action[who] = contacts.action[live]
    for m in range(m0, m0 + months):
        bank.step(m)
    return bank.status != ACTIVE


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    mean = float(values.mean())
    if values.size < 2:
        return mean, mean, mean
    from scipy import stats

    half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return mean, mean - half, mean + half


def replay(manifest: Mapping[str, Any], run_months: int, extra_months: int = 0) -> Bank:
    """The generated bank of `manifest` (its `manifest.json`) re-run to the start of month
    `run_months`, with room for `extra_months` past its end; the rows it writes are discarded."""
    from features.generator import simulated_bank

    scenario = manifest.get("scenario") or {}
    bank, _ = simulated_bank(
        int(manifest["customers"]),
        int(manifest["months"]),
        int(manifest["seed"]),
        manifest["start"],
        float(manifest["activity"]),
        scenario.get("name"),
        int(manifest.get("drift_months", 2)),
        manifest.get("drift_region", "North"),
        manifest.get("type_shares"),
        manifest.get("market_seed"),
        extra_months=extra_months,
        run_months=run_months,
        events=_Discard(),
        exploration_share=float(manifest.get("exploration_share", EXPLORATION_SHARE)),
    )
    return bank


def _start(
    bank_dir: Path,
    frame: pd.DataFrame,
    costs: Mapping[str, float],
    horizon_days: int,
    as_of: pd.Timestamp | None,
) -> tuple[dict[str, Any], ListToSimulate, int, int, Bank]:
    """The bank's manifest, the checked list, its month, the horizon in months and the bank's state
    at the list's date."""
    from features.generator import GENERATOR_VERSION

    manifest_path = Path(bank_dir) / "manifest.json"
    if not manifest_path.exists():
        raise SimulationError(f"--bank: {bank_dir} has no manifest.json (a bank written by `churn generate`)")
    manifest = json.loads(manifest_path.read_text())
    if str(manifest.get("generator_version")) != GENERATOR_VERSION:
        raise SimulationError(
            f"--bank: generated by generator version {manifest.get('generator_version')}, this is version "
            f"{GENERATOR_VERSION}: regenerate it with `churn generate`"
        )
    contacts = prepare_list(frame, manifest, costs, as_of)
    m0 = _month_of(contacts.as_of, manifest)
    horizon = max(1, math.ceil(horizon_days / 30.4))
    base = replay(manifest, m0, max(0, m0 + horizon - int(manifest["months"])))
    return manifest, contacts, m0, horizon, base


def simulate_list(
    bank_dir: Path,
    frame: pd.DataFrame,
    costs: Mapping[str, float],
    products: Mapping[str, Mapping[str, Any]],
    years: float,
    discount_rate: float,
    horizon_days: int = 90,
    seeds: int = 5,
    as_of: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Saved customers, value saved, cost and net value of a list's contacts, with 95% intervals
    over `seeds` continuations; the list is checked first (`SimulationError` names the field)."""
    if seeds < 1:
        raise SimulationError("--seeds: at least 1")
    manifest, contacts, m0, horizon, base = _start(bank_dir, frame, costs, horizon_days, as_of)
    value = _value(base, products, years, discount_rate)
    who = contacts.position
    response = base.pop.uplift_type[who]
    state = base.status[who]
    per_seed: dict[str, list[float]] = {"saved_customers": [], "value_saved": [], "net_value": []}
    by_action = np.zeros(len(ACTIONS))
    by_response = np.zeros(len(RESPONSE_TYPES))
    cost = float(contacts.cost.sum())
    for k in range(seeds):
        streams = (int(manifest["seed"]), STREAM, k)
        left_with = _continue(base, m0, horizon, streams, contacts)[who]
        left_without = _continue(base, m0, horizon, streams, None)[who]
        saved = left_without.astype(float) - left_with.astype(float)
        per_seed["saved_customers"].append(float(saved.sum()))
        per_seed["value_saved"].append(float((saved * value[who]).sum()))
        per_seed["net_value"].append(per_seed["value_saved"][-1] - cost)
        by_action += np.bincount(contacts.action, weights=saved, minlength=len(ACTIONS))
        by_response += np.bincount(response, weights=saved, minlength=len(RESPONSE_TYPES))
    out: dict[str, Any] = {
        "as_of": f"{contacts.as_of:%Y-%m-%d}",
        "horizon_months": horizon,
        "effect_months": EFFECT_MONTHS,
        "seeds": seeds,
        "listed": contacts.listed,
        "contacted": int(who.size),
        "cost": round(cost, 2),
        "sleeping_dogs_contacted": int((response == RESPONSE_TYPES.index("sleeping_dog")).sum()),
        "contacted_by_response_type": {t: int((response == i).sum()) for i, t in enumerate(RESPONSE_TYPES)},
        # where the contacted customers stood on the list date: still active, already draining
        # their money out (a contact may win them back), or gone (a wasted contact)
        "contacted_by_state": {
            "active": int((state == ACTIVE).sum()),
            "draining": int((state == DRAINING).sum()),
            "left": int(((state != ACTIVE) & (state != DRAINING)).sum()),
        },
        "saved_by_action": {
            a: round(float(by_action[i]) / seeds, 2)
            for i, a in enumerate(ACTIONS)
            if (contacts.action == i).any()
        },
        "saved_by_response_type": {
            t: round(float(by_response[i]) / seeds, 2) for i, t in enumerate(RESPONSE_TYPES)
        },
    }
    for name, values in per_seed.items():
        mean, low, high = _interval(np.array(values))
        out[name] = round(mean, 2)
        out[f"{name}_interval"] = [round(low, 2), round(high, 2)]
    return out


def _parameters(config: Any) -> dict[str, Any]:
    """`simulate_list`'s costs, catalogue, value parameters and horizon from an `AppConfig`."""
    if config.playbook is None:
        raise SimulationError("playbook: the config has no playbook (the actions' costs)")
    return {
        "costs": {name: action.cost for name, action in config.playbook.actions.items()},
        "products": {code: p.model_dump() for code, p in config.products.items()},
        "years": config.value.years,
        "discount_rate": config.value.discount_rate,
        "horizon_days": config.labels.horizon_days,
    }


def simulate_with_config(
    bank_dir: Path, frame: pd.DataFrame, config: Any, seeds: int = 5, as_of: pd.Timestamp | None = None
) -> dict[str, Any]:
    """`simulate_list` with the costs, catalogue, value parameters and horizon of an `AppConfig`."""
    return simulate_list(bank_dir, frame, seeds=seeds, as_of=as_of, **_parameters(config))


def expected_savings(
    bank_dir: Path, frames: Mapping[str, pd.DataFrame], config: Any, seeds: int, first_seed: int
) -> pd.DataFrame:
    """What each contact of each list in `frames` (lists of one date) saves on its own, over `seeds`
    continuations numbered from `first_seed`, on common random numbers. Each customer's saving is
    close to what it would be in any other list, not exactly: a contact's reach is drawn by its
    place among the list's contacts (as in `simulate_list`), so other contacts before it can change
    its draw. One row per list and contacted customer: list, customer_id, action, saved (the chance
    the customer is lost without the contact and kept with it, less the reverse), moved (the chance
    the contact changed the outcome either way, for the variance: the saving is -1, 0 or 1 in each
    continuation), lost (the chance the customer is lost without the contact; lost - saved is the
    chance with it), value, cost, and net (saved x value - cost). A benchmark's tool: many candidate
    contacts scored at once, on continuations its evaluation does not use."""
    if seeds < 1:
        raise SimulationError("seeds: at least 1")
    if not frames:
        raise SimulationError("lists: none to score")
    params = _parameters(config)
    first = next(iter(frames.values()))
    manifest, _, m0, horizon, base = _start(bank_dir, first, params["costs"], params["horizon_days"], None)
    value = _value(base, params["products"], params["years"], params["discount_rate"])
    lists = {name: prepare_list(frame, manifest, params["costs"], None) for name, frame in frames.items()}
    if any(contacts.as_of != lists[next(iter(lists))].as_of for contacts in lists.values()):
        raise SimulationError("as_of: the lists to compare hold different dates")
    saved = {name: np.zeros(contacts.position.size) for name, contacts in lists.items()}
    moved = {name: np.zeros(contacts.position.size) for name, contacts in lists.items()}
    lost = {name: np.zeros(contacts.position.size) for name, contacts in lists.items()}
    for k in range(first_seed, first_seed + seeds):
        streams = (int(manifest["seed"]), STREAM, k)
        left_without = _continue(base, m0, horizon, streams, None)
        for name, contacts in lists.items():
            who = contacts.position
            left_with = _continue(base, m0, horizon, streams, contacts)[who]
            saved[name] += left_without[who].astype(float) - left_with.astype(float)
            moved[name] += left_without[who] != left_with
            lost[name] += left_without[who]
    out = []
    for name, contacts in lists.items():
        chance = saved[name] / seeds
        frame = pd.DataFrame(
            {
                "list": name,
                "customer_id": contacts.position + FIRST_ID,
                "action": np.asarray(ACTIONS)[contacts.action],
                "saved": chance,
                "moved": moved[name] / seeds,
                "lost": lost[name] / seeds,
                "value": value[contacts.position],
                "cost": contacts.cost,
            }
        )
        out.append(frame.assign(net=frame["saved"] * frame["value"] - frame["cost"]))
    return pd.concat(out, ignore_index=True)


__all__ = [
    "REACH",
    "SimulationError",
    "prepare_list",
    "read_list",
    "replay",
    "simulate_list",
    "simulate_with_config",
    "expected_savings",
]
