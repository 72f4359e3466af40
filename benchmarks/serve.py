"""Benchmark the scoring API against `mlflow models serve` of the same champion.

Run with `make bench-serve` (needs `wrk`: `apt-get install wrk`). Builds a workspace on the
committed sample once (train, promote, daily list; cached in benchmarks/.cache/serve), then for
each server in turn:

- the churn API (`bentoml serve`): POST /score with one random customer id per request, answered
  with probability, reasons, next-best products, action and contact decision;
- the baseline, `mlflow models serve` of the same registry version: POST /invocations with one
  feature row, answered with probability and value only;

measures latency at a fixed rate (an open-loop generator in a separate process sends requests on
schedule, whether or not earlier ones have returned, so slow responses cannot hide queueing) and
throughput at saturation (wrk, 4 connections). Prints both and the ratios. The fixed-rate phase
runs 60 s (6,000 requests at 100/s), so p99 rests on 60 slow requests, not a handful.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache" / "serve"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KEY = "bench-" + "k" * 26


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow starts `uvicorn` from PATH
        MLFLOW_TRACKING_URI=f"sqlite:///{CACHE / 'mlflow.db'}",
        CHURN_OUTPUT_DIR=str(CACHE / "out"),
        CHURN_DATABASE_URL=f"sqlite:///{CACHE / 'out' / 'churn.db'}",
        CHURN_SECRETS_FILE=str(CACHE / "secrets.json"),
        CHURN_API_KEYS=json.dumps([{"name": "bench", "key": KEY, "scopes": ["read"]}]),
        CHURN_PSEUDONYM_KEY="bench-pseudonym-key-0123456789",
    )


def workspace() -> None:
    if (CACHE / "ready").exists():
        return
    shutil.rmtree(CACHE, ignore_errors=True)
    CACHE.mkdir(parents=True)
    print("building the workspace on the sample (train, promote, daily list) ...", flush=True)
    for step in (["train"], ["promote"], ["score"]):
        subprocess.run([str(BIN / "churn"), *step], env=_env(), cwd=ROOT, check=True, capture_output=True)
    (CACHE / "ready").write_text("ok")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError(f"{command[0]} not ready in 180 s")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def fixed_rate(url: str, bodies: list[str], headers: dict[str, str], rate: float, seconds: float) -> dict:
    """Latency percentiles at `rate` requests per second, from a separate process."""
    script = Path(__file__).with_name("open_loop.py")
    out = subprocess.run(
        [sys.executable, str(script), url, str(rate), str(seconds)],
        input=json.dumps({"bodies": bodies, "headers": headers}),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    for per_request in ("sent_at", "latency_ms"):
        del result[per_request]
    return result


def saturate(url: str, bodies: list[str], headers: dict[str, str], seconds: int, connections: int) -> dict:
    """wrk at saturation: requests per second and latency percentiles."""
    if shutil.which("wrk") is None:
        raise SystemExit("error: wrk not found: install it (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        quoted = ",".join(json.dumps(b) for b in bodies)
        header_lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        lua.write(
            f'wrk.method = "POST"\n{header_lines}local bodies = {{{quoted}}}\n'
            "math.randomseed(7)\n"
            "request = function() return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end\n"
        )
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", lua.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(lua.name)

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=int, default=60, help="fixed-rate phase")
    parser.add_argument("--saturate-seconds", type=int, default=20, help="wrk phase")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    workspace()
    env = _env()
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(env["CHURN_DATABASE_URL"])
    features = pd.read_sql("SELECT * FROM customer_features", engine).drop(columns=["as_of"])
    engine.dispose()
    ids = features["customer_id"].tolist()
    random.seed(7)
    api_bodies = [json.dumps({"customer_ids": [i]}) for i in random.sample(ids, 500)]
    rows = features.drop(columns=["customer_id"]).sample(500, random_state=7)
    mlflow_bodies = [
        json.dumps({"dataframe_split": {"columns": list(rows.columns), "data": [row]}}, default=str)
        for row in rows.astype(object).where(rows.notna(), None).values.tolist()
    ]
    results = {}
    log_dir = CACHE / "logs"
    log_dir.mkdir(exist_ok=True)

    port = _port()
    config = CACHE / "bench.yaml"  # throughput is measured here, not the per-key rate limit
    config.write_text("serving:\n  rate_limit_per_second: 100000\n  rate_limit_burst: 100000\n")
    api_env = env | {
        "BENTOML_CONFIG_OPTIONS": f"services.churn_scoring.workers={args.workers}",
        "CHURN_CONFIG": str(config),
    }
    command = [str(BIN / "bentoml"), "serve", "serving.service:ChurnService", "--host", "127.0.0.1"]
    process = _start(
        [*command, "--port", str(port)], api_env, f"http://127.0.0.1:{port}/readyz", log_dir / "api.log"
    )
    try:
        url = f"http://127.0.0.1:{port}/score"
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        saturate(url, api_bodies, headers, 3, args.connections)  # warm up
        results["api_fixed"] = fixed_rate(url, api_bodies, headers, args.rate, args.seconds)
        results["api_saturated"] = saturate(url, api_bodies, headers, args.saturate_seconds, args.connections)
    finally:
        _stop(process)

    port = _port()
    model = "models:/bank-churn@champion"
    command = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        model,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
    ]
    command += ["-p", str(port), "-w", str(args.workers)]
    process = _start(command, env, f"http://127.0.0.1:{port}/ping", log_dir / "mlflow.log")
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        headers = {"Content-Type": "application/json"}
        saturate(url, mlflow_bodies, headers, 3, args.connections)
        results["mlflow_fixed"] = fixed_rate(url, mlflow_bodies, headers, args.rate, args.seconds)
        results["mlflow_saturated"] = saturate(
            url, mlflow_bodies, headers, args.saturate_seconds, args.connections
        )
    finally:
        _stop(process)

    ratio = results["api_saturated"]["rps"] / results["mlflow_saturated"]["rps"]
    results["throughput_ratio_api_to_mlflow"] = ratio
    for name in ("api", "mlflow"):
        fixed, sat = results[f"{name}_fixed"], results[f"{name}_saturated"]
        label = (
            "churn API /score by id (full decision)" if name == "api" else "mlflow models serve /invocations"
        )
        print(
            f"{label:40s} at {args.rate:.0f} rps: p50 {fixed['p50_ms']:.1f} ms, p95 {fixed['p95_ms']:.1f} ms, "
            f"p99 {fixed['p99_ms']:.1f} ms, errors {fixed['errors']} | saturated ({args.connections} connections): "
            f"{sat['rps']:.0f} rps, p50 {sat['p50_ms']:.1f} ms, p99 {sat['p99_ms']:.1f} ms, non-2xx {sat['non_2xx']}"
        )
    print(
        f"saturated throughput, churn API / mlflow models serve: {ratio:.2f}x ({args.workers} worker(s) each)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
