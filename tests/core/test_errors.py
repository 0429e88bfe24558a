"""Error responses map to the most specific typed error, JSON or not."""

from __future__ import annotations

import json
import pickle

import pytest

import audian_async as au
from audian_async._errors import error_from_response


def body(error: str, message: str, code: int) -> bytes:
    return json.dumps({"error": error, "message": message, "code": code}).encode()


@pytest.mark.parametrize(
    ("status", "error", "cls"),
    [
        (400, "invalid_number", au.InvalidNumberError),
        (400, "bad_request", au.BadRequestError),
        (401, "unauthorized", au.AuthenticationError),
        (403, "unauthorized_caller_id", au.UnauthorizedCallerIdError),
        (403, "forbidden", au.PermissionDeniedError),
        (404, "not_found", au.NotFoundError),
        (413, "payload_too_large", au.PayloadTooLargeError),
        (429, "rate_limited", au.RateLimitedError),
        (500, "internal", au.ServerError),
        (503, "unavailable", au.ServerError),
        (418, "teapot", au.APIStatusError),
    ],
)
def test_reference_shaped_bodies(status: int, error: str, cls: type[au.APIStatusError]) -> None:
    raw = body(error, "something happened", status)
    exc = error_from_response(status, {"x-request-id": "r1"}, raw)
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.error == error
    assert exc.message == "something happened"
    assert "something happened" in str(exc)
    assert exc.body == raw
    assert exc.headers["x-request-id"] == "r1"


def test_reference_error_examples() -> None:
    invalid = error_from_response(
        400, {}, body("invalid_number", "The destination number format is invalid", 400)
    )
    assert isinstance(invalid, au.InvalidNumberError)
    assert isinstance(invalid, au.BadRequestError)
    caller = error_from_response(
        403, {}, body("unauthorized_caller_id", "You are not authorized to use this caller ID", 403)
    )
    assert isinstance(caller, au.UnauthorizedCallerIdError)
    assert isinstance(caller, au.PermissionDeniedError)
    limited = error_from_response(
        429,
        {},
        body("rate_limited", "Too many concurrent calls. Maximum: 100", 429),
        retry_after=2.0,
    )
    assert isinstance(limited, au.RateLimitedError)
    assert limited.retry_after == 2.0
    assert "Maximum: 100" in str(limited)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, au.BadRequestError),
        (401, au.AuthenticationError),
        (403, au.PermissionDeniedError),
        (404, au.NotFoundError),
        (429, au.RateLimitedError),
        (502, au.ServerError),
        (504, au.ServerError),
    ],
)
@pytest.mark.parametrize(
    "raw", [b"", b"<html><body>Bad Gateway</body></html>", b"oops", b"[1]", b"\xff\xfe"]
)
def test_non_json_bodies_map_by_status(status: int, cls: type[Exception], raw: bytes) -> None:
    exc = error_from_response(status, {}, raw)
    assert type(exc) is cls
    assert exc.error is None
    assert exc.body == raw
    assert exc.message


def test_code_that_contradicts_status_falls_back_to_status() -> None:
    exc = error_from_response(500, {}, body("invalid_number", "weird", 500))
    assert type(exc) is au.ServerError


def test_nested_error_object() -> None:
    raw = json.dumps({"error": {"code": "invalid_number", "message": "nope"}}).encode()
    exc = error_from_response(400, {}, raw)
    assert isinstance(exc, au.InvalidNumberError)
    assert exc.message == "nope"


def test_validation_error_paths() -> None:
    err = au.ValidationError("to", "bad")
    assert err.at("calls[2]").field == "calls[2].to"
    assert au.ValidationError("[0]", "x").at("routes").field == "routes[0]"
    assert str(err) == "to: bad"


def test_a_validation_error_survives_pickling() -> None:
    error = au.ValidationError("to", "is not valid", hint="pass default_region=")
    copy = pickle.loads(pickle.dumps(error.at("calls[2]")))
    assert isinstance(copy, au.ValidationError)
    assert (copy.field, copy.message, copy.hint) == (
        "calls[2].to",
        "is not valid; pass default_region=",
        "pass default_region=",
    )
    assert str(copy) == str(error.at("calls[2]"))
