"""Request checks: what each route accepts, with errors that name the field and never a value."""

from __future__ import annotations

import pytest

from serving.request_checks import ROUTES, ApiError, check_body, check_query, field_path

SECRET_VALUE = "98765.4321"  # sent in bad requests; it must never come back in an error text


def _body_error(path: str, body: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        check_body(ROUTES[path], body)
    return info.value


@pytest.mark.parametrize(
    ("path", "body", "field", "rule"),
    [
        ("/score", b'{"customer_ids": ["100249"]}', "customer_ids[0]", "must be a whole number"),
        ("/score", b'{"customer_ids": [100249.0]}', "customer_ids[0]", "must be a whole number"),
        ("/score", b'{"customer_ids": [true]}', "customer_ids[0]", "must be a whole number"),
        ("/score", b'{"customer_ids": [1], "customer_ids": [2]}', "customer_ids", "appears more than once"),
        ("/score", b'{"customer_ids": null}', "customer_ids", "null is not allowed"),
        ("/score", b'{"customer_ids": [1], "extra": 98765.4321}', "extra", "not a field of this request"),
        ("/score", b'{"rows": [{"features": {"tenure_days": true}}]}', "rows[0].features.tenure_days", ""),
        ("/explain", b'{"row": {"features": {}, "segment": 98765.4321}}', "row.segment", "valid string"),
        (
            "/contact-outcome",
            b'{"event_id": "e", "customer_id": 1, "contacted_at": 1763633700, '
            b'"channel": "phone", "reached": true}',
            "contacted_at",
            "ISO 8601",
        ),
        (
            "/contact-outcome",
            b'{"event_id": "e", "customer_id": 1, "contacted_at": "2026-11-20T10:00:00Z", '
            b'"channel": "phone", "reached": "yes"}',
            "reached",
            "must be true or false",
        ),
        (
            "/contact-outcome",
            b'{"event_id": "e", "customer_id": 1, "contacted_at": "2026-11-20T10:00:00Z", '
            b'"channel": "phone", "reached": false, "offer_accepted": true}',
            "offer_accepted",
            "cannot be true",
        ),
    ],
)
def test_check_body__wrong_types_and_shapes_are_400s_naming_the_field(path, body, field, rule):
    error = _body_error(path, body)
    assert (error.status, error.field) == (400, field)
    assert rule in error.rule and str(error).startswith(f"{field}: ")
    assert SECRET_VALUE not in str(error) and "100249" not in str(error), "errors never echo a value"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"customer_ids": [1,', "body: invalid JSON at line 1"),
        (b'{"customer_ids": [NaN]}', "body: NaN is not a JSON number"),
        (b"\x93\xf0\xd9", "body: not UTF-8 text"),
        (b"{}", "send either customer_ids or rows"),
        (b'{"customer_ids": [1], "rows": [{"features": {}}]}', "send either customer_ids or rows"),
    ],
)
def test_check_body__malformed_bodies_say_what_is_wrong(body, message):
    assert str(_body_error("/score", body)).startswith(message)


def test_check_body__a_valid_request_passes_in_strict_json_mode():
    request = check_body(
        ROUTES["/contact-outcome"],
        b'{"event_id": "crm-1", "customer_id": 100249, "contacted_at": "2026-11-20T10:15:00+01:00", '
        b'"channel": "phone", "reached": true, "offer_accepted": false}',
    )
    assert request.customer_id == 100249 and request.contacted_at.utcoffset().total_seconds() == 3600


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        (b"limit=5&foo=98765.4321", "foo", "unknown query parameter"),
        (b"limit=1&limit=2", "limit", "given more than once"),
        (b"limit=x", "limit", "must be a whole number"),
        (b"tier=top", "tier", "'high', 'medium' or 'low'"),
        (b"as_of=2020-13-01", "as_of", "must be a date"),
        (b"contacted_only=maybe", "contacted_only", "must be true or false"),
    ],
)
def test_check_query__unknown_repeated_and_malformed_parameters_are_refused(query, field, rule):
    with pytest.raises(ApiError) as info:
        check_query(ROUTES["/risk-list"], query)
    assert (info.value.status, info.value.field) == (400, field) and rule in info.value.rule
    assert SECRET_VALUE not in str(info.value)


def test_check_query__routes_without_parameters_take_none():
    assert check_query(ROUTES["/model-info"], b"") is None
    with pytest.raises(ApiError, match="verbose: unknown query parameter"):
        check_query(ROUTES["/model-info"], b"verbose=1")


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("rows", 0, "features", "region", "str"), "rows[0].features.region"),
        (("customer_ids", 3), "customer_ids[3]"),
        (("rows", 1, "features", "100249"), "rows[1].features.(a key that is not a valid name)"),
    ],
)
def test_field_path__pydantic_locations_read_as_request_fields_without_logging_odd_keys(loc, expected):
    assert field_path(loc) == expected
