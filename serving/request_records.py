"""The rows the scoring API writes about each request: who read whom, and what was predicted.

Customers appear by keyed pseudonym only (`serving.auth.pseudonymise`), and the prediction log
leaves out the withheld features (`serving.request_log.WITHHELD_FEATURES`); the rows go to the
journaled background writer (`serving.request_log.RequestLogWriter`).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from starlette.requests import Request

from serving.auth import pseudonymise
from serving.request_log import WITHHELD_FEATURES


def api_key_name(ctx: Any) -> str | None:
    """The API key name the guard put on the request (ctx: a BentoML context or a Request)."""
    if ctx is None:
        return None
    request = ctx if isinstance(ctx, Request) else ctx.request
    return request.scope.get("state", {}).get("api_key")


def prediction_row(
    pseudonym_key: str,
    endpoint: str,
    request_id: str,
    version: str,
    customer_id: int | None,
    features: dict[str, Any],
    outputs: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """One prediction-log row: the model's inputs (less the withheld ones) and outputs, and the
    latency since `started` (a `time.perf_counter()`)."""
    kept = {name: value for name, value in features.items() if name not in WITHHELD_FEATURES}
    return {
        "logged_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "request_id": request_id,
        "endpoint": endpoint,
        "model_version": version,
        "customer_key": None if customer_id is None else pseudonymise(pseudonym_key, customer_id),
        "churn_probability": outputs["churn_probability"],
        "risk_tier": outputs["risk_tier"],
        "features": json.dumps(kept),
        "outputs": json.dumps(outputs, default=str),
        "latency_ms": (time.perf_counter() - started) * 1000,
    }


def access_rows(
    pseudonym_key: str, ctx: Any, endpoint: str, request_id: str, customer_ids: list[int | None]
) -> list[dict[str, Any]]:
    """Who read (or wrote) whom: one access-log row per customer, by pseudonym."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    key = api_key_name(ctx) or "(direct call)"
    return [
        {
            "logged_at": now,
            "key_name": key,
            "endpoint": endpoint,
            "customer_key": pseudonymise(pseudonym_key, customer),
            "request_id": request_id,
        }
        for customer in customer_ids
        if customer is not None
    ]


def score_rows(
    pseudonym_key: str, request_id: str, champion: Any, batch: Any, scores: list[Any], started: float
) -> list[dict[str, Any]]:
    """/score's prediction-log rows, one per customer scored (`serving.api_rows.Batch` rows and
    their `CustomerScore`s, in the same order)."""
    return [
        prediction_row(
            pseudonym_key,
            "score",
            request_id,
            champion.version,
            score.customer_id,
            champion.bundle.row_values(batch.x[j]),
            score.model_dump(exclude={"customer_id", "index"}),
            started,
        )
        for j, score in enumerate(scores)
    ]


__all__ = ["access_rows", "api_key_name", "prediction_row", "score_rows"]
