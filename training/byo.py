"""Bring your own table: train on a customer-level table with a churn flag, no code change.

`training.byo_table` reads, labels, coerces (what was coerced or refused is reported) and splits
the table, and drops the columns that leak the label; this module trains, calibrates and evaluates
the churn model on it, cross-validates, summarises, and gives promotion its evaluation rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from churn.config import AppConfig, BoosterParams
from serving.model_bundle import BUNDLE_SCHEMA_VERSION, ModelBundle
from training.byo_table import (
    DataReport,
    SourceTableError,
    as_categorical,
    drop_leaks,
    load_source_table,
)
from training.metrics import churn_metrics
from training.models import fit_churn_model, logistic_baseline
from training.pipeline import TrainingResult, training_ranges


def train_from_table(config: AppConfig, cv_folds: int = 0) -> tuple[TrainingResult, DataReport]:
    """Train, calibrate and evaluate the churn model on the configured source table."""
    source = config.source
    loaded = load_source_table(config)
    frame, y, X_all, parts, split, report = (
        loaded.frame,
        loaded.y,
        loaded.X,
        loaded.parts,
        loaded.split,
        loaded.report,
    )
    seed = config.training.seed

    X_all = drop_leaks(X_all, y, parts["train"], report)
    levels = {
        c: sorted(X_all[c].iloc[parts["train"]].dropna().unique().tolist()) for c in report.used_categorical
    }
    # values first seen outside training are mapped to missing rather than refused
    X = as_categorical(X_all, levels)
    X.index = pd.Index(frame[source.id_column].to_numpy(), name=source.id_column)
    X_train, X_valid, X_test = (X.iloc[parts[k]] for k in ("train", "validation", "test"))
    y_train, y_valid, y_test = (y[parts[k]] for k in ("train", "validation", "test"))

    params, search = config.training.churn, None
    if config.training.tuning.enabled:
        from training.tuning import tune_for_split

        out_of_time = split.kind == "out of time"
        search = tune_for_split(X_train, y_train, X_valid, y_valid, config.training, out_of_time, ())
        params = search.params
    churn = fit_churn_model(X_train, y_train, X_valid, y_valid, params, seed)
    names = list(X.columns)
    meta = {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "features": {
            "names": names,
            "dtypes": {c: ("category" if c in levels else "float") for c in names},
            "categories": levels,
            "families": {c: c for c in names},
            "excluded": report.not_used,
            "normalise_text": True,
            "ranges": training_ranges(X_train),
        },
        "calibrator": churn.calibrator,
        "monotone_increasing": [],
        "next_product": {"classes": []},
        "products": {},
        "value": None,
        "reasons": {},
        "source": {"table": source.table, "id_column": source.id_column, "label_column": source.label_column},
        "training": {
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "split": split.describe(),
            "churn_params": params.model_dump(),
        },
    }
    bundle = ModelBundle(meta, churn.booster, None)
    p_test = bundle.churn_probability(bundle.prepare(X_test))
    evaluation = config.evaluation
    kwargs = {"capacity": evaluation.contact_capacity, "top_shares": evaluation.top_shares}
    metrics = churn_metrics(y_test, p_test, **kwargs) | {
        f"calibration_{k}": v for k, v in churn.calibration_choice.items()
    }
    metrics["num_trees"] = float(bundle.churn_booster.num_trees())
    extra: dict[str, Any] = {}
    if search is not None:
        from training.tuning_report import record_search

        metrics |= record_search(search, bundle, bundle.prepare(X_test))
        extra["tuning"] = search
    logistic = logistic_baseline(X_train, y_train, seed)
    baselines = {"logistic": churn_metrics(y_test, logistic.predict_proba(X_test)[:, 1], **kwargs)}
    if cv_folds:
        metrics |= cross_validate(
            X.iloc[np.concatenate([parts["train"], parts["validation"]])],
            np.concatenate([y_train, y_valid]),
            config,
            cv_folds,
            params,
        )
    contributions = bundle.contributions(bundle.prepare(X_test))
    global_shap = contributions[names].abs().mean().sort_values(ascending=False)
    test_frame = X_test.assign(churn=y_test, churn_probability=p_test)
    result = TrainingResult(
        bundle=bundle,
        split=split,
        metrics=metrics,
        baseline_metrics=baselines,
        next_product_metrics={},
        popularity_metrics={},
        rows={
            "train_rows": len(y_train),
            "train_positives": int(y_train.sum()),
            "validation_rows": len(y_valid),
            "test_rows": len(y_test),
            "test_positives": int(y_test.sum()),
        },
        test_frame=test_frame,
        global_shap=global_shap,
        test_contributions=contributions,
        extra={"train_frame": X_train, "X_test": X_test, "y_test": y_test, "data_report": report.as_dict()}
        | extra,
    )
    return result, report


def cross_validate(
    X: pd.DataFrame, y: np.ndarray, config: AppConfig, folds: int, params: BoosterParams | None = None
) -> dict[str, float]:
    """K-fold metrics (mean and standard deviation) of the same model recipe, each fold calibrated
    on a slice of its own training part, since one split of a small table is noisy. `params`:
    the booster's parameters (`training.churn` when None; the search's choice after `--tune`)."""
    if folds < 2:
        raise SourceTableError(f"--cv: needs at least 2 folds, got {folds}")
    seed = config.training.seed
    scores: dict[str, list[float]] = {"roc_auc": [], "pr_auc": [], "brier": []}
    for fit_idx, eval_idx in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y):
        inner_train, inner_valid = train_test_split(
            fit_idx, test_size=0.2, stratify=y[fit_idx], random_state=seed
        )
        model = fit_churn_model(
            X.iloc[inner_train],
            y[inner_train],
            X.iloc[inner_valid],
            y[inner_valid],
            params or config.training.churn,
            seed,
        )
        m = churn_metrics(
            y[eval_idx],
            model.probability(X.iloc[eval_idx]),
            capacity=config.evaluation.contact_capacity,
            top_shares=(),
        )
        for key in scores:
            scores[key].append(m[key])
    out = {}
    for key, values in scores.items():
        out[f"cv_{key}_mean"] = float(np.mean(values))
        out[f"cv_{key}_std"] = float(np.std(values, ddof=1))
    out["cv_folds"] = float(folds)
    return out


def table_summary_lines(result: TrainingResult) -> list[str]:
    m, lr = result.metrics, result.baseline_metrics["logistic"]
    lines = [
        f"split                 {result.split.describe()['kind']}: "
        + "; ".join(f"{k} {v}" for k, v in result.split.describe().items() if k != "kind"),
        f"churn ROC-AUC         {m['roc_auc']:.3f}  (logistic {lr['roc_auc']:.3f})",
        f"churn PR-AUC          {m['pr_auc']:.3f}  (logistic {lr['pr_auc']:.3f}; base rate {m['base_rate']:.3f})",
        f"calibration           Brier {m['brier']:.4f}, ECE {m['ece']:.4f}, {result.bundle.meta['calibrator']['method']}",
        f"top drivers           {', '.join(result.global_shap.index[:5])}",
    ]
    if "cv_roc_auc_mean" in m:
        lines.append(
            f"{int(m['cv_folds'])}-fold CV ROC-AUC    {m['cv_roc_auc_mean']:.3f} +/- {m['cv_roc_auc_std']:.3f}, "
            f"PR-AUC {m['cv_pr_auc_mean']:.3f} +/- {m['cv_pr_auc_std']:.3f}"
        )
    return lines


def evaluation_rows(config: AppConfig) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The held-out rows of the configured table (same coercion and split as training), with labels."""
    loaded = load_source_table(config)
    test = loaded.parts["test"]
    X = loaded.X.set_axis(
        pd.Index(loaded.frame[config.source.id_column].to_numpy(), name=config.source.id_column)
    )
    labels = pd.DataFrame({"churn": loaded.y[test]}, index=X.index[test])
    return X.iloc[test], labels, f"{config.source.table} test rows ({loaded.split.kind})"
