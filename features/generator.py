"""A seeded synthetic retail bank whose churn has known causes (the ground truth in `truth/`).

The bank is simulated month by month, vectorised over customers (`features/bank/`). Every customer
who decides to leave does so for a planted cause (`features.causes`): the bank's own service
failures (unresolved complaints, fee disputes, service incidents), competition (a rival's rate in
the customer's region felt through a hidden rate sensitivity, a term deposit that lapsed, a
salary that moved), or natural circumstances (a move, retirement, death, hardship), each leaving
the weak, realistic signals such events leave in a bank's data. Leaving is mostly silent: money
drains out over one to three months, then the customer closes everything or keeps an empty
account. The bank runs its own retention campaigns with a randomised control group and a small
exploration share. The ground truth (cause and kind of churn per leaver, hazards per month, hidden
traits) is written to `truth/`, which the product never reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.bank.assemble import assemble
from features.bank.causes import DEFAULT_TYPE_SHARES, NO_CAUSE, WEIGHTS, CauseModel
from features.bank.contacts import EXPLORATION_SHARE
from features.bank.months import Bank
from features.bank.population import UPLIFT_TYPES, competitor_gaps, draw_population, open_initial_products
from features.bank.response import truth_table
from features.bank.state import FIRST_ID, NEVER, PRODUCTS, Events, Holdings, days, month_starts
from features.causes import CAUSE_CODES, CAUSES
from features.schema import INCOME_BANDS, REGIONS

GENERATOR_VERSION = "6"
MAX_EXPLORATION = 0.2  # a test-and-learn programme drawing more of the book each month is no longer a sample
__all__ = ["DRIFT_SCENARIOS", "PRODUCTS", "GeneratedBank", "generate_bank", "write_bank"]

# Drift scenarios `generate_bank` can play in its last months (what monitoring must find).
DRIFT_SCENARIOS = {
    "rate_campaign": "a competitor's rate campaign in one region: money moves out to other banks",
    "app_outage": "the mobile app mostly down: logins fall to a tenth, service incidents multiply",
    "channel_recode": "a source system starts coding mobile-app transactions as branch ones",
}


@dataclass(frozen=True)
class GeneratedBank:
    """The seven raw tables and the generator's ground truth."""

    tables: dict[str, pd.DataFrame]
    truth_customers: pd.DataFrame
    truth_hazard: pd.DataFrame
    manifest: dict


def generate_bank(
    customers: int = 2500,
    months: int = 24,
    seed: int = 20261122,
    start: str | pd.Timestamp = "2024-11-01",
    activity: float = 1.0,
    scenario: str | None = None,
    drift_months: int = 2,
    drift_region: str = "North",
    type_shares: dict[str, float] | None = None,
    market_seed: int | None = None,
    exploration_share: float = EXPLORATION_SHARE,
) -> GeneratedBank:
    """Simulate a retail bank and return its raw tables and ground truth.

    Args:
        customers: number of customers (about 12% of them join during the simulated months).
        months: number of simulated months, starting at `start`.
        seed: seed of the random generator; the same arguments give the same bank.
        start: first day of the first simulated month.
        activity: multiplies transaction and login rates (1.0 is about 11 transactions a month).
        scenario: a drift in the last `drift_months` months, for monitoring to find (see
            `DRIFT_SCENARIOS`); None for none. The months before are the same bank either way.
        drift_months: how many of the last months the scenario covers.
        drift_region: the region of the `rate_campaign` scenario.
        type_shares: the shares of leavers by kind of churn to aim for (natural, competitive,
            service_failure); the defaults follow retail-banking practice.
        market_seed: seed of the competitor-rate path; `seed` when None (banks generated in
            parts share one market by passing the same one).
        exploration_share: the share of the active book the bank's test-and-learn programme
            draws each month at random (half of it held back as controls; `features.bank.contacts`):
            how much randomised history the uplift models learn from.

    Returns:
        The tables keyed by name, and the generator's ground truth.
    """
    if scenario is not None and scenario not in DRIFT_SCENARIOS:
        raise ValueError(f"scenario: {scenario!r} is not one of {', '.join(DRIFT_SCENARIOS)}")
    if drift_region not in REGIONS:
        raise ValueError(f"drift_region: {drift_region!r} is not one of {', '.join(REGIONS)}")
    if not 1 <= drift_months < months:
        raise ValueError(f"drift_months: {drift_months} is not between 1 and {months - 1}")
    if not 0.0 <= exploration_share <= MAX_EXPLORATION:
        raise ValueError(f"exploration_share: {exploration_share} is not between 0 and {MAX_EXPLORATION}")
    bank, starts = simulated_bank(
        customers,
        months,
        seed,
        start,
        activity,
        scenario,
        drift_months,
        drift_region,
        type_shares,
        market_seed,
        exploration_share=exploration_share,
    )
    drift_from = months - drift_months
    pop, holdings, start_days, gap, start = bank.pop, bank.holdings, bank.days, bank.gap, pd.Timestamp(start)
    ids = np.arange(FIRST_ID, FIRST_ID + customers)
    attributes = {
        "join_date": pop.join_day,
        "birth_year": pop.birth_year,
        "gender": pop.gender,
        "segment": np.array(["mass", "affluent", "private"])[pop.segment],
        "region": np.array(REGIONS)[pop.region],
        "branch_id": np.char.add("BR", np.char.zfill((pop.branch + 1).astype(str), 3)),
        "income_band": np.array(INCOME_BANDS)[pop.income_band],
        "is_payroll": pop.declared_payroll,
        "do_not_contact": pop.do_not_contact,
    }
    tables = assemble(bank.events, holdings, ids, attributes, start_days[-1], gap, starts)
    if scenario == "channel_recode":  # a core-system upgrade codes mobile-app payments as branch ones
        transactions = tables["transactions"]
        recoded = (transactions["ts"] >= starts[drift_from]) & (transactions["channel"] == "mobile")
        transactions.loc[recoded, "channel"] = "branch"
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "customers": customers,
        "months": months,
        "seed": seed,
        "start": str(start.date()),
        "end": str(starts[-1].date() - pd.Timedelta(days=1)),
        "activity": activity,
        "type_shares": bank.causes.type_shares,
        "market_seed": market_seed,
        "exploration_share": exploration_share,
        "drift_months": drift_months,
        "drift_region": drift_region,
        "rows": {name: len(frame) for name, frame in tables.items()},
        "scenario": None
        if scenario is None
        else {
            "name": scenario,
            "from": str(starts[drift_from].date()),
            "region": drift_region if scenario == "rate_campaign" else None,
            "description": DRIFT_SCENARIOS[scenario],
        },
    }
    return GeneratedBank(
        tables, _truth_customers(bank, ids, starts), _truth_hazard(bank, ids, starts), manifest
    )


def simulated_bank(
    customers: int,
    months: int,
    seed: int,
    start: str | pd.Timestamp,
    activity: float,
    scenario: str | None,
    drift_months: int,
    drift_region: str,
    type_shares: dict[str, float] | None,
    market_seed: int | None,
    extra_months: int = 0,
    run_months: int | None = None,
    events: Events | None = None,
    exploration_share: float = EXPLORATION_SHARE,
) -> tuple[Bank, pd.DatetimeIndex]:
    """The bank's state after its `months` simulated months (the arguments of `generate_bank`),
    with room for `extra_months` more: the calendar runs on, and the market holds its last month's
    competitor rates (what `churn simulate` continues). `run_months` stops earlier (a list dated
    inside the history); `events` replaces the collector of the rows the tables are made of."""
    causes = CauseModel(dict(type_shares) if type_shares else dict(DEFAULT_TYPE_SHARES))
    drift_from = months - drift_months
    start = pd.Timestamp(start)
    rng = np.random.default_rng(seed)
    starts = month_starts(start, months)
    start_days = days(starts)
    pop = draw_population(rng, customers, months, start, start_days, activity)
    holdings = Holdings(customers)
    balances = open_initial_products(rng, pop, holdings, start_days[0])
    gap = competitor_gaps(
        np.random.default_rng(seed if market_seed is None else market_seed), months, len(REGIONS)
    )
    if scenario == "rate_campaign":  # a competitor's aggressive rate offer in one region
        gap[drift_from:, REGIONS.index(drift_region)] += 3.0
    if extra_months:
        gap = np.vstack([gap, np.repeat(gap[-1:], extra_months, axis=0)])
        start_days = days(month_starts(start, months + extra_months))
    bank = Bank(
        rng,
        pop,
        holdings,
        start_days,
        balances,
        gap,
        causes,
        activity,
        scenario,
        drift_from,
        exploration_share,
    )
    if events is not None:
        bank.events = events
    # every part of every month draws from its own stream: a drift scenario changes what it
    # changes, and the rest of the bank stays the same customer by customer
    bank.streams = (seed,)
    for m in range(months if run_months is None else run_months):
        bank.step(m)
    return bank, starts


def _month_date(month: np.ndarray, starts: pd.DatetimeIndex) -> pd.Series:
    return pd.Series(
        pd.to_datetime(
            np.where(month >= 0, starts[np.clip(month, 0, len(starts) - 1)].asi8, np.iinfo(np.int64).min)
        )
    )


def _truth_customers(bank: Bank, ids: np.ndarray, starts: pd.DatetimeIndex) -> pd.DataFrame:
    pop = bank.pop
    decided = bank.decided_month >= 0
    cause = np.where(bank.cause >= 0, np.array(CAUSE_CODES, dtype=object)[np.maximum(bank.cause, 0)], None)
    kind = np.array([CAUSES[c][0] if c is not None else None for c in cause], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "decided_to_leave": _month_date(np.where(decided, bank.decided_month, -1), starts),
            "leave_mode": pd.Categorical(
                np.where(decided, bank.decided_mode, None), categories=["closed", "silent"]
            ),
            "churn_type": pd.Categorical(kind, categories=["service_failure", "competitive", "natural"]),
            "cause_code": pd.Categorical(cause, categories=CAUSE_CODES),
            "won_back": _month_date(np.where(bank.won_back_month != NEVER, bank.won_back_month, -1), starts),
            "won_back_cause": pd.Categorical(
                np.where(
                    bank.won_back_cause >= 0,
                    np.array(CAUSE_CODES, dtype=object)[np.maximum(bank.won_back_cause, 0)],
                    None,
                ),
                categories=CAUSE_CODES,
            ),
            "uplift_type": pd.Categorical(np.array(UPLIFT_TYPES)[pop.uplift_type], categories=UPLIFT_TYPES),
            "rate_sensitivity": pop.rate_sensitivity,
            "digital": pop.digital,
            "moved": _month_date(np.where(bank.moved_month != NEVER, bank.moved_month, -1), starts),
            "retired": _month_date(np.where(bank.retired_month != NEVER, bank.retired_month, -1), starts),
            "hardship": _month_date(np.where(bank.hardship_month != NEVER, bank.hardship_month, -1), starts),
            "died": _month_date(np.where(bank.died_month != NEVER, bank.died_month, -1), starts),
            "salary_moved": _month_date(
                np.where(bank.salary_moved_month != NEVER, bank.salary_moved_month, -1), starts
            ),
        }
    )


def _truth_hazard(bank: Bank, ids: np.ndarray, starts: pd.DatetimeIndex) -> pd.DataFrame:
    hz = bank.events.concat("hz")
    return pd.DataFrame(
        {"customer_id": ids[hz["customer"]], "month_start": starts[hz["month"]], "hazard": hz["hazard"]}
    )


# Parquet layout chosen so the committed sample stays small: sorted ids and times delta-encode well.
_DELTA_COLUMNS = {"transaction_id", "interaction_id", "holding_id", "contact_id", "customer_id", "ts"}


def write_bank(bank: GeneratedBank, out_dir: str | Path) -> Path:
    """Write the tables as Parquet, and the ground truth under `truth/`, into `out_dir`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    for name, frame in bank.tables.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        delta = [c for c in frame.columns if c in _DELTA_COLUMNS]
        pq.write_table(
            table,
            out / f"{name}.parquet",
            compression="zstd",
            compression_level=9,
            use_dictionary=[c for c in frame.columns if c not in _DELTA_COLUMNS],
            column_encoding=dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
            use_byte_stream_split=[c for c in frame.columns if frame[c].dtype == np.float64],
        )
    bank.truth_customers.to_parquet(out / "truth" / "customers.parquet", index=False)
    bank.truth_hazard.to_parquet(out / "truth" / "hazard.parquet", index=False, compression="zstd")
    drivers = {
        "cause_hazard_weights": WEIGHTS,
        "causes": {code: {"churn_type": t, "meaning": meaning} for code, (t, meaning) in CAUSES.items()},
        "contact_response": truth_table(),
        "no_cause": NO_CAUSE,
    }
    (out / "truth" / "drivers.json").write_text(json.dumps(drivers, indent=2) + "\n")
    (out / "manifest.json").write_text(json.dumps(bank.manifest, indent=2) + "\n")
    return out
