"""Value rules on requests, checked before anything is sent.

:func:`validate_call_request` returns a normalised copy of a request (numbers in E.164) or
raises :class:`~audian_async.ValidationError` naming the offending field by its path, e.g.
``call_control.on_answered[1].routes[0].digit``. The sandbox runs the same rules server-side.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, final

import attrs
import phonenumbers

from ._errors import ValidationError
from ._models import (
    Action,
    CallControl,
    CallRequest,
    DtmfRoute,
    GatherDtmf,
    Hangup,
    PlayAudio,
    RecordAudio,
    Recording,
    Transfer,
)

__all__ = ["CheckedCallRequest", "normalize_number", "validate_batch", "validate_call_request"]

_DTMF_KEYS = frozenset("0123456789*#")
_VOICES = frozenset({"male", "female"})
_FORMATS = frozenset({"wav", "mp3", "opus"})
_PARTICIPANTS = frozenset({"all", "caller", "callee"})
MIN_RATE, MAX_RATE = 0.5, 2.0
MAX_BATCH = 1000
MAX_INT = 2**31 - 1
"""The largest value of an integer field (timeouts, durations, digits, bitrate)."""
MAX_JSON_DEPTH = 32
"""How deeply ``tags`` and ``custom_fields`` may nest."""
_MIN_JSON_INT, _MAX_JSON_INT = -(2**63), 2**64 - 1


_RECENT_PARSED_MAX = 256
_recent_parsed: dict[str, tuple[phonenumbers.PhoneNumber, int]] = {}
"""The last numbers parsed by validation, by E.164, with their phonenumbers type: a caller
that needs them right after validating (a calling window's time zones) does not parse and
classify the number again."""


@functools.lru_cache(maxsize=8192)
def _normalize_cached(raw: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    # The type is what is_valid_number() computes (with the same metadata): UNKNOWN for an
    # invalid number. Kept, since a calling window needs it too.
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if len(_recent_parsed) >= _RECENT_PARSED_MAX:
        del _recent_parsed[next(iter(_recent_parsed))]  # the oldest
    _recent_parsed[e164] = (parsed, kind)
    return e164


def parsed_number(e164: str) -> tuple[phonenumbers.PhoneNumber, int]:
    """The phonenumbers object of an E.164 number and its type (``PhoneNumberType``),
    reusing validation's when recent. Raises ``phonenumbers.NumberParseException`` for a
    string that is not a number."""
    recent = _recent_parsed.get(e164)
    if recent is not None:
        return recent
    parsed = phonenumbers.parse(e164)
    return parsed, phonenumbers.number_type(parsed)


def normalize_number(value: object, field: str, default_region: str | None = None) -> str:
    """Return ``value`` as an E.164 number, or raise :class:`ValidationError` for ``field``.

    Without ``default_region`` only international numbers (``+14155552671``) are accepted;
    with it (``"US"``) national forms such as ``(415) 555-2671`` are too.
    """
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a phone number string, got {type(value).__name__}")
    raw = value.strip()
    if not raw:
        raise ValidationError(field, "must not be empty")
    if len(raw) > 64:
        raise ValidationError(field, "is too long to be a phone number")
    if not raw.startswith("+") and default_region is None:
        raise ValidationError(
            field,
            f"{value!r} is not in E.164 format (+14155552671)",
            hint="pass default_region= to accept national numbers",
        )
    normalized = _normalize_cached(raw, default_region)
    if normalized is None:
        raise ValidationError(field, f"{value!r} is not a valid phone number")
    return normalized


def _positive_int(value: object, field: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
    if value <= 0:
        raise ValidationError(field, f"must be positive, got {value}")
    if value > MAX_INT:
        raise ValidationError(field, f"must be at most {MAX_INT}, got {value}")


def _one_of(value: object, allowed: frozenset[str], field: str) -> None:
    if value is not None and value not in allowed:
        options = ", ".join(sorted(allowed))
        raise ValidationError(field, f"must be one of {options}; got {value!r}")


def _optional_str(value: object, field: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")


def _dtmf(value: object, field: str, *, single: bool) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "must be a DTMF key (0-9, * or #)")
    if single and len(value) != 1:
        raise ValidationError(field, f"must be a single DTMF key, got {value!r}")
    bad = [ch for ch in value if ch not in _DTMF_KEYS]
    if bad:
        raise ValidationError(field, f"{bad[0]!r} is not a DTMF key (0-9, * or #)")


def _action(action: object, field: str, region: str | None) -> Action:
    if isinstance(action, PlayAudio):
        if not action.message and not action.audio_url:
            raise ValidationError(field, "play_audio needs a message or an audio_url")
        _optional_str(action.message, f"{field}.message")
        _optional_str(action.audio_url, f"{field}.audio_url")
        _optional_str(action.language, f"{field}.language")
        _one_of(action.voice, _VOICES, f"{field}.voice")
        if action.rate is not None:
            rate = action.rate
            if isinstance(rate, bool) or not isinstance(rate, int | float):
                raise ValidationError(f"{field}.rate", "must be a number")
            if not MIN_RATE <= rate <= MAX_RATE:
                raise ValidationError(
                    f"{field}.rate", f"must be between {MIN_RATE} and {MAX_RATE}; got {rate}"
                )
        return action
    if isinstance(action, RecordAudio):
        _positive_int(action.max_duration, f"{field}.max_duration")
        if action.beep_start is not None and not isinstance(action.beep_start, bool):
            raise ValidationError(f"{field}.beep_start", "must be a boolean")
        return action
    if isinstance(action, Transfer):
        destination = normalize_number(action.destination, f"{field}.destination", region)
        caller_id = (
            None
            if action.caller_id is None
            else normalize_number(action.caller_id, f"{field}.caller_id", region)
        )
        if destination == action.destination and caller_id == action.caller_id:
            return action
        return Transfer(destination=destination, caller_id=caller_id)
    if isinstance(action, Hangup):
        return action
    if isinstance(action, GatherDtmf):
        _positive_int(action.max_digits, f"{field}.max_digits")
        _positive_int(action.timeout, f"{field}.timeout")
        if action.finish_key is not None:
            _dtmf(action.finish_key, f"{field}.finish_key", single=True)
        routes = []
        seen: set[str] = set()
        for i, route in enumerate(action.routes):
            where = f"{field}.routes[{i}]"
            if not isinstance(route, DtmfRoute):
                raise ValidationError(where, "must be a DtmfRoute")
            _dtmf(route.digit, f"{where}.digit", single=False)
            if route.digit in seen:
                raise ValidationError(f"{where}.digit", f"route {route.digit!r} is defined twice")
            seen.add(route.digit)
            if isinstance(route.action, GatherDtmf):
                raise ValidationError(f"{where}.action", "a route cannot gather DTMF again")
            checked = _action(route.action, where, region)
            routes.append(route if checked is route.action else DtmfRoute(route.digit, checked))
        if all(new is old for new, old in zip(routes, action.routes, strict=True)):
            return action
        return attrs.evolve(action, routes=routes)
    raise ValidationError(field, f"is not a call control action: {type(action).__name__}")


def _actions(actions: Sequence[object], field: str, region: str | None) -> tuple[Action, ...]:
    return tuple(_action(a, f"{field}[{i}]", region) for i, a in enumerate(actions))


def _call_control(control: object, region: str | None) -> CallControl:
    if not isinstance(control, CallControl):
        raise ValidationError("call_control", "must be a CallControl")
    on_answered = _actions(control.on_answered, "call_control.on_answered", region)
    on_no_answer = _actions(control.on_no_answer, "call_control.on_no_answer", region)
    if on_answered == control.on_answered and on_no_answer == control.on_no_answer:
        return control
    return CallControl(on_answered=on_answered, on_no_answer=on_no_answer)


def _recording(recording: object) -> None:
    if not isinstance(recording, Recording):
        raise ValidationError("recording", "must be a Recording")
    if not isinstance(recording.enabled, bool):
        raise ValidationError("recording.enabled", "must be a boolean")
    _one_of(recording.format, _FORMATS, "recording.format")
    _one_of(recording.participant, _PARTICIPANTS, "recording.participant")
    _positive_int(recording.bitrate, "recording.bitrate")


def _json_value(value: object, field: str, depth: int) -> None:
    """Reject what JSON (or a JSON encoder's limits) cannot carry, naming where it sits."""
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if not _MIN_JSON_INT <= value <= _MAX_JSON_INT:
            raise ValidationError(field, "integers must fit in 64 bits")
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(field, f"{value} is not a JSON number")
        return
    if depth >= MAX_JSON_DEPTH:
        raise ValidationError(field, f"is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, f"keys must be strings, got {key!r}")
            _json_value(item, f"{field}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _json_value(item, f"{field}[{i}]", depth + 1)
        return
    raise ValidationError(field, f"{type(value).__name__} is not a JSON value")


def _writable_in_utc(when: datetime) -> None:
    # The wire carries UTC: a value near datetime's ends (0001-01-01T00:00+14:00) is valid
    # in its own zone but has no UTC form, and would only fail while the body is encoded.
    try:
        when.astimezone(UTC)
    except OverflowError:
        raise ValidationError(
            "scheduled_for",
            f"{when.isoformat()} is outside the range UTC can express (0001-01-01 to 9999-12-31)",
        ) from None


def _json_object(value: object, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a mapping")
    _json_value(value, field, 0)


@final
class CheckedCallRequest:
    """A :class:`~audian_async.CallRequest` that passed every client-side rule.

    Made only by :func:`validate_call_request`; ``request`` is the normalised request
    (numbers in E.164). ``calls.create``, ``calls.create_batch`` and the dialer accept it in
    place of a ``CallRequest`` and skip validating it again, which matters when many
    requests are checked up front (a campaign) or one is sent many times.
    """

    __slots__ = ("request",)
    request: CallRequest

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("CheckedCallRequest is made by validate_call_request(request)")

    @classmethod
    def _made(cls, request: CallRequest) -> CheckedCallRequest:
        self = object.__new__(cls)
        object.__setattr__(self, "request", request)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CheckedCallRequest is immutable")

    def __repr__(self) -> str:
        return f"CheckedCallRequest({self.request!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckedCallRequest):
            return NotImplemented
        return self.request == other.request

    __hash__ = None  # type: ignore[assignment]  # like CallRequest, whose tags are dicts

    def with_tags(self, tags: Mapping[str, Any]) -> CheckedCallRequest:
        """The same checked request with ``tags`` merged over its own (only the new tags
        are checked)::

            first = checked.with_tags({"attempt": "1"})
        """
        if not isinstance(tags, Mapping):
            raise ValidationError("tags", "must be a mapping")
        added = dict(tags)
        # Plain strings (a dialer's attempt tags) are JSON as they are: skip the walk.
        if not all(type(k) is str and type(v) is str for k, v in added.items()):
            _json_object(added, "tags")
        merged = {**(self.request.tags or {}), **added}
        return CheckedCallRequest._made(attrs.evolve(self.request, tags=merged))

    def with_caller_id(self, caller_id: str) -> CheckedCallRequest:
        """The same checked request from ``caller_id`` (already E.164: a dialer's pool
        checked it), for a request that left ``from_`` to the pool."""
        return CheckedCallRequest._made(attrs.evolve(self.request, from_=caller_id))


def validate_call_request(
    request: CallRequest | CheckedCallRequest,
    default_region: str | None = None,
    *,
    pooled_caller_id: bool = False,
) -> CheckedCallRequest:
    """Check every rule on ``request``; return it, numbers normalised to E.164, as a
    :class:`CheckedCallRequest` that ``calls.create`` and the dialer take without checking
    it again.

    ``default_region`` (``"US"``) lets national numbers in, as the client's option does; a
    checked request holds E.164 numbers only, so it is valid for any client. With
    ``pooled_caller_id`` (a dialer with a caller-ID pool), ``from_`` may be None: the
    dialer fills it in per attempt. Raises
    :class:`~audian_async.ValidationError` naming the offending field::

        checked = [au.validate_call_request(r) for r in requests]   # fail fast, once
        for request in checked:
            await client.calls.create(request)                      # no second check
    """
    if isinstance(request, CheckedCallRequest):
        checked = request
    else:
        checked = CheckedCallRequest._made(_checked(request, default_region, pooled_caller_id))
    if checked.request.from_ is None and not pooled_caller_id:
        raise ValidationError("from", "is required (a Dialer with caller_ids= picks one)")
    return checked


def _checked(request: CallRequest, default_region: str | None, pooled: bool) -> CallRequest:
    if not isinstance(request, CallRequest):
        raise ValidationError("", f"expected a CallRequest, got {type(request).__name__}")
    changes: dict[str, Any] = {}
    from_ = request.from_
    if from_ is not None or not pooled:
        from_ = normalize_number(from_, "from", default_region)
    to = normalize_number(request.to, "to", default_region)
    if from_ != request.from_:
        changes["from_"] = from_
    if to != request.to:
        changes["to"] = to
    if request.call_type is not None and request.call_type != "outbound":
        raise ValidationError("call_type", f"must be 'outbound'; got {request.call_type!r}")
    _positive_int(request.timeout, "timeout")
    _positive_int(request.max_duration, "max_duration")
    _json_object(request.tags, "tags")
    _json_object(request.custom_fields, "custom_fields")
    if request.recording is not None:
        _recording(request.recording)
    if request.call_control is not None:
        control = _call_control(request.call_control, default_region)
        if control is not request.call_control:
            changes["call_control"] = control
    if request.scheduled_for is not None:
        when = request.scheduled_for
        if not hasattr(when, "tzinfo") or when.tzinfo is None or when.utcoffset() is None:
            raise ValidationError(
                "scheduled_for", "must be a timezone-aware datetime (e.g. tzinfo=UTC)"
            )
        _writable_in_utc(when)
    return attrs.evolve(request, **changes) if changes else request


def validate_batch(
    requests: Sequence[CallRequest | CheckedCallRequest], default_region: str | None = None
) -> list[CallRequest]:
    """Validate each request of a batch; errors name the index (``calls[3].to``)."""
    if not requests:
        raise ValidationError("calls", "a batch needs at least one call")
    if len(requests) > MAX_BATCH:
        raise ValidationError("calls", f"a batch holds at most {MAX_BATCH} calls")
    checked = []
    for i, request in enumerate(requests):
        try:
            checked.append(validate_call_request(request, default_region).request)
        except ValidationError as exc:
            raise exc.at(f"calls[{i}]") from None
    return checked
