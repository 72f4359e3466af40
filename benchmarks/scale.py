"""Benchmark the local and dask engines from 250k to 1M customers x 24 months (`make bench-scale`).

The bank is generated once into benchmarks/.cache/ as a customer-partitioned dataset, 50,000
customers a partition (`--per-partition`), each partition from its own seed and with its own id
range (`benchmarks.scale_bank`: the generator holds a whole bank in memory, so 1M customers are
generated partition by partition). The 250k bank is the first 5 partitions of the same data.

Each measured job (the feature job `churn features`, and the daily list `churn score`, which
builds the features again, scores, explains, decides and writes files and the database; on request
`train`, the training job's read and fit, against `train-whole`, the same with the bank read and
validated whole as the local engine did before it read training's rows by partition) runs in a
fresh process on the champion of a model trained once on the committed sample. Reported per run:
wall time, the peak resident memory of the client process and of each Dask worker
(getrusage ru_maxrss), and the ratio to the baseline, the local engine on 250k customers
measured in the same run, and the seconds of each stage summed over the partitions (read,
validate, features, score, explain, spill and files; the daily list's database write). The local
engine reads the bank partition by partition (`features.sources`), so it runs on 1M customers too
(`--local-up-to`), in this process or in worker processes (`--local-processes`, the
`engine.local_processes` setting); `--workers` with no value runs no dask job. The dask runs get a memory limit
per worker (`--worker-memory`), which a Dask nanny enforces by restarting a worker that crosses it
(the task is then retried elsewhere); restarts are counted and reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.features import CACHE
from benchmarks.scale_bank import PER_PARTITION, bank, per_partition, view

ROOT = Path(__file__).resolve().parent.parent


def model(tracking: Path) -> None:
    """Train on the committed sample and promote, once (the scoring jobs' champion)."""
    if (tracking.parent / "trained").exists():
        return
    env = os.environ | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tracking}",
        "CHURN_OUTPUT_DIR": str(tracking.parent / "train"),
        "CHURN_DATABASE_URL": f"sqlite:///{tracking.parent / 'train.db'}",
        "CHURN_ENGINE": "local",
    }
    churn = str(Path(sys.executable).with_name("churn"))
    for step in ("train", "promote"):
        subprocess.run([churn, step], env=env, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    (tracking.parent / "trained").touch()


def measure(
    job: str, engine: str, workers: int, memory: str, source: Path, out: Path, tracking: Path
) -> dict:
    """One job in a fresh process; its wall time and peak memory per process."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    command = [sys.executable, "-m", "benchmarks.scale", "--job", job, "--engine", engine]
    command += [
        "--workers",
        str(workers),
        "--worker-memory",
        memory,
        "--source",
        str(source),
        "--out",
        str(out),
    ]
    command += ["--tracking", str(tracking)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"failed": f"exit {done.returncode}: {' | '.join(tail)}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


class TreePeak(threading.Thread):
    """The peak resident memory of this process and all its children together (the local
    engine's worker processes), sampled every 0.2 s while the block runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib = 0
        self._done = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._done.wait(0.2):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # it ended between the listing and the reading
                    total += process.memory_info().rss
            self.peak_mib = max(self.peak_mib, round(total / 2**20))

    def __enter__(self) -> TreePeak:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self._done.set()
        self.join()


def train(config, partitioned: bool) -> dict[str, float]:
    """The training job's read (the bank partition by partition, or, the baseline, read and
    validated whole as before the partition work) and its fit; seconds of each."""
    from training.pipeline import train_on_rows

    started = time.perf_counter()
    if partitioned:
        from churn.engine import partition_runner
        from training.rows import training_rows

        with partition_runner(config) as runner:
            rows = training_rows(config, runner)
    else:
        from features.jobs import load_validated
        from training.rows import rows_from_tables

        tables = load_validated(config).tables
        rows = rows_from_tables(tables, config)
        del tables
    read = time.perf_counter()
    train_on_rows(rows, config)
    return {"read": read - started, "fit": time.perf_counter() - read}


def run_job(args: argparse.Namespace) -> None:
    """The child: run one job and print its figures as one JSON line."""
    from churn.config import load_config
    from features.partitioned import bounds

    env = {
        "CHURN_DATA_SOURCE": str(args.source),
        "CHURN_OUTPUT_DIR": str(args.out),
        "CHURN_DATABASE_URL": f"sqlite:///{args.out / 'churn.db'}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{args.tracking}",
    }
    config = load_config(environ=env)
    config = config.model_copy(
        update={
            "engine": config.engine.model_copy(
                update={
                    "kind": args.engine,
                    "workers": args.workers[0],
                    "local_processes": args.workers[0] if args.engine == "local" else 1,
                    "memory_limit": args.worker_memory,
                    "partition_customers": per_partition(bounds(args.source)),
                }
            )
        }
    )
    from features.jobs import run_features
    from serving.list_job import run_daily_list

    stages: dict[str, float] = {}

    def job() -> None:
        if args.job == "features":
            stages.update(run_features(config).stage_seconds or {})
        elif args.job == "score":
            stages.update(run_daily_list(config)[0].meta["stage_seconds"])
        else:
            stages.update(train(config, partitioned=args.job == "train"))

    workers_peak: list[float] = []
    started = time.perf_counter()
    if args.engine == "dask":
        from churn.cluster import dask_client

        with dask_client(config.engine) as client:
            before = set(client.scheduler_info()["workers"])
            started = time.perf_counter()
            job()
            seconds = time.perf_counter() - started
            # a nanny restarts a worker over its memory limit: a new address, its peak lost
            replaced = len(before - set(client.scheduler_info()["workers"]))
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            workers_peak = sorted(round(v / 1024) for v in peaks.values())
    else:
        with TreePeak() as tree:
            job()
        seconds = time.perf_counter() - started
        replaced = 0
        if args.workers[0] > 1:  # the pool's processes, waited for when the job's runner closed
            workers_peak = [round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)]
    client_peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "client_mib": client_peak,
                "workers_mib": workers_peak,
                "tree_mib": tree.peak_mib if args.engine == "local" else None,
                "workers_restarted": replaced,
                "stages": {stage: round(s, 1) for stage, s in stages.items()},
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--local-up-to", type=int, default=1_000_000, help="largest bank run on the local engine"
    )
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[1, 2], help="dask workers to run with (none: local only)"
    )
    parser.add_argument(
        "--workers-at-largest",
        type=int,
        nargs="+",
        help="dask workers on the largest bank (default: --workers)",
    )
    parser.add_argument(
        "--local-processes",
        type=int,
        nargs="*",
        default=[1, 2],
        help="local engine processes to run with (none: dask only)",
    )
    parser.add_argument("--worker-memory", default="6GiB")
    parser.add_argument(
        "--per-partition", type=int, default=PER_PARTITION, help="customers a partition of the generated bank"
    )
    parser.add_argument(
        "--jobs",
        nargs="+",
        default=["features", "score"],
        choices=["features", "score", "train", "train-whole"],
        help="train: the training job on the local engine's partitions; train-whole: the same with "
        "the bank read whole (the baseline)",
    )
    # the child process
    parser.add_argument("--job", choices=["features", "score", "train", "train-whole"])
    parser.add_argument("--engine", choices=["local", "dask"])
    parser.add_argument("--source", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tracking", type=Path)
    args = parser.parse_args(argv)
    if args.job:
        from features.memory import use_system_arrow_pool

        use_system_arrow_pool()  # as the `churn` command does, before Arrow loads
        run_job(args)
        return 0

    largest = max(args.customers)
    root = bank(largest, args.months, args.seed, min(2, os.cpu_count() or 1), args.per_partition)
    tracking = CACHE / "scale_model" / "mlflow.db"
    tracking.parent.mkdir(parents=True, exist_ok=True)
    model(tracking)
    runs = CACHE / "scale_runs"
    results = []
    for customers in sorted(args.customers):
        source = root if customers == largest else view(root, customers)
        plans = [("local", p) for p in args.local_processes] if customers <= args.local_up_to else []
        workers = (
            args.workers_at_largest if customers == largest and args.workers_at_largest else args.workers
        )
        plans += [("dask", w) for w in workers]
        for job in args.jobs:
            for engine, workers in plans:
                if job.startswith("train") and engine == "dask":
                    continue  # the dask engine trains on its cluster (training.distributed)
                label = f"{job} {engine}" + (f" x{workers}" if engine == "dask" or workers > 1 else "")
                figures = measure(
                    job,
                    engine,
                    workers,
                    args.worker_memory,
                    source,
                    runs / f"{customers}_{job}_{engine}{workers}",
                    tracking,
                )
                results.append(
                    {"customers": customers, "job": job, "engine": engine, "workers": workers} | figures
                )
                print(f"{customers:>9,}  {label:<20} {json.dumps(figures)}", flush=True)

    print(
        "\nwall time (ratio to the local engine on the smallest bank, same job) and peak memory per process"
    )
    smallest = min(args.customers)
    baseline = {
        r["job"]: r["seconds"]
        for r in results
        if r["engine"] == "local" and r["workers"] == 1 and r["customers"] == smallest and "seconds" in r
    }
    print(
        f"{'customers':>10} {'job':<9} {'engine':<8} {'wall s':>8} {'ratio':>6} {'client MiB':>11} {'all MiB':>8}  workers MiB"
    )
    for r in results:
        engine = r["engine"] + (f" x{r['workers']}" if r["engine"] == "dask" or r["workers"] > 1 else "")
        if "seconds" not in r:
            print(f"{r['customers']:>10,} {r['job']:<9} {engine:<8} {r['failed']}")
            continue
        ratio = r["seconds"] / baseline[r["job"]] if r["job"] in baseline else float("nan")
        print(
            f"{r['customers']:>10,} {r['job']:<9} {engine:<8} {r['seconds']:>8.1f} {ratio:>6.2f} {r['client_mib']:>11,} {r.get('tree_mib') or '-':>8}  "
            f"{', '.join(f'{m:,}' for m in r['workers_mib']) or '-'}"
            + (f"  ({r['workers_restarted']} worker(s) restarted)" if r["workers_restarted"] else "")
        )
        print(
            f"{'':>10} stages (s, over all partitions): "
            + ", ".join(f"{k} {v}" for k, v in r["stages"].items())
        )
    (runs / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
