"""Fitting: the LightGBM churn model and its calibrator, the baselines, and the next-product model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.settings import BoosterParams

NO_PRODUCT = "none"


def _lgb_params(params: BoosterParams, seed: int, **extra: Any) -> dict[str, Any]:
    return {
        "num_leaves": params.num_leaves,
        "max_depth": params.max_depth,
        "learning_rate": params.learning_rate,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": params.lambda_l2,
        "lambda_l1": params.lambda_l1,
        "cat_smooth": params.cat_smooth,
        "cat_l2": params.cat_l2,
        "min_data_per_group": params.min_data_per_group,
        "zero_as_missing": params.zero_as_missing,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 0,
        "verbose": -1,
        **extra,
    }


@dataclass(frozen=True)
class ChurnModel:
    booster: lgb.Booster
    calibrator: dict[str, Any]
    calibration_choice: dict[str, float]

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        from serving.model_bundle import apply_calibrator  # the same function serving applies

        margin = self.booster.predict(X, raw_score=True)
        return apply_calibrator(self.calibrator, 1 / (1 + np.exp(-margin)), margin)


def churn_settings(
    params: BoosterParams, seed: int, columns: list[str], monotone_increasing: tuple[str, ...] = ()
) -> dict[str, Any]:
    """LightGBM settings of the churn booster, shared by training and the hyperparameter search:
    AUC first (early stopping watches it, `fit_churn_model`), then binary log-loss, and the
    monotone constraints."""
    unknown = [name for name in monotone_increasing if name not in columns]
    if unknown:
        raise ValueError(f"training.monotone_increasing: unknown feature {unknown[0]!r}")
    return _lgb_params(
        params,
        seed,
        objective="binary",
        metric=["auc", "binary_logloss"],
        scale_pos_weight=params.scale_pos_weight,
        monotone_constraints=[1 if name in monotone_increasing else 0 for name in columns],
        monotone_constraints_method="advanced",
    )


def fit_churn_model(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    params: BoosterParams,
    seed: int,
    monotone_increasing: tuple[str, ...] = (),
) -> ChurnModel:
    """Train with early stopping on validation, then calibrate on validation.

    Class imbalance: rows are not re-weighted (`scale_pos_weight` 1). Re-weighting would inflate
    every probability, and the retention list multiplies probability by value, so we keep the
    booster on the true base rate, early-stop on the validation log-loss, and let calibration
    correct what remains (including a `scale_pos_weight` the search was allowed to choose).
    """
    booster = lgb.train(
        churn_settings(params, seed, list(X_train.columns), monotone_increasing),
        lgb.Dataset(X_train, y_train),
        num_boost_round=params.num_boost_round,
        valid_sets=[lgb.Dataset(X_valid, y_valid)],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    margin = booster.predict(X_valid, raw_score=True, num_iteration=booster.best_iteration)
    booster = booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))
    calibrator, choice = choose_calibrator(np.asarray(y_valid), margin, seed)
    return ChurnModel(booster=booster, calibrator=calibrator, calibration_choice=choice)


def fit_driver_model(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    params: BoosterParams,
    seed: int,
    monotone_increasing: tuple[str, ...] = (),
) -> lgb.Booster:
    """The churn model of drivers and context alone (no symptoms), whose SHAP contributions rank
    the reasons. The main model leans on symptoms (the money already leaving), and among drivers
    its contributions follow whatever correlates with draining; a model that cannot see the
    symptoms has to put the risk on the causes. It is never used for the probability."""
    columns = list(X_train.columns)
    booster = lgb.train(
        churn_settings(params, seed, columns, tuple(n for n in monotone_increasing if n in columns)),
        lgb.Dataset(X_train, y_train),
        num_boost_round=params.num_boost_round,
        valid_sets=[lgb.Dataset(X_valid, y_valid)],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )
    return booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))


def _fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-4, y_max=1 - 1e-4).fit(p, y)
    return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


def _fit_sigmoid(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    platt = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y)
    return {"method": "sigmoid", "a": float(platt.coef_[0, 0]), "b": float(platt.intercept_[0])}


def calibration_losses(y: np.ndarray, margin: np.ndarray, seed: int) -> dict[str, float]:
    """Log-loss of isotonic and sigmoid calibration, each 5-fold cross-validated on these rows
    (`cv_log_loss_isotonic`, `cv_log_loss_sigmoid`)."""
    from serving.model_bundle import apply_calibrator

    p = 1 / (1 + np.exp(-margin))
    losses = {"isotonic": [], "sigmoid": []}
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for fit_idx, eval_idx in folds.split(margin.reshape(-1, 1), y):
        for method, fit in (
            ("isotonic", lambda i: _fit_isotonic(p[i], y[i])),
            ("sigmoid", lambda i: _fit_sigmoid(margin[i], y[i])),
        ):
            calibrated = np.clip(
                apply_calibrator(fit(fit_idx), p[eval_idx], margin[eval_idx]), 1e-6, 1 - 1e-6
            )
            ye = y[eval_idx]
            losses[method].append(
                float(-np.mean(ye * np.log(calibrated) + (1 - ye) * np.log(1 - calibrated)))
            )
    return {f"cv_log_loss_{m}": float(np.mean(v)) for m, v in losses.items()}


def choose_calibrator(
    y: np.ndarray, margin: np.ndarray, seed: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """Pick isotonic or sigmoid by 5-fold cross-validated log-loss on the validation rows."""
    mean_loss = calibration_losses(y, margin, seed)
    best = min(("isotonic", "sigmoid"), key=lambda m: mean_loss[f"cv_log_loss_{m}"])
    p = 1 / (1 + np.exp(-margin))
    calibrator = _fit_isotonic(p, y) if best == "isotonic" else _fit_sigmoid(margin, y)
    return calibrator, mean_loss


def shipped_log_loss(y: np.ndarray, margin: np.ndarray, seed: int) -> float:
    """The log-loss of the probabilities a model with these margins would ship: after the
    calibrator `choose_calibrator` picks on the same rows, cross-validated there. The raw log-loss
    would judge a scale the calibrator resets: where the validation months drift (competitor
    campaigns make outflows mean less churn there), it grows from the second tree on and prefers
    the smallest model, though a larger one ranks and, once calibrated, predicts better."""
    return min(calibration_losses(y, margin, seed).values())


def logistic_baseline(X_train: pd.DataFrame, y_train: np.ndarray, seed: int):
    """Logistic regression on the same features (median-imputed, scaled, one-hot categories)."""
    categorical = [c for c in X_train.columns if isinstance(X_train[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X_train.columns if c not in categorical]
    pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        ),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    return pipeline.fit(X_train, y_train)


def one_rule_score(X: pd.DataFrame) -> np.ndarray:
    """The rule a retention team would use without a model: the largest 3-month balance drop first."""
    return -np.nan_to_num(X["assets_change_3m"].to_numpy(dtype=float), nan=0.0)


@dataclass(frozen=True)
class NextProductModel:
    booster: lgb.Booster
    classes: list[str]


def fit_next_product_model(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    products: tuple[str, ...],
    params: BoosterParams,
    seed: int,
) -> NextProductModel:
    """One multiclass booster over 'none' plus every catalogue product.

    One model rather than one per product: products compete for the same customers, so a softmax
    over them ranks them consistently; it is one booster to ship and explain; and rare products
    borrow strength from shared trees. Products already held are masked out when ranking.
    """
    classes = [NO_PRODUCT, *products]
    index = {c: k for k, c in enumerate(classes)}
    booster = lgb.train(
        _lgb_params(params, seed, objective="multiclass", num_class=len(classes), metric="multi_logloss"),
        lgb.Dataset(X_train, y_train.map(index).to_numpy()),
        num_boost_round=params.num_boost_round,
        valid_sets=[lgb.Dataset(X_valid, y_valid.map(index).to_numpy())],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    booster = booster.model_from_string(booster.model_to_string(num_iteration=booster.best_iteration))
    return NextProductModel(booster=booster, classes=classes)


def popularity_ranking(X: pd.DataFrame, y_train: pd.Series, products: tuple[str, ...]) -> list[list[str]]:
    """Baseline: products ranked by how often they were opened in training, minus those held."""
    popularity = y_train[y_train != NO_PRODUCT].value_counts()
    order = [p for p in popularity.index if p in products] + [
        p for p in products if p not in popularity.index
    ]
    held = {p: X[f"has_{p}"].to_numpy() > 0 for p in products}
    return [[p for p in order if not held[p][i]] for i in range(len(X))]
