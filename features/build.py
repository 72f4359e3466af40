"""Point-in-time behavioural features: one row per customer active at the as-of date.

`features.view.point_in_time_view` is the only reader of the raw tables; each feature family is a
pure, vectorised function of that view (`features/families/`), registered here by name. The
family names are what reasons are grouped by (drivers, symptoms and context: README, Reasons).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from features.catalog import feature_catalog
from features.families.behaviour import (
    balance_features,
    contact_features,
    engagement_features,
    outflow_features,
    product_features,
    profile_features,
    rfm_features,
    salary_features,
)
from features.families.drivers import (
    application_features,
    competition_features,
    complaint_features,
    fee_features,
    incident_features,
    life_event_features,
    maturity_features,
)
from features.settings import FeatureConfig
from features.view import LOOKBACK_DAYS, PointInTimeView, active_customers, point_in_time_view

__all__ = ["FAMILIES", "LOOKBACK_DAYS", "active_customers", "build_features", "point_in_time_view"]

FeatureFamily = Callable[[PointInTimeView, FeatureConfig], dict[str, np.ndarray]]

FAMILIES: dict[str, FeatureFamily] = {
    "profile": profile_features,
    "rfm": rfm_features,
    "balance": balance_features,
    "outflow": outflow_features,
    "salary": salary_features,
    "engagement": engagement_features,
    "complaints": complaint_features,
    "fees": fee_features,
    "incidents": incident_features,
    "competition": competition_features,
    "maturities": maturity_features,
    "applications": application_features,
    "life_events": life_event_features,
    "contacts": contact_features,
}


def build_features(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    config: FeatureConfig,
    products: tuple[str, ...],
) -> pd.DataFrame:
    """Build one feature row per customer active at `as_of`, from data strictly before it.

    Args:
        tables: validated raw tables.
        as_of: the as-of date; nothing on or after this day is read.
        config: feature windows and thresholds.
        products: the product catalogue codes (for `has_<product>`).

    Returns:
        A frame indexed by `customer_id` with the catalogue's columns in catalogue order;
        categorical columns have the catalogue's fixed categories.
    """
    view = point_in_time_view(tables, as_of)
    values: dict[str, np.ndarray] = {}
    for family in FAMILIES.values():
        values.update(family(view, config))
    values.update(product_features(view, config, products))
    catalog = feature_catalog(config, products)
    names = [spec.name for spec in catalog]
    if set(values) != set(names):
        raise AssertionError(f"features and catalogue disagree: {sorted(set(values) ^ set(names))}")
    frame = pd.DataFrame(
        {name: values[name] for name in names},
        index=pd.Index(view.customers["customer_id"], name="customer_id"),
    )
    for spec in catalog:
        if spec.dtype == "category":
            frame[spec.name] = pd.Categorical(frame[spec.name], categories=spec.categories)
        elif spec.dtype == "int":
            frame[spec.name] = frame[spec.name].astype(np.int64)
        else:
            frame[spec.name] = frame[spec.name].astype(np.float64)
    return frame
