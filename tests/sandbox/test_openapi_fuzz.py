"""Schemathesis fuzzes a live sandbox from its published document.

A sandbox without fault injection runs on a free loopback port. For every operation of the
document, Schemathesis sends the document's examples, its coverage cases (boundaries,
missing and wrong-typed fields, wrong content types, missing or wrong auth, methods the path
does not list) and fuzzed requests, valid and invalid. Every answer must conform to the
document (status, content type, headers, body); no answer may be a 5xx; a request without a
valid API key must be refused; a request the document calls invalid must be refused (4xx);
one it calls valid must be accepted unless a rule JSON Schema cannot express refuses it.

Deterministic and bounded: a fixed seed, a fixed number of fuzzed examples per operation,
no example database; about a minute in all.
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection

from audian_async._validation import normalize_number
from audian_async.sandbox import MAGIC_NUMBERS, OWNED_CALLER_ID, Sandbox, openapi_document

from .contract import DOCUMENT, INEXPRESSIBLE_REFUSALS

SEED = 20240115
API_KEY = "sk_test_contract"
EXAMPLES = 30
"""Fuzzed requests per operation (the coverage phase adds its own cases)."""

_E164 = re.compile(DOCUMENT["components"]["schemas"]["PhoneNumber"]["pattern"])
_DATETIME = re.compile(DOCUMENT["components"]["schemas"]["DateTime"]["pattern"])
_DESTINATIONS = [*sorted(MAGIC_NUMBERS), "+14155552672", "+442071838750"]
_KNOWN: dict[str, list[str]] = {"call_id": [], "recording_id": []}
"""Ids of calls and recordings that exist on the live sandbox (filled by its fixture)."""


def _config(base_url: str) -> SchemathesisConfig:
    """The run's configuration, requests going to ``base_url``."""
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "base-url": base_url,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "auth": {"openapi": {"AuthToken": {"api_key": API_KEY}}},
            "checks": {
                # Replaced by the two checks below, which know what JSON Schema cannot say.
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {
                    "enabled": False,
                    "expected-statuses": ["400", "401", "404", "405", "413", "422"],
                },
            },
        }
    )


# Loaded at import, since Schemathesis makes one test per operation at collection; from the
# file the sandbox serves (test_openapi.py checks they are the same bytes). Requests go to the
# sandbox's origin, given on every call: the configured base URL is a closed loopback port, so
# nothing can reach the real API the document's servers name.
schema = schemathesis.openapi.from_dict(openapi_document(), config=_config("http://127.0.0.1:9"))


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"the sandbox never {what}"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def live_sandbox() -> Iterator[Sandbox]:
    """A sandbox on a free loopback port, without faults (any 5xx is a bug), holding a few
    calls and a recording for the fuzzer's reads to find."""
    sandbox = Sandbox(speed=1000, max_concurrent=1_000_000, seed=SEED, api_key=API_KEY)
    sandbox.start()
    try:
        with httpx.Client(base_url=sandbox.base_url, headers={"X-Auth-Token": API_KEY}) as http:
            for to, extra in [
                ("+14155550100", {"recording": {}}),
                ("+14155550101", {}),
                ("+14155552672", {"scheduled_for": "2099-01-01T00:00:00Z"}),
            ]:
                created = http.post("/calls", json={"from": OWNED_CALLER_ID, "to": to, **extra})
                assert created.status_code == 201, created.text
        _wait(lambda: sandbox.recordings, "made a recording")
        _KNOWN["call_id"] = sorted(sandbox.calls)
        _KNOWN["recording_id"] = sorted(sandbox.recordings)
        yield sandbox
    finally:
        sandbox.stop()


# --- steering the generator towards the interesting paths ------------------------------------


def _pick(value: str, choices: list[str]) -> str | None:
    """A deterministic stand-in for a generated value: a real one, three times in four."""
    digest = zlib.crc32(value.encode())
    return None if digest % 4 == 0 or not choices else choices[digest % len(choices)]


def _with_real_numbers(call: Any) -> None:
    """Swap E.164-shaped numbers a generator made up (almost never assigned, nor owned) for
    numbers that exist, so most requests get past the number checks into the other rules.
    Only valid-shaped values are swapped: a request the document calls invalid stays so."""
    if not isinstance(call, dict):
        return
    for key, choices in (("from", [OWNED_CALLER_ID]), ("to", _DESTINATIONS)):
        value = call.get(key)
        if isinstance(value, str) and _E164.match(value):
            replacement = _pick(value, choices)
            if replacement is not None:
                call[key] = replacement


def _calls_in(case: Case) -> list[Any]:
    """The call objects a create request carries (one, or a batch's items)."""
    if case.path == "/v2/calls":
        return [case.body]
    if case.path == "/v2/calls/batch" and isinstance(case.body, dict):
        calls = case.body.get("calls")
        return calls if isinstance(calls, list) else []
    return []


def _prepare(case: Case) -> None:
    """Real numbers and ids in, and a key of each request's own."""
    for name, known in _KNOWN.items():
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, str) and re.fullmatch(r"(call|rec)_[A-Za-z0-9_]+", value):
            replacement = _pick(value, known)
            if replacement is not None:
                case.path_parameters[name] = replacement  # type: ignore[index]
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and len(key.strip()) <= 255:
        # Generators give most cases the same key (the document's example), so nearly every
        # create would be refused 422: a key of each body's own keeps replays meaningful.
        headers["Idempotency-Key"] = hashlib.blake2b(repr(case.body).encode()).hexdigest()
    for call in _calls_in(case):
        _with_real_numbers(call)


# --- what JSON Schema cannot say, and what the API accepts on purpose ----------------------


def _normalised_number(value: object) -> bool:
    """A number that is not E.164 but that the API normalises (documented: separators)."""
    if not isinstance(value, str) or _E164.match(value):
        return False
    try:
        normalize_number(value, "to")
    except ValueError:
        return False
    return True


def _lenient_datetime(value: object) -> bool:
    """An ISO 8601 form with an offset that ``datetime.fromisoformat`` reads and RFC 3339
    does not allow (no seconds, a space for ``T``, the basic format): read as the instant
    it names, on purpose. Without an offset it is refused (that check stays)."""
    if not isinstance(value, str) or _DATETIME.match(value):
        return False
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _lenient_action(action: Any) -> bool:
    if not isinstance(action, dict):
        return False
    if any(_normalised_number(action.get(k)) for k in ("destination", "caller_id")):
        return True
    routes = action.get("routes")
    return isinstance(routes, list) and any(_lenient_action(route) for route in routes)


def _known_leniency(call: Any) -> bool:
    """Whether a call object the document calls invalid may still be accepted, for one of
    the reasons above."""
    if not isinstance(call, dict):
        return False
    if any(_normalised_number(call.get(k)) for k in ("from", "to")):
        return True
    if _lenient_datetime(call.get("scheduled_for")):
        return True
    control = call.get("call_control")
    for key in ("on_answered", "on_no_answer"):
        actions = control.get(key) if isinstance(control, dict) else None
        if isinstance(actions, list) and any(_lenient_action(a) for a in actions):
            return True
    return False


def rejects_invalid_requests(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Schemathesis' ``negative_data_rejection``, short of the leniencies named above.

    A batch judges each item on its own (an invalid item is a failed entry of a 200 reply,
    as documented): only an invalid envelope must be refused.
    """
    if case.path == "/v2/calls" and _known_leniency(case.body):
        return None
    if case.path == "/v2/calls/batch" and _valid_batch_envelope(case.body):
        return None
    return negative_data_rejection(ctx, response, case)


def _valid_batch_envelope(body: object) -> bool:
    calls = body.get("calls") if isinstance(body, dict) else None
    return isinstance(calls, list) and 1 <= len(calls) <= 1000


def accepts_valid_requests(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A create the document calls valid is accepted, or refused for a documented rule
    that JSON Schema cannot express (named in the reply's message)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or case.method != "POST":
        return None
    if response.status_code < 300:
        return None
    reply = response.json()
    message = reply.get("message", "") if isinstance(reply, dict) else ""
    assert any(reason in message for reason in INEXPRESSIBLE_REFUSALS), (
        f"a valid request was refused: {response.status_code} {reply!r}"
    )
    return None


@pytest.mark.timeout(300)
@schema.parametrize()
def test_the_sandbox_keeps_its_published_contract(case: Case, live_sandbox: Sandbox) -> None:
    _prepare(case)
    case.call_and_validate(
        base_url=live_sandbox.base_url.removesuffix("/v2"),
        additional_checks=[rejects_invalid_requests, accepts_valid_requests],
    )
