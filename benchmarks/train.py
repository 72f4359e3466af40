"""Benchmark churn-model training and exact-SHAP explanation on 100,000 customers x 12 snapshots.

Run with `make bench-train` (after or without `make bench-features`: the generated bank is
cached in benchmarks/.cache/). Reports:
- building the 12 stacked snapshots (wall time),
- training the configured churn model (wall time, trees, leaves, depth, held-out ROC-AUC),
- exact TreeSHAP rate: LightGBM `pred_contrib` next to `shap.TreeExplainer` on the same rows,
  measured in the same run (the baseline), with their largest absolute difference,
- held-out ROC-AUC against explanation rate for a few model sizes,
- the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from benchmarks.features import bank_path
from churn.config import BoosterParams, load_config
from features.io import read_tables
from features.snapshots import build_training_set, snapshot_dates
from training.models import fit_churn_model
from training.pipeline import feature_columns
from training.split import out_of_time_split
from training.tuning_space import tree_depth

SIZES = [(7, 3), (15, 5), (31, 6), (63, 8)]  # (num_leaves, max_depth)


def model_shape(booster) -> tuple[int, int, int]:
    """(trees, total leaves, max depth) of a LightGBM booster."""
    dump = booster.dump_model()["tree_info"]
    return len(dump), sum(t["num_leaves"] for t in dump), max(tree_depth(t["tree_structure"]) for t in dump)


def rate(fn, rows: int, repeats: int = 2) -> float:
    best = min(_timed(fn) for _ in range(repeats))
    return rows / best


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--explain-rows", type=int, default=5_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import warnings

    import shap

    # shap announces a change of output type for LightGBM on every call; the values are what we compare
    warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer")

    config = load_config(environ={})
    products = tuple(config.products)
    tables = read_tables(bank_path(args.customers, 24, 7))
    started = time.perf_counter()
    dates = snapshot_dates(tables, config.labels, args.snapshots)
    split = out_of_time_split(dates, config.labels.horizon_days, config.training.validation_snapshots)
    stacked = build_training_set(
        tables, [*split.train, *split.validation, split.test], config.features, config.labels, products
    )
    build_seconds = time.perf_counter() - started
    as_of = stacked.index.get_level_values("as_of")
    columns = feature_columns(config)
    part = {
        "train": as_of.isin(split.train),
        "valid": as_of.isin(split.validation),
        "test": as_of == split.test,
    }
    X = {k: stacked.loc[m, columns] for k, m in part.items()}
    y = {k: stacked.loc[m, "churn"].to_numpy() for k, m in part.items()}
    print(
        f"snapshots {len(dates)} ({split.describe()['train']} train); rows: train {len(y['train']):,} "
        f"({y['train'].sum():,} churners), validation {len(y['valid']):,}, test {len(y['test']):,}; built in {build_seconds:.1f} s"
    )

    rows = X["test"].head(args.explain_rows)
    results = []
    print(
        f"{'leaves':>6} {'depth':>5} {'trees':>5} {'all leaves':>10} {'fit s':>6} {'test AUC':>8} "
        f"{'pred_contrib rows/s':>19} {'TreeExplainer rows/s':>20} {'max |diff|':>10} {'predict rows/s':>14}"
    )
    for leaves, max_depth in SIZES:
        params = config.training.churn.model_copy(update={"num_leaves": leaves, "max_depth": max_depth})
        params = BoosterParams.model_validate(params.model_dump())
        t0 = time.perf_counter()
        model = fit_churn_model(
            X["train"],
            y["train"],
            X["valid"],
            y["valid"],
            params,
            config.training.seed,
            config.training.monotone_increasing,
        )
        fit_seconds = time.perf_counter() - t0
        booster = model.booster
        auc = roc_auc_score(y["test"], model.probability(X["test"]))
        trees, total_leaves, depth = model_shape(booster)
        ours = booster.predict(rows, pred_contrib=True)
        explainer = shap.TreeExplainer(booster)
        theirs = explainer.shap_values(rows)
        diff = float(np.abs(ours[:, :-1] - np.asarray(theirs)).max())
        row = {
            "num_leaves": leaves,
            "max_depth": max_depth,
            "trees": trees,
            "leaves_total": total_leaves,
            "depth": depth,
            "fit_seconds": fit_seconds,
            "test_roc_auc": auc,
            "pred_contrib_rows_per_s": rate(lambda b=booster: b.predict(rows, pred_contrib=True), len(rows)),
            "tree_explainer_rows_per_s": rate(lambda e=explainer: e.shap_values(rows), len(rows)),
            "max_abs_diff": diff,
            "predict_rows_per_s": rate(lambda m=model: m.probability(X["test"]), len(X["test"])),
            "configured": (leaves, max_depth)
            == (config.training.churn.num_leaves, config.training.churn.max_depth),
        }
        results.append(row)
        mark = " <- configured" if row["configured"] else ""
        print(
            f"{leaves:>6} {max_depth:>5} {trees:>5} {total_leaves:>10} {fit_seconds:>6.1f} {auc:>8.4f} "
            f"{row['pred_contrib_rows_per_s']:>19,.0f} {row['tree_explainer_rows_per_s']:>20,.0f} {diff:>10.1e} "
            f"{row['predict_rows_per_s']:>14,.0f}{mark}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak resident memory of the whole run: {peak:,.0f} MiB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"build_seconds": build_seconds, "peak_rss_mib": peak, "sizes": results},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
