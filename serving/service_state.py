"""What the scoring API serves from: the champion model and the stored customers, loaded whole.

`serving.service.ChurnService` holds one `State` and swaps it for a new one when a champion is
promoted or the daily job writes new feature rows, so a request never sees half of a reload.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.config import AppConfig, load_config
from serving.api_rows import Customers
from serving.auth import Secrets, load_secrets
from serving.model_bundle import FeatureSchemaError, ModelBundle
from serving.scoring import CUSTOMER_COLUMNS
from serving.store import ServingStore


@dataclass(frozen=True)
class Champion:
    bundle: ModelBundle
    version: str
    info: dict[str, Any]


@dataclass(frozen=True)
class State:
    """What one request reads: swapped whole, so a request never sees half of a reload."""

    champion: Champion
    customers: Customers


def service_settings() -> tuple[AppConfig, Secrets]:
    """Config (CHURN_CONFIG or the default, with environment overrides) and secrets."""
    config = load_config(os.environ.get("CHURN_CONFIG") or None)
    return config, load_secrets(config.serving.secrets_file)


def check_schema(bundle: ModelBundle, columns: list[str]) -> None:
    """Raise FeatureSchemaError when the feature table lacks a feature the bundle needs."""
    missing = [name for name in bundle.feature_names if name not in columns]
    if missing:
        raise FeatureSchemaError(
            f"the champion needs {len(missing)} feature(s) the feature table does not have "
            f"(e.g. {missing[0]!r}); rerun `churn score` with the matching feature code"
        )


def load_champion(config: AppConfig, current: Champion | None) -> Champion:
    """The registry's champion: `current` itself when it is still the champion, else loaded."""
    from serving.registry import champion_version, load_bundle, version_metrics

    version = champion_version(config)
    if current is not None and current.version == version:
        return current
    bundle = load_bundle(config, version)
    bundle.predict_threads = 1  # one row per call: threads would only contend between requests
    info = version_metrics(config, version) | {
        "loaded_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    }
    return Champion(bundle, version, info)


def load_customers(store: ServingStore, bundle: ModelBundle) -> Customers:
    """Every stored customer's features as the bundle's matrix, and what the decisions read beside."""
    marker = store.daily_run_marker()
    features, context = store.all_customers()
    ids = features.index.to_numpy()
    joined = (
        pd.to_datetime(context["join_date"], errors="coerce").to_numpy("datetime64[ns]")
        if "join_date" in context
        else np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[ns]")
    )
    return Customers(
        marker,
        store.features_as_of(),
        ids,
        {customer: row for row, customer in enumerate(ids.tolist())},
        bundle.matrix(bundle.prepare(features)),
        {column: context[column].to_numpy() for column in CUSTOMER_COLUMNS},
        joined,
    )


def settle_memory() -> None:
    """Collect, then freeze what is alive (modules, the model, the customers) out of the garbage
    collector's reach. Without this a full collection scans some 450,000 long-lived objects and
    stalls every request for about 250 ms; frozen objects are still freed by reference counting."""
    gc.collect()
    gc.freeze()


__all__ = [
    "Champion",
    "State",
    "check_schema",
    "load_champion",
    "load_customers",
    "service_settings",
    "settle_memory",
]
