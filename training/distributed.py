"""Training on the `dask` engine: the snapshots stay on the cluster, LightGBM trains on it.

The procedure is the local one (`training.pipeline.train_models`), moved to where the data is:

- the stacked snapshots are built per customer partition (`build_training_set`, unchanged) and
  kept in the workers' memory;
- both boosters are fitted with `lightgbm.dask.DaskLGBMClassifier` (data-parallel: every worker
  trains on its partitions);
- early stopping is the local rule applied after the fact: the validation AUC of every iteration
  (the churn model) or its log-loss (the next-product model) is added up over the validation
  partitions on the workers (`training.iteration_curves`), and the model is cut at the iteration
  where `lgb.early_stopping` would have stopped (lightgbm.dask has no early stopping);
- the calibrator is chosen on the validation margins gathered to the client (two numbers a row);
- test metrics use every test row (scores computed on the workers, gathered with the labels);
- the logistic baseline, the next-product ranking metrics, the SHAP summaries, the plots and the
  monitoring reference use samples of at most `engine.client_sample_rows` rows gathered to the client;
- the campaign rows (for the uplift models) and the lineage come from the partition work every
  engine runs (`training.rows.training_rows(stacked=False)`), gathered to the client.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn.config import AppConfig, BoosterParams
from features.distributed import (
    Partitions,
    features_meta,
    open_partitions,
    validated_partition,
)
from features.snapshots import build_training_set
from serving.model_bundle import ModelBundle
from training.iteration_curves import (
    auc_from_counts,
    early_stopping_iteration,
    iteration_losses,
    iteration_margin_counts,
)
from training.metrics import churn_metrics
from training.models import (
    NO_PRODUCT,
    _lgb_params,
    choose_calibrator,
    fit_driver_model,
    logistic_baseline,
    one_rule_score,
)
from training.pipeline import (
    TrainingResult,
    _bundle_meta,
    attach_uplift,
    driver_columns,
    evaluated_result,
    feature_columns,
)
from training.rows import training_rows, training_split


def training_partition(
    k: int, parts: Partitions, dates: list[pd.Timestamp], config: AppConfig
) -> pd.DataFrame:
    """Partition k's stacked snapshots (`build_training_set`), indexed by customer id."""
    tables = validated_partition(parts, k).tables
    stacked = build_training_set(
        tables, dates, config.features, config.labels, tuple(config.products), months=parts.months
    )
    return stacked.reset_index(level="as_of")


def _training_meta(config: AppConfig) -> pd.DataFrame:
    meta = features_meta(config)
    meta.insert(0, "as_of", pd.Series([], dtype="datetime64[ns]"))
    return meta.assign(
        churn=pd.Series([], dtype=np.int64),
        churn_date=pd.Series([], dtype="datetime64[ns]"),
        next_product=pd.Series([], dtype=object),
    )


def _fit_dask(client, X, y, params: BoosterParams, seed: int, classes: int = 2, **extra: Any) -> lgb.Booster:
    """Fit on the workers' partitions and return the booster.

    The churn model is a `DaskLGBMClassifier`. The next-product model goes through
    `DaskLGBMRegressor` with LightGBM's multiclass objective and an explicit `num_class`: the
    classifier label-encodes the classes each worker happens to see, and a product that one worker
    never sees opened would give the workers different class counts.
    """
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    settings = _lgb_params(params, seed, **extra)
    settings.pop("num_threads")  # each worker uses its own threads
    if classes == 2:
        model = DaskLGBMClassifier(client=client, n_estimators=params.num_boost_round, **settings)
    else:
        model = DaskLGBMRegressor(
            client=client, n_estimators=params.num_boost_round, num_class=classes, **settings
        )
    model.fit(X, y)
    return model.to_local().booster_


def _summed(frame, per_partition) -> np.ndarray:
    """`per_partition(rows)` of every partition of a Dask frame, computed on the workers and added
    up there, pairwise (a partition's AUC counts are 20 MB: only the sum comes to the client)."""
    import dask

    parts = [dask.delayed(per_partition)(p) for p in frame.to_delayed()]
    while len(parts) > 1:
        paired = [dask.delayed(np.add)(a, b) for a, b in zip(parts[::2], parts[1::2], strict=False)]
        parts = paired + ([parts[-1]] if len(parts) % 2 else [])
    return dask.compute(parts[0])[0]


def _cut(booster: lgb.Booster, iteration: int) -> lgb.Booster:
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=iteration))


def _sample(frame, rows: int, total: int, seed: int) -> pd.DataFrame:
    share = min(1.0, rows / max(total, 1))
    return (frame if share >= 1.0 else frame.sample(frac=share, random_state=seed)).compute()


def train_models_dask(config: AppConfig, client) -> tuple[TrainingResult, pd.DataFrame, str]:
    """Train on the cluster. Returns the result (as `train_models` does), the row count per
    validated table and their content digest, for the run's lineage (`training.rows.lineage_of`)."""
    import dask
    import dask.dataframe as dd

    from churn.engine import DaskRunner

    parts = open_partitions(config, DaskRunner(client))
    products = tuple(config.products)
    split = training_split(parts.months, config)

    stacked = dd.from_map(
        training_partition,
        range(parts.count),
        parts=parts,
        dates=[*split.train, *split.validation, split.test],
        config=config,
        meta=_training_meta(config),
        divisions=parts.divisions,
        label="training-rows",
    ).persist()
    columns = feature_columns(config)
    frames = {
        "train": stacked[stacked["as_of"].isin(list(split.train))],
        "validation": stacked[stacked["as_of"].isin(list(split.validation))],
        "test": stacked[stacked["as_of"] == split.test],
    }
    counts = dask.compute(
        {
            name: (f.shape[0], f["churn"].sum(), (f["next_product"] != NO_PRODUCT).sum())
            for name, f in frames.items()
        }
    )[0]
    seed, training = config.training.seed, config.training

    # churn: fit on the workers, cut where early stopping would have, calibrate on the client
    unknown = [name for name in training.monotone_increasing if name not in columns]
    if unknown:
        raise ValueError(f"training.monotone_increasing: unknown feature {unknown[0]!r}")
    constraints = [1 if name in training.monotone_increasing else 0 for name in columns]
    booster = _fit_dask(
        client,
        frames["train"][columns],
        frames["train"]["churn"],
        training.churn,
        seed,
        objective="binary",
        monotone_constraints=constraints,
        monotone_constraints_method="advanced",
    )
    margin_counts = _summed(
        frames["validation"],
        lambda p: iteration_margin_counts(booster, p[columns], p["churn"].to_numpy()),
    )
    best = early_stopping_iteration(-auc_from_counts(margin_counts), training.churn.early_stopping_rounds)
    booster = _cut(booster, best)
    validation = (
        frames["validation"]
        .map_partitions(
            lambda p: pd.DataFrame(
                {"margin": booster.predict(p[columns], raw_score=True), "y": p["churn"].to_numpy()},
                index=p.index,
            ),
            meta={"margin": "f8", "y": "i8"},
        )
        .compute()
    )
    calibrator, choice = choose_calibrator(validation["y"].to_numpy(), validation["margin"].to_numpy(), seed)

    # next product: one multiclass booster, cut the same way
    all_classes = [NO_PRODUCT, *products]
    index = {c: k for k, c in enumerate(all_classes)}
    target = frames["train"]["next_product"].map(index, meta=("next_product", "f8"))
    np_booster = _fit_dask(
        client,
        frames["train"][columns],
        target,
        training.next_product,
        seed,
        classes=len(all_classes),
        objective="multiclass",
    )
    np_losses = _summed(
        frames["validation"],
        lambda p: iteration_losses(
            np_booster, p[columns], p["next_product"].map(index).to_numpy(), len(all_classes)
        ),
    )
    np_booster = _cut(
        np_booster,
        early_stopping_iteration(np_losses, training.next_product.early_stopping_rounds),
    )

    # the reasons' model (drivers and context alone) and the training ranges, on client samples
    sample_rows = config.engine.client_sample_rows
    train_sample = _sample(frames["train"], sample_rows, counts["train"][0], seed)
    valid_sample = _sample(frames["validation"], sample_rows, counts["validation"][0], seed)
    reasoning = driver_columns(config, columns)
    drivers = fit_driver_model(
        train_sample[reasoning],
        train_sample["churn"].to_numpy(),
        valid_sample[reasoning],
        valid_sample["churn"].to_numpy(),
        training.driver_params,
        seed,
        training.monotone_increasing,
    )
    meta = _bundle_meta(config, train_sample[columns], split, calibrator, all_classes)
    meta["drivers"] = {"features": reasoning, "params": training.driver_params.model_dump()}
    bundle = ModelBundle(meta, booster, np_booster, drivers)

    # every test row: scores on the workers, gathered with the labels
    logistic = logistic_baseline(train_sample[columns], train_sample["churn"].to_numpy(), seed)

    def test_scores(p: pd.DataFrame) -> pd.DataFrame:
        prepared = bundle.prepare(p[columns])
        return pd.DataFrame(
            {
                "y": p["churn"].to_numpy(),
                "p": bundle.churn_probability(prepared),
                "logistic": logistic.predict_proba(p[columns])[:, 1],
                "one_rule": one_rule_score(p[columns]),
            },
            index=p.index,
        )

    scores = (
        frames["test"]
        .map_partitions(test_scores, meta={"y": "i8", "p": "f8", "logistic": "f8", "one_rule": "f8"})
        .compute()
    )
    evaluation = config.evaluation
    kwargs = {"capacity": evaluation.contact_capacity, "top_shares": evaluation.top_shares}
    y_all = scores["y"].to_numpy()
    metrics = churn_metrics(y_all, scores["p"].to_numpy(), **kwargs)
    metrics |= {f"calibration_{k}": v for k, v in choice.items()}
    metrics["num_trees"] = float(booster.num_trees())
    baselines = {
        "logistic": churn_metrics(y_all, scores["logistic"].to_numpy(), **kwargs),
        "one_rule": churn_metrics(y_all, scores["one_rule"].to_numpy(), probabilities=False, **kwargs),
    }

    # the rest on a sample of the test snapshot gathered to the client
    test = _sample(frames["test"], sample_rows, counts["test"][0], seed)
    test.index.name = "customer_id"
    rows = {f"{name}_rows": int(c[0]) for name, c in counts.items()} | {
        f"{name}_positives": int(c[1]) for name, c in counts.items()
    }
    result = evaluated_result(
        bundle,
        split,
        test,
        train_sample.set_index("as_of", append=True),
        config,
        metrics,
        baselines,
        rows,
        extra={
            "engine": "dask",
            "best_iterations": {"churn": best, "next_product": np_booster.current_iteration()},
        },
    )
    # every test customer who opened a product, not only the sample's
    result.next_product_metrics["customers_opening"] = float(counts["test"][2])
    # the campaign rows and the lineage: the local engine's partition work, without the snapshots
    rows = training_rows(config, DaskRunner(client), stacked=False)
    uplift_metrics, uplift_extra = attach_uplift(
        bundle, rows.campaigns, config, bundle.prepare(test[bundle.feature_names])
    )
    result.metrics |= uplift_metrics
    result.extra |= uplift_extra
    return result, rows.counts, rows.digest
