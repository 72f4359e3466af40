"""The OpenAPI document of the scoring API, built from the request and response models.

Written here rather than taken from BentoML's generator so that it says exactly what the server
does: every status each operation can answer with (one error shape for all of them), the
either/or rules of the request bodies, the allowed values that come from the configuration (the
playbook's actions and teams, the page size limit), and no parameter the server would refuse.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from churn.config import AppConfig
from features.schema import SEGMENTS
from serving import api_models as m

_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Bad request: the `field` and what is wrong with it",
    401: "Missing or unknown API key",
    403: "The key lacks the scope this operation needs",
    404: "Not found",
    409: "The event id was already recorded with different content",
    413: "Request body too large",
    415: "The body is not application/json",
    429: "Too many requests for this key; retry after `Retry-After` seconds",
    503: "The database is unavailable; retry later",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer realm"}},
    429: {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait"}},
}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    out = {}
    for status in statuses:
        out[str(status)] = {"description": _ERRORS[status], "content": _json(m.ErrorResponse)}
        if status in _HEADERS:
            out[str(status)]["headers"] = _HEADERS[status]
    return out


_GUARDED = (400, 401, 403, 429)  # every operation that needs a key can answer these
_BODY = (413, 415)


def _post(
    operation: str, summary: str, request: type[BaseModel], ok: dict[str, Any], *statuses: int
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": _json(request)},
            "responses": ok | _errors(*sorted({*_GUARDED, *_BODY, *statuses})),
        }
    }


def _linked(responses: dict[str, Any]) -> dict[str, Any]:
    """The list's customers lead to their explanation and to recording a contact's outcome."""
    first = "$response.body#/items/0/customer_id"
    responses["200"]["links"] = {
        "ExplainListedCustomer": {"operationId": "explain", "requestBody": {"customer_id": first}},
        "RecordOutcomeOfListedCustomer": {
            "operationId": "contactOutcome",
            "requestBody": {
                "event_id": "crm-link-1",
                "customer_id": first,
                "contacted_at": "2026-11-02T10:00:00Z",
                "channel": "phone",
                "reached": True,
            },
        },
    }
    return responses


def allowed_query_values(config: AppConfig) -> dict[str, list[str]]:
    """The values /risk-list's text filters may take (the guard refuses others)."""
    playbook = config.playbook
    allowed = {"segment": list(SEGMENTS)}
    if playbook:
        allowed["team"] = sorted({a.owner for a in playbook.actions.values()})
    return allowed


def _query_parameters(config: AppConfig, schema: dict[str, Any]) -> list[dict[str, Any]]:
    allowed = allowed_query_values(config)
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        if name == "limit":
            prop["maximum"] = config.serving.page_size_limit
        if allowed.get(name):
            prop = {"anyOf": [{"type": "string", "enum": allowed[name]}, {"type": "null"}]} | {
                k: v for k, v in prop.items() if k not in ("anyOf", "type")
            }
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": prop}
            | ({"description": prop["description"]} if "description" in prop else {})
        )
    return parameters


def feature_row_schema(config: AppConfig) -> dict[str, Any]:
    """Every feature of the catalogue, required, with its type, bounds or categories (null: missing)."""
    from features.catalog import feature_catalog

    properties = {}
    for spec in feature_catalog(config.features, tuple(config.products)):
        if spec.dtype == "category":
            kind: dict[str, Any] = {"type": "string", "enum": list(spec.categories or ())}
        else:
            kind = {"type": "integer" if spec.dtype == "int" else "number"}
            kind |= {"minimum": spec.minimum} if spec.minimum is not None else {}
            kind |= {"maximum": spec.maximum} if spec.maximum is not None else {}
        properties[spec.name] = {"anyOf": [kind, {"type": "null"}], "description": spec.meaning}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        "description": "Every feature of the model (docs/features.md); null for a missing value",
    }


def build_spec(config: AppConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API as configured."""
    inputs = [m.ScoreRequest, m.ExplainRequest, m.ContactOutcomeRequest, m.RiskListQuery]
    outputs = [
        m.ScoreResponse,
        m.Explanation,
        m.OutcomeRecorded,
        m.RiskListPage,
        m.ModelInfo,
        m.ErrorResponse,
    ]
    _, definitions = models_json_schema(
        [(model, "validation") for model in inputs] + [(model, "serialization") for model in outputs],
        ref_template=_REF,
    )
    schemas = definitions["$defs"]
    query = schemas.pop("RiskListQuery")
    actions = list(config.playbook.actions) if config.playbook else []
    if actions:
        schemas["ContactOutcomeRequest"]["properties"]["action"]["anyOf"][0]["enum"] = actions
    for model, fields in (
        ("ScoreRequest", ("customer_ids", "rows")),
        ("ExplainRequest", ("customer_id", "row")),
    ):
        for field in fields:  # either/or fields: present or absent, never null (oneOf says which)
            prop = schemas[model]["properties"][field]
            prop.pop("default", None)
            prop.update([option for option in prop.pop("anyOf") if option.get("type") != "null"][0])
            if model == "ScoreRequest":
                prop["maxItems"] = config.serving.max_batch
                prop["uniqueItems"] = field == "customer_ids"
    if config.source is None:  # the bank's own model: its features are the catalogue's
        schemas["FeatureRow"]["properties"]["features"] = feature_row_schema(config)

    def ok(model: type[BaseModel], *statuses: int) -> dict[str, Any]:
        return {
            str(s): {"description": "OK" if s == 200 else "Recorded", "content": _json(model)}
            for s in statuses
        }

    def probe(description: str, *statuses: int) -> dict[str, Any]:
        responses = {
            "200": {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}
        }
        if 503 in statuses:
            responses["503"] = {
                "description": "Not ready",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        return {"get": {"summary": description, "responses": responses | _errors(400)}}

    paths = {
        "/score": _post(
            "score", "Score customers by id or feature rows", m.ScoreRequest, ok(m.ScoreResponse, 200), 503
        ),
        "/explain": _post(
            "explain",
            "Every feature's SHAP contribution for one customer",
            m.ExplainRequest,
            ok(m.Explanation, 200),
            404,
            503,
        ),
        "/contact-outcome": _post(
            "contactOutcome",
            "Record what happened after a contact (idempotent on event_id)",
            m.ContactOutcomeRequest,
            ok(m.OutcomeRecorded, 200, 201),
            404,
            409,
            503,
        ),
        "/risk-list": {
            "get": {
                "operationId": "riskList",
                "summary": "The stored daily list, filtered and paginated",
                "security": [{"bearer": []}],
                "parameters": _query_parameters(config, query),
                "responses": _linked(ok(m.RiskListPage, 200)) | _errors(*_GUARDED, 404, 503),
            }
        },
        "/model-info": {
            "get": {
                "summary": "The champion being served",
                "security": [{"bearer": []}],
                "responses": ok(m.ModelInfo, 200) | _errors(*_GUARDED),
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                }
                | _errors(*_GUARDED),
            }
        },
        "/healthz": probe("The process is up"),
        "/livez": probe("The process is up"),
        "/readyz": probe("The model is loaded and the database answers", 503),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Churn scoring API",
            "version": "1",
            "description": "Scores, explanations, recommendations and the daily risk list for CRM front ends.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
