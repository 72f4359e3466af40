"""The training pipeline: snapshots -> out-of-time split -> models, baselines, metrics and the bundle."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churn.config import AppConfig, BoosterParams
from features.catalog import feature_catalog
from serving.model_bundle import BUNDLE_SCHEMA_VERSION, ModelBundle
from training.metrics import churn_metrics, ranking_metrics
from training.models import (
    NO_PRODUCT,
    fit_churn_model,
    fit_driver_model,
    fit_next_product_model,
    logistic_baseline,
    one_rule_score,
    popularity_ranking,
)
from training.rows import TrainingRows
from training.split import TimeSplit


@dataclass
class TrainingResult:
    """Everything a training run produced, ready to be logged."""

    bundle: ModelBundle
    split: TimeSplit
    metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]]
    next_product_metrics: dict[str, float]
    popularity_metrics: dict[str, float]
    rows: dict[str, int]
    test_frame: pd.DataFrame  # test snapshot features, labels and scores
    global_shap: pd.Series  # mean |SHAP| per feature on the test snapshot, descending
    test_contributions: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def feature_columns(config: AppConfig) -> list[str]:
    products = tuple(config.products)
    return [s.name for s in feature_catalog(config.features, products)]


def _bundle_meta(
    config: AppConfig,
    X: pd.DataFrame,
    split: TimeSplit,
    calibrator: dict,
    classes: list[str],
    churn_params: BoosterParams | None = None,
) -> dict:
    catalog = {s.name: s for s in feature_catalog(config.features, tuple(config.products))}
    names = list(X.columns)
    return {
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "features": {
            "names": names,
            "dtypes": {n: ("category" if catalog[n].dtype == "category" else "float") for n in names},
            "categories": {
                n: list(catalog[n].categories or ()) for n in names if catalog[n].dtype == "category"
            },
            "families": {n: catalog[n].family for n in names},
            # what a caller's row must respect (the definition's bounds), and what training saw
            "bounds": {
                n: [catalog[n].minimum, catalog[n].maximum] for n in names if catalog[n].dtype != "category"
            },
            "integers": [n for n in names if catalog[n].dtype == "int"],
            "ranges": training_ranges(X),
        },
        "calibrator": calibrator,
        "monotone_increasing": list(config.training.monotone_increasing),
        "next_product": {"classes": classes},
        "products": {code: p.model_dump() for code, p in config.products.items()},
        "value": config.value.model_dump(),
        "reasons": {family: spec.model_dump() for family, spec in config.reasons.items()},
        "labels": config.labels.model_dump(),
        "training": {
            "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "split": split.describe(),
            # what `training.churn` must say for a retrain to reproduce this model (the search's choice)
            "churn_params": (churn_params or config.training.churn).model_dump(),
        },
    }


def driver_columns(config: AppConfig, columns: list[str]) -> list[str]:
    """The features the reasons' model sees: those of driver and context families (README, Reasons)."""
    catalog = {s.name: s for s in feature_catalog(config.features, tuple(config.products))}
    keep = {family for family, spec in config.reasons.items() if spec.role in ("driver", "context")}
    return [name for name in columns if catalog[name].family in keep]


def training_ranges(X: pd.DataFrame) -> dict[str, list[float | None]]:
    """Smallest and largest value of every numeric feature among the training rows (None when a
    column has no value): a row outside them makes the model extrapolate, which the API flags."""
    numeric = X.select_dtypes(exclude="category")
    low, high = numeric.min(), numeric.max()
    return {
        name: [
            None if pd.isna(low[name]) else float(low[name]),
            None if pd.isna(high[name]) else float(high[name]),
        ]
        for name in numeric.columns
    }


def train_models(tables: Mapping[str, pd.DataFrame], config: AppConfig) -> TrainingResult:
    """Build snapshots, split out of time, fit and evaluate everything, on a whole bank held in
    this process (`tables`: validated raw tables). The jobs read the bank partition by partition
    instead (`training.rows.training_rows`) and call `train_on_rows`."""
    from training.rows import rows_from_tables

    return train_on_rows(rows_from_tables(tables, config), config)


def attach_uplift(
    bundle: ModelBundle,
    campaigns: pd.DataFrame,
    config: AppConfig,
    latest: pd.DataFrame | None = None,
    probability: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """Learn the uplift models from the campaign rows into `bundle` (when the config asks for
    them); their metrics and the `extra` entry of the result. `latest` (the test months' rows,
    `bundle.prepare`d) gives the take-up floor its reference: the customers the churn model puts
    at or above the reporting threshold there (`probability`, computed when not given), whom a
    list would consider."""
    if not (config.uplift.enabled and config.playbook is not None):
        return {}, {}
    from training.uplift import fit_uplift

    learned = fit_uplift(campaigns, bundle, config)
    bundle.uplift = learned.model
    if learned.model is not None and latest is not None and len(latest):
        if probability is None:
            probability = bundle.churn_probability(latest)
        risky = probability >= config.scoring.reporting_threshold
        learned.model.take_up_reference(
            bundle.matrix(latest)[risky],
            "the test months' customers at or above the reporting threshold",
        )
    return learned.metrics, {"uplift": learned}


def train_on_rows(rows: TrainingRows, config: AppConfig) -> TrainingResult:
    """Fit and evaluate everything on the bank's training rows (`training.rows`)."""
    products = tuple(config.products)
    split, parts = rows.split, rows.parts
    columns = feature_columns(config)
    X = {name: part[columns] for name, part in parts.items()}
    y = {name: part["churn"].to_numpy() for name, part in parts.items()}
    seed = config.training.seed

    search = None
    churn_params = config.training.churn
    if config.training.tuning.enabled:
        from training.tuning import tune_for_split

        search = tune_for_split(
            X["train"], y["train"], X["validation"], y["validation"], config.training, out_of_time=True
        )
        churn_params = search.params
    churn = fit_churn_model(
        X["train"],
        y["train"],
        X["validation"],
        y["validation"],
        churn_params,
        seed,
        config.training.monotone_increasing,
    )
    next_product = fit_next_product_model(
        X["train"],
        parts["train"]["next_product"],
        X["validation"],
        parts["validation"]["next_product"],
        products,
        config.training.next_product,
        seed,
    )
    reasoning = driver_columns(config, columns)
    drivers = fit_driver_model(
        X["train"][reasoning],
        y["train"],
        X["validation"][reasoning],
        y["validation"],
        config.training.driver_params,
        seed,
        config.training.monotone_increasing,
    )
    meta = _bundle_meta(config, X["train"], split, churn.calibrator, next_product.classes, churn_params)
    meta["drivers"] = {"features": reasoning, "params": config.training.driver_params.model_dump()}
    bundle = ModelBundle(meta, churn.booster, next_product.booster, drivers)

    evaluation = config.evaluation
    kwargs = {"capacity": evaluation.contact_capacity, "top_shares": evaluation.top_shares}
    test_prepared = bundle.prepare(X["test"])
    p_test = bundle.churn_probability(test_prepared)
    metrics = churn_metrics(y["test"], p_test, **kwargs)
    metrics |= {f"calibration_{k}": v for k, v in churn.calibration_choice.items()}
    metrics["num_trees"] = float(bundle.churn_booster.num_trees())
    uplift_metrics, extra = attach_uplift(bundle, rows.campaigns, config, test_prepared, p_test)
    metrics |= uplift_metrics
    if search is not None:
        from training.tuning_report import record_search

        metrics |= record_search(search, bundle, test_prepared)
        extra["tuning"] = search
    logistic = logistic_baseline(X["train"], y["train"], seed)
    baselines = {
        "logistic": churn_metrics(y["test"], logistic.predict_proba(X["test"])[:, 1], **kwargs),
        "one_rule": churn_metrics(y["test"], one_rule_score(X["test"]), probabilities=False, **kwargs),
    }

    counts = {f"{name}_rows": len(part) for name, part in parts.items()} | {
        f"{name}_positives": int(part["churn"].sum()) for name, part in parts.items()
    }
    return evaluated_result(
        bundle, split, parts["test"], parts["train"], config, metrics, baselines, counts, extra=extra
    )


def evaluated_result(
    bundle: ModelBundle,
    split: TimeSplit,
    test: pd.DataFrame,
    train: pd.DataFrame,
    config: AppConfig,
    metrics: dict[str, float],
    baselines: dict[str, dict[str, float]],
    rows: dict[str, int],
    extra: dict[str, Any],
) -> TrainingResult:
    """The result, with what is computed from the test and training rows in this process: the
    next-product ranking metrics (on test customers who did open a product), the SHAP summary and
    the scored test frame. The local engine passes every row; the dask engine samples."""
    products = tuple(config.products)
    columns = feature_columns(config)
    prepared = bundle.prepare(test[columns])
    opened = (test["next_product"] != NO_PRODUCT).to_numpy()
    ranked = [[p for p, _ in row] for row in bundle.next_products(prepared[opened])]
    actual = test.loc[opened, "next_product"].tolist()
    np_metrics = ranking_metrics(ranked, actual) | {"customers_opening": float(opened.sum())}
    popularity = ranking_metrics(
        popularity_ranking(test[columns][opened], train["next_product"], products), actual
    )
    contributions = bundle.contributions(prepared)
    global_shap = contributions[columns].abs().mean().sort_values(ascending=False)
    test_frame = test.assign(
        churn_probability=bundle.churn_probability(prepared), value=bundle.value(prepared)
    )
    test_frame["value_at_risk"] = test_frame["churn_probability"] * test_frame["value"]
    return TrainingResult(
        bundle=bundle,
        split=split,
        metrics=metrics,
        baseline_metrics=baselines,
        next_product_metrics=np_metrics,
        popularity_metrics=popularity,
        rows=rows,
        test_frame=test_frame,
        global_shap=global_shap,
        test_contributions=contributions,
        extra={"train_frame": train, "X_test": test[columns], "y_test": test["churn"].to_numpy()} | extra,
    )


def summary_lines(result: TrainingResult) -> list[str]:
    m, lr, rule = result.metrics, result.baseline_metrics["logistic"], result.baseline_metrics["one_rule"]
    split = result.split.describe()
    return [
        f"split                 train {split['train']}; validation {split['validation']}; test {split['test']}",
        f"rows                  train {result.rows['train_rows']} ({result.rows['train_positives']} churners), "
        f"test {result.rows['test_rows']} ({result.rows['test_positives']} churners)",
        f"churn ROC-AUC         {m['roc_auc']:.3f}  (logistic {lr['roc_auc']:.3f}, one rule {rule['roc_auc']:.3f})",
        f"churn PR-AUC          {m['pr_auc']:.3f}  (logistic {lr['pr_auc']:.3f}, one rule {rule['pr_auc']:.3f}; base rate {m['base_rate']:.3f})",
        f"calibration           Brier {m['brier']:.4f}, ECE {m['ece']:.4f}, {result.bundle.meta['calibrator']['method']}",
        f"top 10%               lift {m['lift_top10']:.1f}, captures {m['capture_top10']:.0%} of churners",
        f"next product MAP@3    {result.next_product_metrics['map_at_3']:.3f} (popularity {result.popularity_metrics['map_at_3']:.3f})",
        f"top drivers           {', '.join(result.global_shap.index[:5])}",
        *uplift_lines(result),
    ]


def uplift_lines(result: TrainingResult) -> list[str]:
    """What the uplift models rest on, and their held-out Qini figures."""
    learned = result.extra.get("uplift")
    if learned is None:
        return []
    lines = [f"uplift                {note.removeprefix('uplift: ')}" for note in learned.notes]
    if learned.model is not None:
        meta = learned.model.meta
        shares = ", ".join(
            f"{a} {s:.0%}" for a, s in sorted(meta["learned_share"].items(), key=lambda kv: -kv[1])
        )
        lines.insert(
            0,
            f"uplift                R-learner, linear relative effects, on {meta['rows']['control']} control and "
            f"{sum(v for k, v in meta['rows'].items() if k != 'control')} contacted rows; learned share {shares or 'none'}",
        )
        from serving.uplift_model import PLAYBOOK

        chosen = meta.get("playbook_choice") or {}
        if PLAYBOOK in meta["effects"]:
            lines.insert(
                1,
                f"uplift                a model of the playbook's choice, from {chosen['contacts']} contacts "
                f"that were it ({chosen['churners']} churned; it values the playbook's action with "
                "uplift.playbook_effect pooled, or auto where its cross-fitted Qini interval is above zero)",
            )
            offsets = meta["effects"][PLAYBOOK].get("offsets") or {}
            if offsets:
                lines.insert(
                    2,
                    "uplift                each chosen action's offset on it (relative effect, shrunk; raw +- se): "
                    + ", ".join(
                        f"{a} {o['b']:+.2f} ({o['raw']:+.2f} +- {o['se']:.2f})"
                        for a, o in sorted(offsets.items())
                    ),
                )
    m = result.metrics
    if "uplift_qini" in m:
        lines.append(
            f"uplift Qini           {m['uplift_qini']:.4f} (95% interval {m['uplift_qini_low']:.4f} .. "
            f"{m['uplift_qini_high']:.4f}) any contact, every campaign month, cross-fitted by customer, "
            "adjusted for risk"
        )
    if "uplift_qini_unadjusted" in m:
        lines.append(
            f"uplift Qini, unadj.   {m['uplift_qini_unadjusted']:.4f} (95% interval "
            f"{m['uplift_qini_unadjusted_low']:.4f} .. {m['uplift_qini_unadjusted_high']:.4f}) the same, "
            "outcomes not adjusted"
        )
    if "uplift_qini_recent" in m:
        lines.append(
            f"uplift Qini, latest   {m['uplift_qini_recent']:.4f} (95% interval {m['uplift_qini_recent_low']:.4f} .. "
            f"{m['uplift_qini_recent_high']:.4f}) any contact, the held-out latest campaign months, adjusted"
        )
    if "uplift_qini_actions" in m:
        lines.append(
            f"uplift Qini, actions  {m['uplift_qini_actions']:.4f} (95% interval {m['uplift_qini_actions_low']:.4f} .. "
            f"{m['uplift_qini_actions_high']:.4f}), each action against the controls, adjusted"
        )
    if "uplift_qini_playbook_action" in m:
        lines.append(
            f"uplift Qini, playbook {m['uplift_qini_playbook_action']:.4f} (95% interval "
            f"{m['uplift_qini_playbook_action_low']:.4f} .. {m['uplift_qini_playbook_action_high']:.4f}) the "
            "latest months' contacts that were the playbook's choice against the controls, adjusted"
        )
    crossed = "uplift_qini_playbook_action_cross_fitted"
    if crossed in m:
        lines.append(
            f"uplift Qini, choice   {m[crossed]:.4f} (95% interval {m[crossed + '_low']:.4f} .. "
            f"{m[crossed + '_high']:.4f}) the contacts that were the playbook's choice against the controls, "
            "every campaign month, cross-fitted by customer, adjusted for risk (playbook_effect auto's gate)"
        )
    return lines


def as_float_dict(values: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in values.items() if isinstance(v, int | float | np.floating) and np.isfinite(v)
    }
