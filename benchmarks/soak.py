"""Soak the scoring API: a fixed rate for a long time, with champion swaps, watching memory.

Run with `make bench-soak` (10 minutes at 100 requests/s by default). Uses the workspace of
`make bench-serve` (benchmarks/.cache/serve). An open-loop generator in a separate process sends
POST /score requests on schedule; meanwhile this process samples the resident memory of every
server process every 10 s (`--sample-every`) and promotes a copy of the champion (a hot swap)
every `--swap-every` seconds (checked at each sample). Prints latency percentiles, errors, and
the memory of the first and the last minute: flat memory means the last minute is within a few
percent of the first. Latency is also split into requests sent within `--swap-window` seconds
after a promotion (the server notices it within `reload_seconds`, 5 here, then loads) and the
rest, so a swap's cost is not averaged away.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.serve import BIN, CACHE, KEY, ROOT, _env, _port, _start, _stop, workspace


def _rss_mib(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.Error:
        return float("nan")


def split_by_swaps(
    sent_at: list[float], latency_ms: list[float], swapped_at: list[float], window: float
) -> dict[str, dict[str, float]]:
    """Latency percentiles of the requests sent within `window` seconds after any swap, and of
    the rest (times in seconds since the epoch)."""
    import numpy as np

    sent, latency = np.asarray(sent_at), np.asarray(latency_ms)
    after = np.zeros(len(sent), dtype=bool)
    for at in swapped_at:
        after |= (sent >= at) & (sent < at + window)
    parts = {}
    for name, rows in (("after_swaps", after), ("between_swaps", ~after)):
        values = latency[rows]
        parts[name] = {
            "requests": int(rows.sum()),
            **{
                key: float(np.percentile(values, q)) if len(values) else float("nan")
                for key, q in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100))
            },
        }
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--swap-every", type=int, default=120)
    parser.add_argument("--swap-window", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between memory samples")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    workspace()
    import mlflow
    import pandas as pd
    import sqlalchemy as sa

    config = CACHE / "soak.yaml"
    config.write_text(
        "serving:\n  reload_seconds: 5\n  rate_limit_per_second: 100000\n  rate_limit_burst: 100000\n"
    )
    env = _env() | {
        "CHURN_CONFIG": str(config),
        "BENTOML_CONFIG_OPTIONS": f"services.churn_scoring.workers={args.workers}",
    }
    engine = sa.create_engine(env["CHURN_DATABASE_URL"])
    ids = pd.read_sql("SELECT customer_id FROM customer_features", engine)["customer_id"].tolist()
    engine.dispose()
    random.seed(11)
    bodies = [json.dumps({"customer_ids": [i]}) for i in random.sample(ids, 500)]
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("bank-churn", "champion")

    port = _port()
    command = [str(BIN / "bentoml"), "serve", "serving.service:ChurnService", "--host", "127.0.0.1"]
    (CACHE / "logs").mkdir(exist_ok=True)
    process = _start(
        [*command, "--port", str(port)], env, f"http://127.0.0.1:{port}/readyz", CACHE / "logs" / "soak.log"
    )
    samples: list[tuple[float, float]] = []
    swapped_at: list[float] = []
    # the generator's answer holds every request's time (megabytes): to a file, not a pipe, which
    # would fill and block it while this process waits for it to end
    answer = CACHE / "logs" / "soak-load.json"
    answer_file = answer.open("w")
    try:
        load = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("open_loop.py")),
                f"http://127.0.0.1:{port}/score",
                str(args.rate),
                str(args.seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=answer_file,
            text=True,
            cwd=ROOT,
        )
        load.stdin.write(
            json.dumps(
                {
                    "bodies": bodies,
                    "headers": {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
                }
            )
        )
        load.stdin.close()
        started = time.monotonic()
        next_swap = started + args.swap_every
        while load.poll() is None:
            now = time.monotonic()
            samples.append((now - started, _rss_mib(process.pid)))
            if now >= next_swap:
                copy = client.create_model_version("bank-churn", champion.source, run_id=champion.run_id)
                client.set_registered_model_alias("bank-churn", "champion", copy.version)
                swapped_at.append(time.time())
                next_swap += args.swap_every
            time.sleep(args.sample_every)
        result = json.loads(answer.read_text())
    finally:
        answer_file.close()
        client.set_registered_model_alias("bank-churn", "champion", champion.version)
        _stop(process)
    first = [m for t, m in samples if t <= 60]
    last = [m for t, m in samples if t >= samples[-1][0] - 60]
    swaps = len(swapped_at)
    result |= split_by_swaps(result.pop("sent_at"), result.pop("latency_ms"), swapped_at, args.swap_window)
    result |= {
        "swaps": swaps,
        "rss_first_minute_mib": sum(first) / len(first),
        "rss_last_minute_mib": sum(last) / len(last),
        "rss_max_mib": max(m for _, m in samples),
        "rss_samples": samples,
    }
    growth = result["rss_last_minute_mib"] / result["rss_first_minute_mib"] - 1
    print(
        f"{args.seconds} s at {args.rate:.0f} rps ({result['requests']} requests, {swaps} champion swaps): "
        f"p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"errors {result['errors']}"
    )
    for part in ("after_swaps", "between_swaps"):
        figures = result[part]
        print(
            f"  sent within {args.swap_window:.0f} s after a swap" if part == "after_swaps" else "  the rest",
            f"({figures['requests']} requests): p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"max {figures['max_ms']:.0f} ms",
        )
    print(
        f"server memory (all processes): first minute {result['rss_first_minute_mib']:.0f} MiB, last minute "
        f"{result['rss_last_minute_mib']:.0f} MiB ({growth:+.1%}), peak {result['rss_max_mib']:.0f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
