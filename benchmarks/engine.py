"""Raw Parquet to features on a generated bank: the local engine against a plain DuckDB query over
the same files, measured in the same run (issue 19's yardstick).

Run with `make bench-engine` (`--customers 100000` by default; the bank is generated once into
benchmarks/.cache/). Each side runs in a process of its own, so its peak resident memory is its
own (`ru_maxrss`):

- `local`: `churn features --data BANK` itself (`features.jobs.run_features`, the local engine):
  the bank read as customer ranges of `engine.partition_customers` (`--partition-customers`),
  each partition read, validated, featurised and labelled, and written as Parquet parts; the
  seconds of each stage are summed over the partitions (the rest is the first pass over
  customers and balances that finds the bank's month-end range, and joining the rejects);
- `duckdb`: one DuckDB connection over the same files applies the same row checks to the two big
  tables (types and ranges, allowed categories, event dates inside the extract, unique keys, known
  customers, a complaint resolved after it was made), counts what it would reject, and computes
  per customer the transaction window aggregates (count, money in and out, by channel, for 30, 90
  and 365 days before the as-of date) and the interaction ones (logins, complaints, service calls
  per window, unresolved complaints, days since the last of each): a smaller job than the local
  side's 84 features, and the floor a columnar engine sets.

Prints time per side and stage, peak memory per side, and the ratios local / DuckDB against the issue's
targets (at most 1.5x the time, under 2 GB peak).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
WINDOWS = (30, 90, 365)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_local(bank: Path, per_partition: int | None) -> dict:
    import tempfile

    import pandas as pd

    from churn.config import load_config
    from features.jobs import run_features

    with tempfile.TemporaryDirectory() as out:
        config = load_config(environ={"CHURN_DATA_SOURCE": str(bank), "CHURN_OUTPUT_DIR": out})
        if per_partition:
            engine = config.engine.model_copy(update={"partition_customers": per_partition})
            config = config.model_copy(update={"engine": engine})
        started = time.perf_counter()
        summary = run_features(config)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "stages": summary.stage_seconds,
        "partitions": summary.partitions,
        "source": summary.source,
        "as_of": f"{summary.as_of:%Y-%m-%d}",
        "extract_date": f"{pd.Timestamp(config.data.resolved_extract_date()):%Y-%m-%d}",
        "customers": summary.customers,
        "features": summary.feature_count,
        "rejected": sum(summary.rejects.values()),
    }


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _checked(table: str, key: str, files: dict[str, str], checks: str, as_of: str, aggregates: str) -> str:
    """One pass over a table: each row checked (the given checks, a unique key, a known customer),
    then per customer the count of rejected rows and the window aggregates of the valid ones
    before the as-of date."""
    return f"""
        WITH t AS (SELECT * FROM read_parquet('{files[table]}')),
        dup AS (SELECT {key} FROM t GROUP BY {key} HAVING count(*) > 1),
        known AS (SELECT DISTINCT customer_id FROM read_parquet('{files["customers"]}')),
        checked AS (
            SELECT t.*, (
                {checks} OR t.{key} IN (SELECT {key} FROM dup)
                OR t.customer_id NOT IN (SELECT customer_id FROM known)
            ) AS rejected FROM t
        ),
        usable AS (SELECT *, NOT rejected AND ts < DATE '{as_of}' AS ok FROM checked)
        SELECT customer_id, count(*) FILTER (WHERE rejected) AS rejected, {aggregates}
        FROM usable GROUP BY customer_id
    """


def run_duckdb(bank: Path, as_of: str, extract_date: str) -> dict:
    import duckdb
    import pyarrow.compute as pc

    from features.schema import (
        DIRECTIONS,
        INTERACTION_CHANNELS,
        INTERACTION_TYPES,
        TRANSACTION_CATEGORIES,
        TRANSACTION_CHANNELS,
    )

    started = time.perf_counter()
    con = duckdb.connect()
    files = {name: str(bank / f"{name}.parquet") for name in ("customers", "transactions", "interactions")}

    def since(d: int) -> str:
        return f"ok AND ts >= DATE '{as_of}' - INTERVAL {d} DAY"

    transaction_aggregates = ", ".join(
        f"count(*) FILTER (WHERE {since(d)}) AS n_{d}, "
        f"sum(amount) FILTER (WHERE direction = 'in' AND {since(d)}) AS in_{d}, "
        f"sum(amount) FILTER (WHERE direction = 'out' AND {since(d)}) AS out_{d}, "
        + ", ".join(
            f"count(*) FILTER (WHERE channel = '{c}' AND {since(d)}) AS {c}_{d}" for c in TRANSACTION_CHANNELS
        )
        for d in WINDOWS
    )
    event = f"ts IS NULL OR ts > TIMESTAMP '{extract_date}' OR ts < TIMESTAMP '1900-01-01'"
    transaction_checks = f"""
        transaction_id IS NULL OR transaction_id < 1 OR customer_id IS NULL OR customer_id < 1 OR {event}
        OR amount IS NULL OR amount < 0 OR isnan(amount) OR direction NOT IN {_in(DIRECTIONS)}
        OR channel NOT IN {_in(TRANSACTION_CHANNELS)} OR category NOT IN {_in(TRANSACTION_CATEGORIES)}
    """
    tx = con.sql(
        _checked("transactions", "transaction_id", files, transaction_checks, as_of, transaction_aggregates)
    ).to_arrow_table()
    kinds = ("login", "complaint", "service_call")
    interaction_aggregates = ", ".join(
        [f"count(*) FILTER (WHERE type = '{k}' AND {since(d)}) AS {k}_{d}" for k in kinds for d in WINDOWS]
        + [
            f"date_diff('day', max(ts) FILTER (WHERE ok AND type = '{k}'), DATE '{as_of}') AS days_since_{k}"
            for k in kinds
        ]
        + [
            f"count(*) FILTER (WHERE ok AND type = 'complaint' AND (resolved_at IS NULL OR resolved_at >= DATE '{as_of}')) "
            "AS unresolved_complaints"
        ]
    )
    interaction_checks = f"""
        interaction_id IS NULL OR interaction_id < 1 OR customer_id IS NULL OR customer_id < 1 OR {event}
        OR type NOT IN {_in(INTERACTION_TYPES)} OR channel NOT IN {_in(INTERACTION_CHANNELS)}
        OR (resolved_at IS NOT NULL AND (resolved_at < ts OR resolved_at > TIMESTAMP '{extract_date}'))
    """
    ix = con.sql(
        _checked("interactions", "interaction_id", files, interaction_checks, as_of, interaction_aggregates)
    ).to_arrow_table()
    rejected = sum(pc.sum(table.column("rejected")).as_py() or 0 for table in (tx, ix))
    return {
        "seconds": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
        "customers": max(tx.num_rows, ix.num_rows),
        "aggregates": tx.num_columns + ix.num_columns - 4,
        "rejected": rejected,
    }


def bench_copy(url: str, rows: int = 200_000) -> tuple[float, float]:
    """Seconds to append `rows` list-like rows (ids, floats with gaps, flags, timestamps, text) to a
    throwaway PostgreSQL database by pandas' batched INSERTs and by COPY (`features.bulk`)."""
    import numpy as np
    import pandas as pd
    import sqlalchemy as sa

    from features.bulk import write_rows

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows, dtype=np.int64),
            "churn_probability": rng.random(rows),
            "value": np.where(rng.random(rows) < 0.1, np.nan, rng.random(rows) * 1e4),
            "contact": rng.random(rows) < 0.05,
            "as_of": pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 30, rows), unit="D"),
            "action": rng.choice(["rate_offer", "retention_call", "service_recovery_call"], rows),
        }
    )
    server = url.rsplit("/", 1)[0]
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    name = "churn_bench_copy"
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    engine = sa.create_engine(f"{server}/{name}")
    try:
        times = []
        for table, write in (
            ("by_insert", lambda f, t, c: f.to_sql(t, c, index=False, chunksize=20_000)),
            ("by_copy", write_rows),
        ):
            started = time.perf_counter()
            with engine.begin() as connection:
                write(frame, table, connection)
            times.append(time.perf_counter() - started)
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE {name}"))
        admin.dispose()
    return times[0], times[1]


def _child(side: str, bank: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--side", side, "--bank", str(bank), *extra],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--side", choices=["local", "duckdb"], help="(internal) run one side, print JSON")
    parser.add_argument("--bank", type=Path, help="(internal) the bank's folder")
    parser.add_argument(
        "--partition-customers", type=int, help="customers per partition [config: engine.partition_customers]"
    )
    parser.add_argument("--as-of")
    parser.add_argument("--extract-date")
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server for the COPY comparison (a throwaway database); 'none' skips it",
    )
    parser.add_argument("--copy-rows", type=int, default=200_000, help="list rows of the COPY comparison")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.side == "local":
        from features.memory import use_system_arrow_pool

        use_system_arrow_pool()  # as the `churn` command does, before Arrow loads
        print(json.dumps(run_local(args.bank, args.partition_customers)))
        return 0
    if args.side == "duckdb":
        print(json.dumps(run_duckdb(args.bank, args.as_of, args.extract_date)))
        return 0

    from benchmarks.cached import cached_bank
    from churn.config import load_config

    bank = CACHE / f"uplift_{args.customers}_seed{args.seed}"  # the same bank bench-uplift uses
    if not (bank / "manifest.json").exists():
        cached_bank(bank, args.customers, args.seed, load_config(environ={"CHURN_DATA_SOURCE": str(bank)}))
    size = sum(p.stat().st_size for p in bank.glob("*.parquet")) / 2**20
    local = _child(
        "local",
        bank,
        *(["--partition-customers", str(args.partition_customers)] if args.partition_customers else []),
    )
    base = _child("duckdb", bank, "--as-of", local["as_of"], "--extract-date", local["extract_date"])
    print(
        f"bank: {args.customers:,} customers, seed {args.seed}, {size:,.0f} MB of Parquet; as of {local['as_of']}"
    )
    print(f"local engine read {local['source']}")
    print(f"{'':34s}{'seconds':>10s}{'peak MB':>10s}")
    for stage, seconds in local["stages"].items():
        print(f"  local {stage + ' (all partitions)':26s}{seconds:>10.1f}")
    print(
        f"local engine, raw to features     {local['seconds']:>10.1f}{local['peak_mb']:>10,.0f}   "
        f"({local['customers']:,} customers x {local['features']} features, {local['rejected']} rows rejected)"
    )
    print(
        f"DuckDB baseline                   {base['seconds']:>10.1f}{base['peak_mb']:>10,.0f}   "
        f"({base['customers']:,} customers x {base['aggregates']} aggregates, {base['rejected']} rows rejected)"
    )
    ratio = local["seconds"] / base["seconds"]
    print(
        f"time, local / DuckDB               {ratio:>10.2f}   (target <= 1.50: {'met' if ratio <= 1.5 else 'NOT met'})"
    )
    peak = local["peak_mb"] / 1024
    print(
        f"peak memory, local                 {peak:>10.2f} GB (target < 2 GB: {'met' if peak < 2 else 'NOT met'}; "
        f"{local['peak_mb'] / base['peak_mb']:.1f}x DuckDB's)"
    )
    figures = {"local": local, "duckdb": base, "time_ratio": ratio}
    if args.postgres != "none":
        insert, copy = bench_copy(args.postgres, args.copy_rows)
        print(
            f"PostgreSQL, {args.copy_rows:,} list rows".ljust(35)
            + f"INSERT {insert:.2f} s, COPY {copy:.2f} s: {insert / copy:.1f}x faster by COPY"
        )
        figures["copy"] = {"rows": args.copy_rows, "insert_s": insert, "copy_s": copy}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
