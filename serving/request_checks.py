"""What each route accepts, checked before a request reaches the service.

Bodies are parsed once with duplicate keys refused, then validated by the route's pydantic model
in strict JSON mode; query strings are checked against the route's declared parameters. A failure
is an `ApiError` whose message names the field and the rule and never repeats a value from the
request, so it can be logged as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from serving import api_models as m

Scope = str  # "read" or "write"


class ApiError(Exception):
    """A client error: the HTTP status, the field at fault and what is wrong with it.

    The message is `<field>: <rule>` and holds no value from the request (it is logged)."""

    def __init__(self, status: int, field: str | None, rule: str, headers: dict[str, str] | None = None):
        super().__init__(f"{field}: {rule}" if field else rule)
        self.status, self.field, self.rule = status, field, rule
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class Route:
    """One operation: its method, the scope its key needs, and what it accepts."""

    method: str
    scope: Scope | None  # None: public
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    customer_data: bool = False  # reads or writes a customer's data (access log, rate limit)


ROUTES: dict[str, Route] = {
    "/score": Route("POST", "read", body=m.ScoreRequest, customer_data=True),
    "/explain": Route("POST", "read", body=m.ExplainRequest, customer_data=True),
    "/contact-outcome": Route("POST", "write", body=m.ContactOutcomeRequest, customer_data=True),
    "/risk-list": Route("GET", "read", query=m.RiskListQuery, customer_data=True),
    "/model-info": Route("GET", "read"),
    "/metrics": Route("GET", "read"),
    "/healthz": Route("GET", None),
    "/livez": Route("GET", None),
    "/readyz": Route("GET", None),
    "/docs.json": Route("GET", None),
    "/": Route("GET", None),
}


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ApiError(400, safe_name(key), "appears more than once in the same object")
        seen[key] = value
    return seen


def _reject_constant(name: str) -> None:
    raise ApiError(400, None, f"body: {name} is not a JSON number; send a finite number")


def check_body(route: Route, body: bytes) -> BaseModel:
    """The body validated by the route's model.

    Raises:
        ApiError: malformed JSON, a repeated key, or the first field that breaks the model.
    """
    try:
        json.loads(body, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(400, None, f"body: invalid JSON at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ApiError(400, None, "body: not UTF-8 text") from None
    except RecursionError:
        raise ApiError(400, None, "body: nested too deeply") from None
    try:
        return route.body.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise validation_error(exc, in_json=True) from None


def check_query(route: Route, query_string: bytes) -> BaseModel | None:
    """The query parameters validated by the route's model; a route without one takes none.

    Raises:
        ApiError: an unknown or repeated parameter, or a value that breaks the model.
    """
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    model = route.query
    allowed = set(model.model_fields) if model is not None else set()
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            raise ApiError(400, safe_name(name), "unknown query parameter")
        if name in values:
            raise ApiError(400, name, "given more than once")
        values[name] = value
    if model is None:
        return None
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validation_error(exc: ValidationError, prefix: str = "", in_json: bool = False) -> ApiError:
    """The first error of a pydantic validation as an ApiError naming its field (no input value).
    `in_json`: the input was a JSON body (whose types matter), not query text."""
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    field = field_path(first["loc"], prefix)
    message = first["msg"].removeprefix("Value error, ")
    head, _, rest = message.partition(": ")
    if not field and rest and head.isidentifier():  # a model rule naming its field ("offer_accepted: ...")
        return ApiError(400, field_path((head,), prefix), rest)
    return ApiError(400, field or None, _rule(first["type"], message, in_json))


def _rule(kind: str, message: str, in_json: bool) -> str:
    if kind == "extra_forbidden":
        return "not a field of this request"
    if kind == "missing":
        return "required"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number" + (
            " (a JSON integer, not a string, decimal or boolean)" if in_json else ""
        )
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing"):
        return "must be an ISO 8601 date-time string such as 2026-11-20T10:15:00Z"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        return "must be a date such as 2026-11-01"
    return message[0].lower() + message[1:] if message else kind


# pydantic adds the union member it tried to the location ("float", "constrained-str", ...)
_UNION_TAGS = {"float", "int", "str", "bool", "none", "constrained-str", "constrained-int", "list", "dict"}


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    """A pydantic error location as the request's field path: `rows[0].features.region`."""
    parts: list[str] = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        elif item in _UNION_TAGS or str(item).startswith(("function-", "nullable[", "literal[")):
            continue
        else:
            parts.append(safe_name(str(item)))
    return ".".join(parts)


def safe_name(name: str) -> str:
    """A key name as sent, made safe to log: short, printable; other keys are not logged at all."""
    if len(name) <= 64 and name[:1].isalpha() and name.replace("_", "").isalnum() and name.isascii():
        return name
    return "(a key that is not a valid name)"
