"""How long a reload of the stored customers stalls the requests served beside it.

Run with `make bench-reload`. The API reloads every stored customer when the daily job writes new
rows or a champion is promoted (`serving.service_state.load_customers`), in a thread beside the
requests; whatever that thread does in one C call without releasing the interpreter, no request
can do meanwhile. This builds a serving store of `--customers` customers (the `make bench-serve`
workspace's stored rows, repeated under new ids, in benchmarks/.cache/reload), loads its champion,
and times two reloads, each replacing what the one before loaded and then collecting and
freezing the garbage collector's objects, as a swap does (freeing the old customers is part of
it), while a heartbeat thread sleeps 1 ms at a time and records how late
it wakes:

- the baseline, as the server loaded before chunking: both tables read whole, then converted
  whole (the same steps `load_customers` takes, on all rows at once);
- `load_customers`, `serving.service_state.CHUNK_ROWS` customers at a time.

The longest wait is the longest a request could be held up by the reload alone; a request sees
it on top of its own time. Prints each load's seconds and longest wait, and the ratios.

`--database postgres` copies the store into a throwaway PostgreSQL database and runs the same
loads there, then a third reload during which the daily job's publish begins (its first step,
`DROP TABLE customer_features`, rolled back): the reload reads one snapshot through a server-side
cursor, so the DROP waits for it, and the benchmark prints how long.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.serve import CACHE as SERVE_CACHE
from benchmarks.serve import _env, workspace

CACHE = Path(__file__).resolve().parent / ".cache" / "reload"
WAIT_TARGET_MS = 25.0  # the API's p99 target: a reload alone should not hold a request longer


class Heartbeat:
    """A thread that sleeps 1 ms at a time and records how late each wake-up is."""

    def __init__(self) -> None:
        self.gaps: list[tuple[float, float]] = []  # (when the wake-up came, how late)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            self.gaps.append((now, now - last))
            last = now

    def measure(self, action: Callable[[], object]) -> dict[str, float]:
        time.sleep(0.2)  # let a wait that began before `action` end before it starts
        started = time.perf_counter()
        self.gaps.clear()
        action()
        seconds = time.perf_counter() - started
        at, late = (np.asarray(column) for column in zip(*self.gaps, strict=True))
        waits = late[at - late >= started] * 1000  # only the waits that began during `action`
        at = at[at - late >= started]
        long = waits > WAIT_TARGET_MS
        return {
            "seconds": seconds,
            "longest_wait_ms": float(waits.max()),
            "waits_over_25ms": int(long.sum()),
            # where in the reload the long waits ended, in seconds from its start
            "long_waits_end_s": [round(float(t - started), 2) for t in at[long]],
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def build_store(customers: int) -> str:
    """A serving database of `customers` customers: the workspace's stored rows repeated."""
    import pandas as pd
    import sqlalchemy as sa

    from serving.tables import CONTEXT_TABLE, FEATURES_TABLE, RUNS_TABLE

    path = CACHE / f"{customers}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url
    CACHE.mkdir(parents=True, exist_ok=True)
    source = sa.create_engine(f"sqlite:///{SERVE_CACHE / 'out' / 'churn.db'}")
    target = sa.create_engine(f"sqlite:///{path}.part")
    with source.connect() as connection:
        tables = {
            name: pd.read_sql(sa.text(f"SELECT * FROM {name}"), connection)
            for name in (FEATURES_TABLE, CONTEXT_TABLE)
        }
        runs = pd.read_sql(sa.text(f"SELECT * FROM {RUNS_TABLE}"), connection)
    ids = np.arange(1, customers + 1)
    with target.begin() as connection:
        for name, rows in tables.items():
            repeated = rows.iloc[np.arange(customers) % len(rows)].assign(customer_id=ids)
            repeated.to_sql(name, connection, index=False, chunksize=10_000)
        runs.to_sql(RUNS_TABLE, connection, index=False)
    target.dispose()
    Path(f"{path}.part").rename(path)
    return url


POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_copy(sqlite_url: str) -> tuple[str, Callable[[], None]]:
    """(url, drop): a throwaway PostgreSQL database holding the SQLite store's tables, and the
    function that drops it."""
    import uuid

    import pandas as pd
    import sqlalchemy as sa

    from features.bulk import write_rows
    from serving.tables import CONTEXT_TABLE, FEATURES_TABLE, RUNS_TABLE

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"churn_bench_reload_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    source, target = sa.create_engine(sqlite_url), sa.create_engine(url)
    try:
        with source.connect() as reading, target.begin() as writing:
            for table in (FEATURES_TABLE, CONTEXT_TABLE, RUNS_TABLE):
                for chunk in pd.read_sql(sa.text(f"SELECT * FROM {table}"), reading, chunksize=20_000):
                    write_rows(chunk, table, writing)  # COPY, as the daily job writes them
    except BaseException:
        drop()
        raise
    finally:
        source.dispose()
        target.dispose()
    return url, drop


def replacement_wait(url: str, after_s: float) -> Callable[[], float]:
    """Start, `after_s` seconds from now, what the daily job's publish does first on PostgreSQL
    (`DROP TABLE customer_features` in its transaction, rolled back here), in a thread; the
    returned function waits for it and gives how long the DROP waited for its lock, in seconds."""
    import sqlalchemy as sa

    from serving.tables import FEATURES_TABLE

    waited: list[float] = []

    def replace() -> None:
        time.sleep(after_s)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                transaction = connection.begin()
                started = time.perf_counter()
                connection.execute(sa.text(f"DROP TABLE {FEATURES_TABLE}"))
                waited.append(time.perf_counter() - started)
                transaction.rollback()
        finally:
            engine.dispose()

    thread = threading.Thread(target=replace, daemon=True)
    thread.start()

    def result() -> float:
        thread.join()
        return waited[0]

    return result


def whole_read(store, bundle) -> tuple:
    """The reload as it was before chunking: every row read, then converted, at once."""
    import pandas as pd
    import sqlalchemy as sa

    from serving.scoring import CUSTOMER_COLUMNS
    from serving.tables import CONTEXT_TABLE, FEATURES_TABLE

    with store.engine.connect() as connection:
        features = pd.read_sql(sa.text(f"SELECT * FROM {FEATURES_TABLE}"), connection)
        context = pd.read_sql(sa.text(f"SELECT * FROM {CONTEXT_TABLE}"), connection)
    features = features.set_index("customer_id").drop(columns=["as_of"], errors="ignore")
    context = context.set_index("customer_id").reindex(features.index)
    context["do_not_contact"] = context["do_not_contact"].fillna(False).astype(bool)
    ids = features.index.to_numpy()
    return (
        ids,
        {customer: row for row, customer in enumerate(ids.tolist())},
        bundle.matrix(bundle.prepare(features)),
        {column: context[column].to_numpy() for column in CUSTOMER_COLUMNS},
        pd.to_datetime(context["join_date"], errors="coerce").to_numpy("datetime64[ns]"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: the same store copied into a throwaway database on 127.0.0.1:5432 (dropped "
        "at the end); also times how long the daily job's table replacement waits for a reload",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    workspace()
    os.environ.update(_env())
    from serving.service_state import (
        CHUNK_ROWS,
        load_champion,
        load_customers,
        service_settings,
        settle_memory,
    )
    from serving.store import ServingStore

    url = build_store(args.customers)
    drop = None
    if args.database == "postgres":
        print(f"copying {args.customers:,} stored customers into PostgreSQL ...", flush=True)
        url, drop = postgres_copy(url)
    config, _ = service_settings()
    bundle = load_champion(config, None).bundle
    store = ServingStore(url)
    settle_memory()  # as the server does after start-up, and after each swap (below)
    heartbeat = Heartbeat()
    served: dict[str, object] = {}

    def swap(load: Callable[[], object]) -> None:  # as `ChurnService.reload` does
        served["customers"] = load()  # the old customers are freed here
        settle_memory()

    try:
        swap(lambda: whole_read(store, bundle))  # warms the file cache; each load then replaces one
        before = heartbeat.measure(lambda: swap(lambda: whole_read(store, bundle)))
        swap(lambda: load_customers(store, bundle))
        after = heartbeat.measure(lambda: swap(lambda: load_customers(store, bundle)))
        blocked = None
        if drop is not None:  # the daily job starts its publish 1 s into a reload
            wait = replacement_wait(url, 1.0)
            reload_started = time.perf_counter()
            swap(lambda: load_customers(store, bundle))
            reload_seconds = time.perf_counter() - reload_started
            blocked = wait()
    finally:
        heartbeat.stop()
        store.dispose()
        if drop is not None:
            drop()
    database = "SQLite" if drop is None else "PostgreSQL"
    print(f"reload of {args.customers:,} stored customers beside a 1 ms heartbeat ({database}):")
    for label, result in (("whole read (before)", before), (f"in chunks of {CHUNK_ROWS:,}", after)):
        print(
            f"  {label:22s} {result['seconds']:6.2f} s, longest wait {result['longest_wait_ms']:7.1f} ms, "
            f"waits over {WAIT_TARGET_MS:.0f} ms: {result['waits_over_25ms']}"
            + (f" (ending at {result['long_waits_end_s'][:5]} s)" if result["long_waits_end_s"] else "")
        )
    print(
        f"longest wait, chunks / whole: {after['longest_wait_ms'] / before['longest_wait_ms']:.3f} "
        f"(target: under {WAIT_TARGET_MS:.0f} ms: {'met' if after['longest_wait_ms'] < WAIT_TARGET_MS else 'NOT met'}); "
        f"time, chunks / whole: {after['seconds'] / before['seconds']:.2f}"
    )
    if blocked is not None:
        print(
            f"the daily job's table replacement, begun 1.0 s into a {reload_seconds:.2f} s reload, waited "
            f"{blocked:.2f} s for it ({blocked / max(reload_seconds - 1.0, 1e-9):.2f}x the rest of the reload)"
        )
    if args.json:
        figures = {"customers": args.customers, "database": database, "whole": before, "chunks": after}
        args.json.write_text(json.dumps(figures | {"replacement_waited_s": blocked}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
