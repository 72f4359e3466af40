"""The model bundle: everything scoring needs, in one directory that one MLflow model version carries.

Layout (written by training, read here; serving never imports training):

    bundle.json          schema version, feature names/dtypes/categories/families, calibrator,
                         next-product classes, product catalogue, value parameters, reason texts,
                         training metadata
    churn.txt            LightGBM churn booster (model text)
    next_product.txt     LightGBM multiclass next-product booster (model text)

Scores are calibrated probabilities of churn within the label horizon. Explanations are exact
TreeSHAP contributions of the churn booster in log-odds (LightGBM `pred_contrib`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.value import customer_value

BUNDLE_SCHEMA_VERSION = 1
NO_PRODUCT = "none"


class FeatureSchemaError(ValueError):
    """Feature rows that do not match the bundle's feature schema; the message names the column."""


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    contribution: float


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
        self, meta: dict[str, Any], churn_booster: lgb.Booster, next_product_booster: lgb.Booster | None
    ):
        if meta.get("schema_version") != BUNDLE_SCHEMA_VERSION:
            raise ValueError(
                f"bundle schema version {meta.get('schema_version')} is not {BUNDLE_SCHEMA_VERSION}"
            )
        self.meta = meta
        self.churn_booster = churn_booster
        self.next_product_booster = next_product_booster
        self.feature_names: list[str] = meta["features"]["names"]
        self.categories: dict[str, list[str]] = meta["features"]["categories"]
        self.families: dict[str, str] = meta["features"]["families"]

    # -- persistence --------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> ModelBundle:
        directory = Path(directory)
        meta = json.loads((directory / "bundle.json").read_text())
        churn = lgb.Booster(model_file=str(directory / "churn.txt"))
        next_path = directory / "next_product.txt"
        next_product = lgb.Booster(model_file=str(next_path)) if next_path.exists() else None
        return cls(meta, churn, next_product)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "bundle.json").write_text(json.dumps(self.meta, indent=2, default=str))
        self.churn_booster.save_model(str(directory / "churn.txt"))
        if self.next_product_booster is not None:
            self.next_product_booster.save_model(str(directory / "next_product.txt"))
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

        Raises:
            FeatureSchemaError: a missing column, or a category value the model never saw.
        """
        missing = [name for name in self.feature_names if name not in features.columns]
        if missing:
            raise FeatureSchemaError(f"{missing[0]}: feature missing ({len(missing)} missing in all)")
        frame = features[self.feature_names].copy()
        for name, dtype in self.meta["features"]["dtypes"].items():
            column = frame[name]
            if dtype == "category":
                levels = self.categories[name]
                values = column.astype(object)
                if self.meta["features"].get("normalise_text"):
                    values = values.where(values.isna(), values.astype(str).str.strip().str.lower())
                unknown = values.notna() & ~values.isin(levels)
                if unknown.any():
                    raise FeatureSchemaError(
                        f"{name}: unknown category {values[unknown].iloc[0]!r} (expected one of {', '.join(levels)})"
                    )
                frame[name] = pd.Categorical(values, categories=levels)
            else:
                numbers = pd.to_numeric(column, errors="coerce")
                if (numbers.isna() & column.notna()).any():
                    raise FeatureSchemaError(f"{name}: not a number")
                frame[name] = numbers.astype(float)
        return frame

    # -- scores ----------------------------------------------------------------------------------
    def raw_margin(self, prepared: pd.DataFrame) -> np.ndarray:
        return self.churn_booster.predict(prepared, raw_score=True)

    def churn_probability(self, prepared: pd.DataFrame) -> np.ndarray:
        margin = self.raw_margin(prepared)
        return apply_calibrator(self.meta["calibrator"], 1.0 / (1.0 + np.exp(-margin)), margin)

    def contributions(self, prepared: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions in log-odds; columns are features plus `bias`."""
        values = self.churn_booster.predict(prepared, pred_contrib=True)
        return pd.DataFrame(values, index=prepared.index, columns=[*self.feature_names, "bias"])

    def reasons(
        self, prepared: pd.DataFrame, contributions: pd.DataFrame, top: int = 3
    ) -> list[list[Reason]]:
        """Top reason families per customer: families ranked by their summed positive contribution."""
        families = sorted(set(self.families.values()))
        family_of_feature = np.array([families.index(self.families[name]) for name in self.feature_names])
        positive = np.clip(contributions[self.feature_names].to_numpy(), 0.0, None)
        by_family = np.zeros((len(positive), len(families)))
        for k in range(len(families)):
            by_family[:, k] = positive[:, family_of_feature == k].sum(axis=1)
        order = np.argsort(-by_family, axis=1, kind="stable")[:, :top]
        strength = np.take_along_axis(by_family, order, axis=1)
        texts = self.meta["reasons"]
        values = prepared.to_dict("records")
        result: list[list[Reason]] = []
        for row, (ranked, amounts) in enumerate(zip(order, strength, strict=True)):
            reasons = []
            for k, amount in zip(ranked, amounts, strict=True):
                if amount <= 0:
                    break
                family = families[k]
                reasons.append(
                    Reason(
                        family.upper(),
                        _reason_text(texts.get(family, []), values[row], family),
                        float(amount),
                    )
                )
            result.append(reasons)
        return result

    def next_product_arrays(self, prepared: pd.DataFrame, top: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Top products not already held: codes (n, top; None when fewer) and propensities (NaN)."""
        n = len(prepared)
        if self.next_product_booster is None:
            return np.full((n, top), None, dtype=object), np.full((n, top), np.nan)
        classes = np.array(self.meta["next_product"]["classes"], dtype=object)
        probabilities = self.next_product_booster.predict(prepared)
        for k, product in enumerate(classes):
            if product == NO_PRODUCT:
                probabilities[:, k] = -1.0
            else:
                probabilities[:, k] = np.where(
                    prepared[f"has_{product}"].to_numpy() > 0, -1.0, probabilities[:, k]
                )
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
        chosen = np.take_along_axis(probabilities, order, axis=1)
        codes = np.where(chosen >= 0, classes[order], None)
        return codes, np.where(chosen >= 0, chosen, np.nan)

    def next_products(self, prepared: pd.DataFrame, top: int = 3) -> list[list[tuple[str, float]]]:
        """Top products not already held, with the probability of opening each within the horizon."""
        codes, propensities = self.next_product_arrays(prepared, top)
        return [
            [(str(c), float(p)) for c, p in zip(row_codes, row_p, strict=True) if c is not None]
            for row_codes, row_p in zip(codes, propensities, strict=True)
        ]

    def value(self, prepared: pd.DataFrame) -> np.ndarray:
        """Customer value; NaN when the bundle has no value parameters (a table brought by the bank)."""
        v = self.meta["value"]
        if v is None:
            return np.full(len(prepared), np.nan)
        return customer_value(prepared, self.meta["products"], v["years"], v["discount_rate"])


def _reason_text(options: list[dict[str, str | None]], values: dict[str, Any], family: str) -> str:
    for option in options:
        when = option.get("when")
        if when is None or (values.get(when) is not None and float(values[when]) > 0):
            try:
                return str(option["text"]).format(**values)
            except (KeyError, ValueError, TypeError):
                break
    if family in values:  # a family that is one column, e.g. a bank's own table
        value = values[family]
        shown = f"{value:,.4g}" if isinstance(value, int | float | np.floating) else str(value)
        return f"{family} = {shown}"
    return family.replace("_", " ")
