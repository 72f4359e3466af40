"""Benchmark the daily scoring of 1,000,000 customers' feature rows, Parquet to Parquet.

Run with `make bench-score`. Feature rows: the 100,000-customer generated bank's features at its
default as-of date (cached in benchmarks/.cache/), resampled with replacement to 1,000,000 rows
with new customer ids (generating a 1M-customer bank does not fit this machine's memory; scoring
cost depends on the rows, not on how they were made). Model: trained on the 100k bank with the
default config (cached). Team capacities are scaled so the day's list holds 50,000 customers.

Reports wall time and peak memory, and splits the time: reading, scoring (probability, value,
next-best products, action, policy), explaining (exact SHAP reasons for everyone at or above the
reporting threshold) and writing. The baseline, measured in the same run on the same rows, is
plain calibrated prediction (the cheapest useful thing a scoring job can do).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.features import CACHE, bank_path
from churn.config import PlaybookConfig, load_config
from features.build import build_features
from features.io import read_tables
from serving.model_bundle import ModelBundle
from serving.risk_list import default_as_of
from serving.scoring import ScoringContext, score_customers


def cached_bundle(config, tables) -> ModelBundle:
    from benchmarks.cached import stale

    path = CACHE / "bundle_100k"
    if stale(path, config) or not (path / "bundle.json").exists():
        from training.pipeline import train_models

        print("training the churn model on the 100k bank (cached for later runs) ...", flush=True)
        train_models(tables, config).bundle.save(path)
    return ModelBundle.load(path)


def feature_rows(tables, config, rows: int, seed: int) -> tuple[Path, pd.DataFrame]:
    """1M feature rows (Parquet) and the matching customer attributes."""
    path = CACHE / f"features_{rows}.parquet"
    customers_path = CACHE / f"customers_{rows}.parquet"
    if not path.exists():
        as_of = default_as_of(tables)
        base = build_features(tables, as_of, config.features, tuple(config.products))
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, len(base), rows)
        features = base.iloc[pick].copy()
        features.index = pd.Index(np.arange(1, rows + 1), name="customer_id")
        attributes = tables["customers"].set_index("customer_id").loc[base.index[pick]]
        attributes.index = features.index
        attributes["do_not_contact"] = rng.random(rows) < 0.05
        features.to_parquet(path)
        attributes[["do_not_contact", "branch_id", "segment", "region"]].to_parquet(customers_path)
    return path, pd.read_parquet(customers_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--list-size", type=int, default=50_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    config = load_config(environ={})
    tables = read_tables(bank_path(100_000, 24, 7))
    bundle = cached_bundle(config, tables)
    path, customers = feature_rows(tables, config, args.rows, seed=11)
    del tables
    # scale every team's capacity so the list can hold `list_size` customers
    playbook = config.playbook
    scale = args.list_size / sum(playbook.capacity.values())
    capacity = {team: int(np.ceil(n * scale)) for team, n in playbook.capacity.items()}
    per_branch = {team: int(np.ceil(n * scale / 2)) for team, n in playbook.per_branch.items()}
    config = config.model_copy(
        update={
            "playbook": PlaybookConfig.model_validate(
                playbook.model_dump() | {"capacity": capacity, "per_branch": per_branch}
            )
        }
    )
    contacts = pd.DataFrame(
        {
            "customer_id": pd.Series(dtype="int64"),
            "ts": pd.Series(dtype="datetime64[ns]"),
            "control_group": pd.Series(dtype=bool),
        }
    )

    t0 = time.perf_counter()
    features = pd.read_parquet(path)
    read_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    bundle.churn_probability(bundle.prepare(features))
    baseline_s = time.perf_counter() - t0

    prepared = bundle.prepare(features)
    p = bundle.churn_probability(prepared)
    reportable = p >= config.scoring.reporting_threshold
    t0 = time.perf_counter()
    subset = prepared[reportable]
    bundle.reasons(subset, bundle.contributions(subset))
    explain_s = time.perf_counter() - t0
    explained = int(reportable.sum())
    # the timing's own copies go before the scoring job runs, so the peak is the job's
    del prepared, subset, p, reportable

    context = ScoringContext(pd.Timestamp("2026-11-01"), customers, contacts)
    t0 = time.perf_counter()
    scored = score_customers(bundle, features, context, config)
    score_total_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = CACHE / "scored_1m.parquet"
    scored.to_parquet(out)
    write_s = time.perf_counter() - t0
    total = read_s + score_total_s + write_s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    result = {
        "rows": len(features),
        "explained_rows": explained,
        "list_size": int(scored["contact"].sum()),
        "read_s": read_s,
        "score_and_explain_s": score_total_s,
        "of_which_explaining_s": explain_s,
        "of_which_scoring_s": score_total_s - explain_s,
        "write_s": write_s,
        "total_s": total,
        "baseline_predict_s": baseline_s,
        "ratio_total_to_baseline": total / baseline_s,
        "peak_rss_mib": peak,
        "trees": bundle.churn_booster.num_trees(),
    }
    print(
        f"rows {result['rows']:,}; explained (P >= {config.scoring.reporting_threshold}) {result['explained_rows']:,}; "
        f"list {result['list_size']:,}; churn model {result['trees']} trees"
    )
    print(
        f"read {read_s:.1f} s | scoring {result['of_which_scoring_s']:.1f} s | explaining {explain_s:.1f} s | "
        f"write {write_s:.1f} s | total {total:.1f} s"
    )
    print(
        f"baseline (plain calibrated prediction of the same rows) {baseline_s:.2f} s; total / baseline {total / baseline_s:.1f}x"
    )
    print(f"peak resident memory {peak:,.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
