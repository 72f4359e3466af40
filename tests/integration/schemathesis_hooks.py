"""Schemathesis hooks for the scoring API (loaded through SCHEMATHESIS_HOOKS).

JSON Schema counts `832.0` as an integer; the API deliberately refuses it for ids and counts
(a decimal where a whole number belongs is a client bug worth a 400). Schema-valid requests that
schemathesis generates therefore send whole numbers as integers. Requests it generates to be
invalid are left alone, so the API is still checked to refuse them.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation


def _whole_numbers_as_integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers_as_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers_as_integers(item) for key, item in value.items()}
    return value


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is not None and meta.is_negative_at(ParameterLocation.BODY):
        return case
    if isinstance(case.body, dict | list):
        case.body = _whole_numbers_as_integers(case.body)
    return case
