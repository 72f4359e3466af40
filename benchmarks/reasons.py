"""Do the reasons name the causes? Reasons and churn types against the generator's truth.

Run with `make bench-reasons`. Generates a fresh bank (50,000 customers by default, a seed no
tuning used), trains the models on its history exactly as `churn train` does, builds the daily
list at the day after its last month-end, and compares, for the scored customers who had decided
to leave in the 90 days before that date, the first reason and the top three with the planted
`cause_code`, and the churn type with the planted `churn_type`. Prints the figures against the
targets (first reason >= 60%, top three >= 85%, churn type >= 75%) and the confusion matrix.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache"
TARGETS = {"reason_1": 0.60, "top_3": 0.85, "churn_type": 0.75}


def evaluate(rows: pd.DataFrame, truth: pd.DataFrame, as_of: pd.Timestamp, days: int = 90) -> dict:
    """The figures for scored customers who decided to leave in the `days` before `as_of`."""
    since = as_of - pd.Timedelta(days=days)
    decided = truth[(truth["decided_to_leave"] >= since) & (truth["decided_to_leave"] < as_of)]
    decided = decided.rename(columns={"churn_type": "planted_type", "cause_code": "planted_cause"})
    scored = rows[rows["status"] == "scored"]
    joined = decided.set_index("customer_id")[["planted_type", "planted_cause"]].join(scored, how="inner")
    cause = joined["planted_cause"].astype(str)
    first = joined["reason_1_code"].astype(object)
    top = joined[["reason_1_code", "reason_2_code", "reason_3_code"]].astype(object)
    derived = joined["churn_type"].astype(object).fillna("not explained")
    planted = joined["planted_type"].astype(str)
    per_cause = (first == cause).groupby(cause).agg(["mean", "size"]).rename(columns={"mean": "reason_1"})
    return {
        "leavers": int(len(decided)),
        "scored": int(len(joined)),
        "reason_1": float((first == cause).mean()),
        "top_3": float(top.eq(cause, axis=0).any(axis=1).mean()),
        "churn_type": float((derived == planted).mean()),
        "confusion": pd.crosstab(planted.rename("planted"), derived.rename("derived")),
        "per_cause": per_cause,
        "first_reasons": first.value_counts().head(12),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--retrain", action="store_true", help="train again even if this bank's model is cached"
    )
    args = parser.parse_args(argv)

    from benchmarks.cached import cached_bank, cached_bundle
    from churn.config import load_config
    from serving.risk_list import build_risk_list, default_as_of

    started = time.perf_counter()
    root = CACHE / f"reasons_{args.customers}_seed{args.seed}"
    config = load_config(environ={"CHURN_DATA_SOURCE": str(root)})
    tables = cached_bank(root, args.customers, args.seed, config, extract_date=pd.Timestamp("2026-11-22"))
    generated = time.perf_counter()
    bundle, metrics = cached_bundle(root, tables, config, args.retrain, ("roc_auc",))
    roc_auc = metrics["roc_auc"]
    trained = time.perf_counter()
    as_of = default_as_of(tables)
    rows, _ = build_risk_list(tables, bundle, "bench", as_of, config)
    truth = pd.read_parquet(root / "truth" / "customers.parquet")
    figures = evaluate(rows, truth, as_of)
    print(
        f"bank: {args.customers:,} customers, seed {args.seed} (generated or read and validated {generated - started:.0f} s; trained "
        f"{trained - generated:.0f} s: ROC-AUC {roc_auc:.3f}); list as of {as_of:%Y-%m-%d}"
    )
    print(
        f"customers who decided to leave in the 90 days before: {figures['leavers']}, scored: {figures['scored']}"
    )
    for key, label in (
        ("reason_1", "first reason = planted cause"),
        ("top_3", "planted cause in the top three"),
        ("churn_type", "churn type = planted type"),
    ):
        mark = "met" if figures[key] >= TARGETS[key] else "NOT met"
        print(f"{label:32s} {figures[key]:6.1%}   (target {TARGETS[key]:.0%}: {mark})")
    print("\nchurn type, planted (rows) x derived (columns):")
    print(figures["confusion"].to_string())
    print("\nfirst reason = cause, by planted cause:")
    print(figures["per_cause"].to_string(float_format=lambda v: f"{v:.2f}"))
    print("\nfirst reasons given:")
    print(figures["first_reasons"].to_string())
    if args.json:
        payload = {k: v for k, v in figures.items() if isinstance(v, int | float)}
        payload["confusion"] = figures["confusion"].to_dict()
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
