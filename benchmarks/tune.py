"""Benchmark the hyperparameter search: the configured parameters against `churn train --tune`.

Run with `make bench-tune`. On the generated bank (50,000 customers x 24 months, cached in
benchmarks/.cache/ like the other benchmarks; the same stacked snapshots for both runs, split
out of time) and on three generated bring-your-own tables of different shapes (cached in
benchmarks/.cache/tune/; stratified splits, the search on 3 stratified folds):

- `categorical`: 7,000 rows x 12 columns, mostly categorical (branch, region, contract, ...);
- `numeric`: 10,000 rows x 20 numeric columns with non-linear effects and a threshold interaction;
- `mixed`: 30,000 rows x 40 columns, numeric and categorical, missing values, 3% positives.

For each, the configured parameters (the baseline, measured in the same run) and the tuned
model: held-out ROC-AUC, PR-AUC, ECE, log-loss, trees, trees x leaves (all leaves of the churn
booster), its depth, exact-SHAP rows/s (LightGBM `pred_contrib` on 5,000 test rows, best of five)
and search time. The search runs under the default explanation ceiling and tolerances, with a time budget
per data set (`--bank-minutes`, `--table-minutes`) and the configured trial budget.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import training.pipeline as pipeline
from benchmarks.features import CACHE, bank_path
from benchmarks.train import model_shape
from churn.config import AppConfig, SourceTableConfig, load_config
from features.io import read_tables
from training.byo import train_from_table
from training.rows import rows_from_tables
from training.tuning_report import explanation_rate

TABLES = CACHE / "tune"


def _logistic(logit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-logit))).astype(int)


def categorical_table(n: int = 7_000, seed: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """Mostly categorical: branch and region effects, a contract x support-calls interaction."""
    rng = np.random.default_rng(seed)
    levels = {
        "region": 8,
        "branch": 40,
        "segment": 4,
        "tier": 5,
        "channel": 4,
        "contract": 3,
        "payment": 4,
        "gender": 2,
        "age_band": 7,
    }
    frame = pd.DataFrame({name: rng.integers(0, k, n) for name, k in levels.items()}, index=pd.RangeIndex(n))
    effects = {name: rng.normal(0, 0.5 if k < 10 else 0.8, k) for name, k in levels.items()}
    effects["contract"] = np.array([1.2, 0.0, -1.0])  # month-to-month, one year, two years
    effects["age_band"] = np.array([0.8, 0.3, 0.0, -0.2, 0.0, 0.4, 0.9])  # U-shaped
    frame["tenure_months"] = rng.gamma(2.0, 18.0, n).round()
    frame["monthly_fee"] = rng.normal(60, 25, n).clip(5).round(2)
    frame["support_calls"] = rng.poisson(1.2, n)
    logit = -1.9 + sum(effects[name][frame[name].to_numpy()] for name in levels)
    logit = (
        logit
        - 0.02 * frame["tenure_months"]
        + 0.5 * (frame["contract"] == 0) * np.minimum(frame["support_calls"], 4)
    )
    frame["churned"] = _logistic(logit.to_numpy(), rng)
    for name in levels:
        frame[name] = np.array([f"{name}_{v}" for v in range(levels[name])], dtype=object)[frame[name]]
    return frame, list(levels)


def numeric_table(n: int = 10_000, seed: int = 2) -> tuple[pd.DataFrame, list[str]]:
    """20 numeric columns: a periodic effect, a threshold interaction, a U-shape, 14 of noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20))
    frame = pd.DataFrame(X, columns=[f"x{k:02d}" for k in range(20)])
    logit = (
        -1.4
        + 1.1 * np.sin(2.5 * X[:, 0])
        + 1.3 * ((X[:, 1] > 0.3) & (X[:, 2] < 0)) * (1 + (X[:, 3] > 0))
        - 0.5 * X[:, 4] ** 2
        + 0.6 * X[:, 5]
    )
    frame["churned"] = _logistic(logit, rng)
    return frame, []


def mixed_table(n: int = 30_000, seed: int = 3) -> tuple[pd.DataFrame, list[str]]:
    """30 numeric and 10 categorical columns, missing values (some informative), ~3% positives."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, 30))
    numeric[:, 10:20] = np.exp(numeric[:, 10:20])  # skewed amounts
    frame = pd.DataFrame(numeric, columns=[f"n{k:02d}" for k in range(30)])
    sizes = [3, 5, 8, 12, 20, 30, 4, 6, 10, 15]
    codes = {f"c{k}": rng.integers(0, size, n) for k, size in enumerate(sizes)}
    effects = {name: rng.normal(0, 0.6, size) for name, size in zip(codes, sizes, strict=True)}
    logit = -4.4 + 0.7 * numeric[:, 0] - 0.5 * numeric[:, 1] + 0.6 * np.tanh(numeric[:, 2] * numeric[:, 3])
    logit += 0.4 * np.log(numeric[:, 10]) + sum(effects[c][codes[c]] for c in ("c0", "c3", "c5"))
    missing_income = rng.random(n) < 0.2 + 0.2 * (numeric[:, 0] > 1)  # missing more often at risk
    logit += 0.5 * missing_income
    frame["churned"] = _logistic(logit, rng)
    frame.loc[missing_income, "n01"] = np.nan
    for k in range(20, 28):
        frame.loc[rng.random(n) < 0.05 + 0.03 * (k - 20), f"n{k:02d}"] = np.nan
    for name, values in codes.items():
        labels = np.array([f"{name}_{v}" for v in range(values.max() + 1)], dtype=object)[values]
        labels[rng.random(n) < 0.05] = None
        frame[name] = labels
    return frame, list(codes)


SHAPES = {"categorical": categorical_table, "numeric": numeric_table, "mixed": mixed_table}


def table_config(base: AppConfig, name: str) -> AppConfig:
    """The config of one generated table, written once into the cache."""
    path = TABLES / f"{name}.parquet"
    frame, categorical = SHAPES[name]()
    if not path.exists():
        TABLES.mkdir(parents=True, exist_ok=True)
        frame.insert(0, "id", np.arange(len(frame)))
        frame.to_parquet(path, index=False)
    source = SourceTableConfig(
        table=str(path), id_column="id", label_column="churned", categorical=tuple(categorical)
    )
    return base.model_copy(update={"source": source})


def tuned(config: AppConfig, minutes: float) -> AppConfig:
    tuning = config.training.tuning.model_copy(update={"enabled": True, "minutes": minutes})
    return config.model_copy(update={"training": config.training.model_copy(update={"tuning": tuning})})


def measure(result, seconds: float, explain_rows: int) -> dict[str, float]:
    """The held-out metrics, size and exact-SHAP rate of one trained result. The rate is the best
    of 5 timed `pred_contrib` calls: other work on a shared machine only ever slows a call down."""
    m = result.metrics
    bundle = result.bundle
    rows = bundle.matrix(bundle.prepare(result.extra["X_test"].head(explain_rows)))
    trees, leaves, depth = model_shape(bundle.churn_booster)
    search = result.extra.get("tuning")
    return {
        "roc_auc": m["roc_auc"],
        "pr_auc": m["pr_auc"],
        "ece": m["ece"],
        "log_loss": m["log_loss"],
        "trees": float(trees),
        "tree_leaves": float(leaves),
        "depth": float(depth),
        "shap_rows_per_s": explanation_rate(bundle.contributions_array, rows, len(rows), repeats=5),
        "search_s": search.seconds if search else 0.0,
        "trials": float(len(search.trials)) if search else 0.0,
        "pruned": float(search.counts()["pruned"]) if search else 0.0,
        "train_s": seconds,
    }


HEADER = (
    f"{'data set':<24} {'model':<8} {'ROC-AUC':>7} {'PR-AUC':>7} {'ECE':>7} {'log-loss':>8} {'trees':>5} "
    f"{'trees x leaves':>14} {'depth':>5} {'SHAP rows/s':>11} {'search s':>8} {'trials':>11}"
)


def row_line(data_set: str, model: str, r: dict[str, float]) -> str:
    trials = f"{r['trials']:.0f} ({r['pruned']:.0f} pr.)" if r["trials"] else "-"
    search = f"{r['search_s']:.0f}" if r["trials"] else "-"
    return (
        f"{data_set:<24} {model:<8} {r['roc_auc']:>7.4f} {r['pr_auc']:>7.4f} {r['ece']:>7.4f} {r['log_loss']:>8.4f} "
        f"{r['trees']:>5.0f} {r['tree_leaves']:>14,.0f} {r['depth']:>5.0f} {r['shap_rows_per_s']:>11,.0f} {search:>8} {trials:>11}"
    )


def ratio_line(default: dict[str, float], tuned_: dict[str, float]) -> str:
    return (
        f"{'':<24} {'tuned/default':<8} ROC-AUC {tuned_['roc_auc'] - default['roc_auc']:+.4f}, "
        f"PR-AUC {tuned_['pr_auc'] - default['pr_auc']:+.4f}, "
        f"log-loss x{tuned_['log_loss'] / default['log_loss']:.3f}, "
        f"trees x leaves x{tuned_['tree_leaves'] / default['tree_leaves']:.2f}, "
        f"SHAP rows/s x{tuned_['shap_rows_per_s'] / default['shap_rows_per_s']:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--bank-minutes", type=float, default=5.0)
    parser.add_argument("--table-minutes", type=float, default=3.0)
    parser.add_argument("--explain-rows", type=int, default=5_000)
    parser.add_argument("--only", nargs="*", choices=["bank", *SHAPES], default=["bank", *SHAPES])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)  # LightGBM's and sklearn's chatter
    base = load_config(environ={})
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, float]]] = {}
    runs = []
    if "bank" in args.only:
        # both runs train on the same snapshots and campaign rows, built once
        rows = rows_from_tables(read_tables(bank_path(args.customers, 24, 7)), base)
        label = f"bank {args.customers // 1000}k (out of time)"
        runs.append((label, lambda c: pipeline.train_on_rows(rows, c), base, args.bank_minutes))
    for name in SHAPES:
        if name in args.only:
            config = table_config(base, name)
            frame = pd.read_parquet(config.source.table)
            label = f"{name} {len(frame) // 1000}k x {frame.shape[1] - 2}"
            runs.append((label, lambda c: train_from_table(c)[0], config, args.table_minutes))
    print(HEADER, flush=True)
    for label, train, config, minutes in runs:
        for model, cfg in (("default", config), ("tuned", tuned(config, minutes))):
            t0 = time.perf_counter()
            result = train(cfg)
            seconds = time.perf_counter() - t0
            results.setdefault(label, {})[model] = measure(result, seconds, args.explain_rows)
            if model == "tuned":
                results[label]["chosen_params"] = result.extra["tuning"].params.model_dump()
                results[label]["split_check"] = result.extra["tuning"].split_check
            print(row_line(label, model, results[label][model]), flush=True)
        print(ratio_line(results[label]["default"], results[label]["tuned"]), flush=True)
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
