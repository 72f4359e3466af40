"""What the scoring API serves from: the champion model and the stored customers, in memory.

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
from serving.api_rows import Coded, Customers, Positions
from serving.auth import Secrets, load_secrets
from serving.model_bundle import FeatureSchemaError, ModelBundle
from serving.scoring import CUSTOMER_COLUMNS
from serving.store import ServingStore

CHUNK_ROWS = 1_000  # customers read and converted at a time by a reload (`load_customers`)


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


def load_customers(store: ServingStore, bundle: ModelBundle, chunk_rows: int = CHUNK_ROWS) -> Customers:
    """Every stored customer's features as the bundle's matrix, and what the decisions read beside.

    Read and converted `chunk_rows` customers at a time: a reload runs beside the requests, and
    every step here that works on all rows at once holds the interpreter until it is done (163 ms
    at 200,000 customers read whole, `make bench-reload`). Per chunk the holds are a few
    milliseconds at any size, and joining the chunks' arrays releases it. Nothing kept holds a
    Python object per customer (`Positions`, `Coded`), so freeing the old customers at a swap
    is quick too."""
    marker = store.daily_run_marker()
    ids, matrices, do_not_contact, joined = [], [], [], []
    text = [column for column in CUSTOMER_COLUMNS if column != "do_not_contact"]
    codes: dict[str, list[np.ndarray]] = {column: [] for column in text}
    levels: dict[str, dict[Any, int]] = {column: {} for column in text}
    for features, context in store.customer_chunks(chunk_rows):
        ids.append(features.index.to_numpy().astype(np.int64))
        matrices.append(bundle.matrix(bundle.prepare(features)))
        do_not_contact.append(context["do_not_contact"].to_numpy(dtype=bool))
        for column in text:
            codes[column].append(_encode(context[column], levels[column]))
        joined.append(
            pd.to_datetime(context["join_date"], errors="coerce").to_numpy("datetime64[ns]")
            if "join_date" in context
            else np.full(len(features), np.datetime64("NaT"), dtype="datetime64[ns]")
        )
    every_id = np.concatenate([np.empty(0, dtype=np.int64), *ids])
    position = Positions(every_id)
    repeated = position.repeated()
    if repeated is not None:  # a lookup would find one of its rows at random
        raise ValueError(
            f"customer_features/customer_context: a customer id appears in {repeated} rows; "
            "each customer needs one feature row and at most one context row (rerun `churn score`)"
        )
    return Customers(
        marker,
        store.features_as_of(),
        every_id,
        position,
        np.concatenate([np.empty((0, len(bundle.feature_names))), *matrices]),
        {"do_not_contact": np.concatenate([np.empty(0, dtype=bool), *do_not_contact])}
        | {
            column: Coded(np.concatenate([np.empty(0, dtype=np.int32), *codes[column]]), list(levels[column]))
            for column in text
        },
        np.concatenate([np.empty(0, dtype="datetime64[ns]"), *joined]),
    )


def _encode(values: pd.Series, levels: dict[Any, int]) -> np.ndarray:
    """One chunk of a text column as codes into `levels`, which grows with values not seen
    before; -1 where missing."""
    chunk_codes, uniques = pd.factorize(values)  # -1 where missing
    known = np.array([*(levels.setdefault(u, len(levels)) for u in uniques), -1], dtype=np.int32)
    return known[chunk_codes]  # a code of -1 takes the last entry, -1


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
