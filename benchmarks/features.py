"""Benchmark `build_features` on a generated bank of 100,000 customers x 24 months.

Run with `make bench-features`. The bank is generated once into benchmarks/.cache/. For 25k, 50k
and 100k customers (the first N customers of the same bank, with all their rows) it reports the
wall time of one `build_features` call, transactions per second, and the peak extra memory
(the peak of Python and NumPy allocations during the call, traced with tracemalloc in a separate,
untimed run; the input tables' own size is printed beside it).

The baseline, measured in the same run on the same rows, is one pandas groupby-sum of transaction
amounts by customer over the same 365-day lookback: the floor cost of touching each transaction
once. The ratio says how many such passes the whole feature build costs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
import tracemalloc
from pathlib import Path

import pandas as pd

from churn.config import load_config
from features.build import LOOKBACK_DAYS, build_features
from features.generator import generate_bank, write_bank
from features.io import read_tables
from features.labels import last_confirmable_as_of
from features.schema import for_customers

CACHE = Path(__file__).resolve().parent / ".cache"


def peak_allocation(fn, *args) -> int:
    """Peak bytes allocated while `fn` runs (Python and NumPy allocations, traced; not timed)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bank_path(customers: int, months: int, seed: int) -> Path:
    path = CACHE / f"bank_{customers}x{months}_seed{seed}"
    if not (path / "manifest.json").exists():
        started = time.perf_counter()
        print(f"generating {customers:,} customers x {months} months into {path} ...", flush=True)
        write_bank(generate_bank(customers=customers, months=months, seed=seed), path)
        print(f"  generated in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def subset(tables: dict[str, pd.DataFrame], customers: int) -> dict[str, pd.DataFrame]:
    """The first `customers` customers' rows (the market's rates whole)."""
    part = for_customers(tables, tables["customers"]["customer_id"].iloc[:customers])
    return {name: frame.reset_index(drop=True) for name, frame in part.items()}


def baseline_pass(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> None:
    tx = tables["transactions"]
    window = tx[(tx["ts"] < as_of) & (tx["ts"] >= as_of - pd.Timedelta(days=LOOKBACK_DAYS))]
    window.groupby("customer_id")["amount"].sum()


def best_of(repeats: int, fn, *args) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    config = load_config(environ={})
    products = tuple(config.products)
    tables = read_tables(bank_path(max(args.customers), args.months, args.seed))
    as_of = last_confirmable_as_of(tables, config.labels)
    print(f"as-of {as_of:%Y-%m-%d}; {os.cpu_count()} CPUs; best of {args.repeats}")
    print(
        f"{'customers':>10} {'transactions':>13} {'in lookback':>12} {'seconds':>8} {'txn/s':>12} "
        f"{'input':>11} {'peak alloc':>11} {'baseline s':>10} {'ratio':>6} {'s per 1k cust':>13}"
    )
    results = []
    for size in sorted(args.customers):
        part = subset(tables, size) if size < len(tables["customers"]) else tables
        n_tx = len(part["transactions"])
        in_lookback = int(
            (
                (part["transactions"]["ts"] < as_of)
                & (part["transactions"]["ts"] >= as_of - pd.Timedelta(days=LOOKBACK_DAYS))
            ).sum()
        )
        build_features(part, as_of, config.features, products)  # warm-up
        seconds = best_of(args.repeats, build_features, part, as_of, config.features, products)
        peak = peak_allocation(build_features, part, as_of, config.features, products)
        input_mib = sum(f.memory_usage(deep=True).sum() for f in part.values()) / 2**20
        baseline = best_of(args.repeats, baseline_pass, part, as_of)
        row = {
            "customers": size,
            "transactions": n_tx,
            "transactions_in_lookback": in_lookback,
            "seconds": seconds,
            "transactions_per_second": n_tx / seconds,
            "input_tables_mib": input_mib,
            "peak_allocated_mib": peak / 2**20,
            "baseline_seconds": baseline,
            "ratio_to_baseline": seconds / baseline,
        }
        results.append(row)
        print(
            f"{size:>10,} {n_tx:>13,} {in_lookback:>12,} {seconds:>8.2f} {row['transactions_per_second']:>12,.0f} "
            f"{row['input_tables_mib']:>8.0f} MiB {row['peak_allocated_mib']:>8.0f} MiB {baseline:>10.2f} {row['ratio_to_baseline']:>6.1f} {1000 * seconds / size:>13.3f}"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = (last["seconds"] / first["seconds"]) / (last["customers"] / first["customers"])
        print(
            f"time grows {last['seconds'] / first['seconds']:.2f}x for {last['customers'] / first['customers']:.0f}x customers "
            f"(1.00 = linear; measured {growth:.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
