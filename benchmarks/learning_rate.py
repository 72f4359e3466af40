"""Benchmark model size against quality: the churn and next-product learning rates.

Run with `make bench-lr`. Trains both models on the generated 100,000-customer bank (cached in
benchmarks/.cache/, the same snapshots for every setting) at a few learning-rate pairs and
reports trees, fit time, held-out churn ROC-AUC, PR-AUC, calibration error and next-product
MAP@3. Exact SHAP and prediction cost grow with the number of trees, so the daily job's speed
(`make bench-score`) rests on this choice; the baseline is the first pair, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import training.pipeline as pipeline
from benchmarks.features import bank_path
from churn.config import load_config
from features.io import read_tables
from training.rows import rows_from_tables

PAIRS = [(0.05, 0.05), (0.075, 0.15), (0.1, 0.15), (0.15, 0.25)]  # (churn, next product)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    base = load_config(environ={})
    # every setting trains on the same snapshots and campaign rows, built once
    rows = rows_from_tables(read_tables(bank_path(args.customers, 24, 7)), base)
    results = []
    for churn_lr, next_lr in PAIRS:
        training = base.training.model_copy(
            update={
                "churn": base.training.churn.model_copy(update={"learning_rate": churn_lr}),
                "next_product": base.training.next_product.model_copy(update={"learning_rate": next_lr}),
            }
        )
        started = time.perf_counter()
        result = pipeline.train_on_rows(rows, base.model_copy(update={"training": training}))
        m = result.metrics
        results.append(
            {
                "churn_learning_rate": churn_lr,
                "next_product_learning_rate": next_lr,
                "fit_s": time.perf_counter() - started,
                "churn_trees": result.bundle.churn_booster.num_trees(),
                "next_product_trees": result.bundle.next_product_booster.num_trees(),
                "roc_auc": m["roc_auc"],
                "pr_auc": m["pr_auc"],
                "ece": m["ece"],
                "map_at_3": result.next_product_metrics["map_at_3"],
            }
        )
        r = results[-1]
        print(
            f"learning rate {churn_lr} / {next_lr}: trees {r['churn_trees']} / {r['next_product_trees']} "
            f"(x{results[0]['churn_trees'] / r['churn_trees']:.1f} / x{results[0]['next_product_trees'] / r['next_product_trees']:.1f} fewer), "
            f"fit {r['fit_s']:.0f} s, ROC-AUC {r['roc_auc']:.4f}, PR-AUC {r['pr_auc']:.4f}, "
            f"ECE {r['ece']:.4f}, MAP@3 {r['map_at_3']:.4f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
