"""The model bundle: everything scoring needs, in one directory that one MLflow model version carries.

Layout (written by training, read here; serving never imports training):

    bundle.json          schema version, feature names/dtypes/categories/families, calibrator,
                         next-product classes, product catalogue, value parameters, reason texts,
                         training metadata
    churn.txt            LightGBM churn booster (model text)
    next_product.txt     LightGBM multiclass next-product booster (model text)
    drivers.txt          LightGBM booster of the driver and context features alone: its SHAP
                         contributions rank the reasons (`serving.reasons`); never a probability
    uplift/              optional: the learned uplift of each action (`serving.uplift_model`)

Scores are calibrated probabilities of churn within the label horizon. Explanations are exact
TreeSHAP contributions of the churn booster in log-odds (LightGBM `pred_contrib`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.value import customer_value
from serving.reasons import Diagnosis, Reason, diagnose, family_specs
from serving.uplift_model import UpliftModel

__all__ = ["Diagnosis", "FeatureSchemaError", "ModelBundle", "Reason", "categoricals_as_text"]

BUNDLE_SCHEMA_VERSION = 1
NO_PRODUCT = "none"


class FeatureSchemaError(ValueError):
    """Feature rows that do not match the bundle's feature schema; the message names the column."""


def categoricals_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with categorical columns as plain strings (missing stays missing), as clients and
    file or database readers expect them; other columns are unchanged."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def apply_calibrator(
    calibrator: dict[str, Any], raw_probability: np.ndarray, raw_margin: np.ndarray
) -> np.ndarray:
    """Map the booster's raw output to a calibrated probability."""
    if calibrator["method"] == "isotonic":
        return np.interp(raw_probability, calibrator["x"], calibrator["y"])
    if calibrator["method"] == "sigmoid":
        return 1.0 / (1.0 + np.exp(-(calibrator["a"] * raw_margin + calibrator["b"])))
    if calibrator["method"] == "none":
        return raw_probability
    raise ValueError(f"unknown calibrator {calibrator['method']!r}")


class ModelBundle:
    """A loaded bundle. Construct with `ModelBundle.load(directory)`."""

    def __init__(
        self,
        meta: dict[str, Any],
        churn_booster: lgb.Booster,
        next_product_booster: lgb.Booster | None,
        driver_booster: lgb.Booster | None = None,
        uplift: UpliftModel | None = None,
    ):
        if meta.get("schema_version") != BUNDLE_SCHEMA_VERSION:
            raise ValueError(
                f"bundle schema version {meta.get('schema_version')} is not {BUNDLE_SCHEMA_VERSION}"
            )
        self.meta = meta
        self.churn_booster = churn_booster
        self.next_product_booster = next_product_booster
        # the reasons' model: drivers and context only (training.models.fit_driver_model)
        self.driver_booster = driver_booster
        # the learned uplift of each action (serving.uplift_model; None: the playbook's effects)
        self.uplift = uplift
        self.driver_features: list[str] = (meta.get("drivers") or {}).get("features", [])
        self.feature_names: list[str] = meta["features"]["names"]
        self.categories: dict[str, list[str]] = meta["features"]["categories"]
        self.families: dict[str, str] = meta["features"]["families"]
        self.predict_threads = 0  # LightGBM's default (all cores); the API sets 1 per request
        # `matrix` encodes categories by the bundle's levels; the boosters must read the same codes
        levels = [
            self.categories[n] for n in self.feature_names if meta["features"]["dtypes"][n] == "category"
        ]
        for booster in (churn_booster, next_product_booster):
            if booster is not None and (booster.pandas_categorical or []) != levels:
                raise ValueError("bundle: a booster's category levels differ from bundle.json's")
        driver_levels = [self.categories[n] for n in self.driver_features if n in self.categories]
        if driver_booster is not None and (driver_booster.pandas_categorical or []) != driver_levels:
            raise ValueError("bundle: the driver booster's category levels differ from bundle.json's")

    # -- persistence --------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        meta = json.loads((directory / "bundle.json").read_text())
        churn = lgb.Booster(model_file=str(directory / "churn.txt"))
        next_path, driver_path = directory / "next_product.txt", directory / "drivers.txt"
        next_product = lgb.Booster(model_file=str(next_path)) if next_path.exists() else None
        drivers = lgb.Booster(model_file=str(driver_path)) if driver_path.exists() else None
        return cls(meta, churn, next_product, drivers, UpliftModel.load(directory / "uplift"))

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "bundle.json").write_text(json.dumps(self.meta, indent=2, default=str))
        self.churn_booster.save_model(str(directory / "churn.txt"))
        if self.next_product_booster is not None:
            self.next_product_booster.save_model(str(directory / "next_product.txt"))
        if self.driver_booster is not None:
            self.driver_booster.save_model(str(directory / "drivers.txt"))
        if self.uplift is not None:
            self.uplift.save(directory / "uplift")
        return directory

    @property
    def schema_hash(self) -> str:
        """A short hash of the feature schema (names, dtypes, categories), for compatibility checks."""
        payload = json.dumps(
            {k: self.meta["features"][k] for k in ("names", "dtypes", "categories")}, sort_keys=True
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:16]

    # -- input -----------------------------------------------------------------------------------
    def prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """Check feature rows against the schema and return them in model order and dtypes.

        Numeric columns convert in one step; only when that fails does a column-by-column pass
        run, to name the column. A single API row and a million batch rows take the same path.

        Raises:
            FeatureSchemaError: a missing column, a value that is not a number, or a category
                value the model never saw.
        """
        if self._is_prepared(features):  # e.g. rows the API keeps prepared in memory
            return features
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise FeatureSchemaError(f"{missing[0]}: feature missing ({len(missing)} missing in all)")
        dtypes = self.meta["features"]["dtypes"]
        numeric = [name for name in self.feature_names if dtypes[name] != "category"]
        try:
            values = features[numeric].to_numpy(dtype=float)
        except (TypeError, ValueError):
            for name in numeric:
                column = features[name]
                numbers = pd.to_numeric(column, errors="coerce")
                if (numbers.isna() & column.notna()).any():
                    raise FeatureSchemaError(f"{name}: not a number") from None
            values = features[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        frame = pd.DataFrame(values, index=features.index, columns=numeric)
        for name in self.feature_names:
            if dtypes[name] != "category":
                continue
            levels = self.categories[name]
            column = features[name]
            if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == levels:
                frame[name] = column
                continue
            values = column.to_numpy(dtype=object)
            if self.meta["features"].get("normalise_text"):
                values = np.array(
                    [v.strip().lower() if isinstance(v, str) else v for v in values], dtype=object
                )
            categorical = pd.Categorical(values, categories=levels)
            unknown = (categorical.codes == -1) & pd.notna(values)
            if unknown.any():
                raise FeatureSchemaError(
                    f"{name}: unknown category {values[unknown][0]!r} (expected one of {', '.join(levels)})"
                )
            frame[name] = categorical
        return frame[self.feature_names]

    def _is_prepared(self, features: pd.DataFrame) -> bool:
        if list(features.columns) != self.feature_names:
            return False
        for name, dtype in zip(self.feature_names, features.dtypes, strict=True):
            if name in self.categories:
                if (
                    not isinstance(dtype, pd.CategoricalDtype)
                    or list(dtype.categories) != self.categories[name]
                ):
                    return False
            elif dtype != np.float64:
                return False
        return True

    def matrix(self, prepared: pd.DataFrame) -> np.ndarray:
        """Prepared rows as the float matrix the boosters read: categories as their integer codes
        (NaN when missing), exactly what LightGBM does with a DataFrame, done once per call
        instead of once per booster."""
        categorical = [j for j, name in enumerate(self.feature_names) if name in self.categories]
        numeric = [j for j, name in enumerate(self.feature_names) if name not in self.categories]
        out = np.empty((len(prepared), len(self.feature_names)))
        out[:, numeric] = prepared.iloc[:, numeric].to_numpy(dtype=float)
        for j in categorical:
            codes = prepared.iloc[:, j].cat.codes.to_numpy()
            out[:, j] = np.where(codes < 0, np.nan, codes)
        return out

    def _x(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        return data if isinstance(data, np.ndarray) else self.matrix(data)

    def columns(self, data: pd.DataFrame | np.ndarray) -> _Columns:
        """Feature columns of prepared rows or of their `matrix`, by name, each converted on
        first use: numeric as floats, categorical as their labels (NaN when missing)."""
        return _Columns(self, data)

    def row_values(self, x_row: np.ndarray) -> dict[str, float | str | None]:
        """One `matrix` row as {feature: value}: numbers, category labels, None when missing."""
        out: dict[str, float | str | None] = {}
        for name, value in zip(self.feature_names, x_row.tolist(), strict=True):
            if value != value:  # NaN
                out[name] = None
            elif name in self.categories:
                out[name] = self.categories[name][int(value)]
            else:
                out[name] = value
        return out

    def _predict(self, booster: lgb.Booster, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        if self.predict_threads:
            kwargs["num_threads"] = self.predict_threads
        return booster.predict(x, **kwargs)

    # -- scores ----------------------------------------------------------------------------------
    def raw_margin(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self._predict(self.churn_booster, self._x(data), raw_score=True)

    def churn_probability(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probabilities for prepared rows (or their `matrix`)."""
        margin = self.raw_margin(data)
        return apply_calibrator(self.meta["calibrator"], 1.0 / (1.0 + np.exp(-margin)), margin)

    def contributions(self, prepared: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds; columns are features plus `bias`."""
        values = self.contributions_array(prepared)
        return pd.DataFrame(values, index=prepared.index, columns=[*self.feature_names, "bias"])

    def contributions_array(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """`contributions` as an array (features, then bias), for prepared rows or their `matrix`."""
        return self._predict(self.churn_booster, self._x(data), pred_contrib=True)

    def family_contributions(self, contributions: pd.DataFrame | np.ndarray) -> tuple[list[str], np.ndarray]:
        """(families, positive SHAP contribution summed per family, shape (rows, families))."""
        families = sorted(set(self.families.values()))
        family_of_feature = np.array([families.index(self.families[name]) for name in self.feature_names])
        values = (
            contributions[self.feature_names].to_numpy()
            if isinstance(contributions, pd.DataFrame)
            else contributions[:, : len(self.feature_names)]
        )
        positive = np.clip(values, 0.0, None)
        by_family = np.zeros((len(positive), len(families)))
        for k in range(len(families)):
            by_family[:, k] = positive[:, family_of_feature == k].sum(axis=1)
        return families, by_family

    def diagnose(
        self,
        prepared: pd.DataFrame | np.ndarray,
        contributions: pd.DataFrame | np.ndarray,
        top: int = 3,
        min_type_share: float = 0.5,
        min_driver_logit: float = 0.1,
    ) -> list[Diagnosis]:
        """Per customer: the top driver reasons, the evidence (symptoms) and the kind of churn
        (`serving.reasons`). `prepared`: prepared rows or their `matrix`; `contributions`: from
        `contributions` (or LightGBM's raw `pred_contrib` array, features then bias)."""
        families, by_family = self.family_contributions(contributions)
        specs = family_specs(self.meta["reasons"], families)
        if self.driver_booster is not None:  # drivers and context weighed by the reasons' model
            x = self._x(prepared)
            columns = [self.feature_names.index(name) for name in self.driver_features]
            reasoning = self._predict(self.driver_booster, x[:, columns], pred_contrib=True)
            positive = np.clip(reasoning[:, : len(columns)], 0.0, None)
            for k, family in enumerate(families):
                if specs[k].role != "symptom":
                    mine = [j for j, name in enumerate(self.driver_features) if self.families[name] == family]
                    by_family[:, k] = positive[:, mine].sum(axis=1) if mine else 0.0
        return diagnose(self.columns(prepared), by_family, specs, top, min_type_share, min_driver_logit)

    def reasons(
        self,
        prepared: pd.DataFrame | np.ndarray,
        contributions: pd.DataFrame | np.ndarray,
        top: int = 3,
    ) -> list[list[Reason]]:
        """Top driver reasons per customer, ranked by their summed positive contribution."""
        return [d.reasons for d in self.diagnose(prepared, contributions, top)]

    def next_product_arrays(
        self, prepared: pd.DataFrame | np.ndarray, top: int = 3
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top products not already held: codes (n, top; None when fewer) and propensities (NaN).
        `prepared`: prepared rows or their `matrix`."""
        n = len(prepared)
        if self.next_product_booster is None:
            return np.full((n, top), None, dtype=object), np.full((n, top), np.nan)
        classes = np.array(self.meta["next_product"]["classes"], dtype=object)
        probabilities = self._predict(self.next_product_booster, self._x(prepared))
        columns = self.columns(prepared)
        for k, product in enumerate(classes):
            if product == NO_PRODUCT:
                probabilities[:, k] = -1.0
            else:
                probabilities[:, k] = np.where(columns[f"has_{product}"] > 0, -1.0, probabilities[:, k])
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
        chosen = np.take_along_axis(probabilities, order, axis=1)
        codes = np.where(chosen >= 0, classes[order], None)
        return codes, np.where(chosen >= 0, chosen, np.nan)

    def next_products(
        self, prepared: pd.DataFrame | np.ndarray, top: int = 3
    ) -> list[list[tuple[str, float]]]:
        """Top products not already held, with the probability of opening each within the horizon."""
        codes, propensities = self.next_product_arrays(prepared, top)
        return [
            [(str(c), float(p)) for c, p in zip(row_codes, row_p, strict=True) if c is not None]
            for row_codes, row_p in zip(codes, propensities, strict=True)
        ]

    def value(self, prepared: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Customer value; NaN when the bundle has no value parameters (a table brought by the bank).
        `prepared`: prepared rows or their `matrix`."""
        v = self.meta["value"]
        if v is None:
            return np.full(len(prepared), np.nan)
        columns = self.columns(prepared)
        return customer_value(columns, len(prepared), self.meta["products"], v["years"], v["discount_rate"])


class _Columns(dict):
    """Feature columns of prepared rows (a frame) or of their matrix, as NumPy arrays, each
    converted the first time it is asked for: numeric as floats, categorical as labels."""

    def __init__(self, bundle: ModelBundle, data: pd.DataFrame | np.ndarray):
        super().__init__()
        self._bundle = bundle
        self._data = data
        self._position = {name: j for j, name in enumerate(bundle.feature_names)}

    def __missing__(self, key: str) -> np.ndarray:
        data = self._data
        if isinstance(data, pd.DataFrame):
            column = data[key]
            values = (
                column.to_numpy(dtype=object)
                if isinstance(column.dtype, pd.CategoricalDtype)
                else column.to_numpy(dtype=float)
            )
        else:
            values = data[:, self._position[key]]
            levels = self._bundle.categories.get(key)
            if levels is not None:
                labels = np.array([*levels, np.nan], dtype=object)
                values = labels[np.where(np.isnan(values), len(levels), values).astype(int)]
        self[key] = values
        return values

    def __contains__(self, key: object) -> bool:
        if isinstance(self._data, pd.DataFrame):
            return key in self._data.columns
        return key in self._position
