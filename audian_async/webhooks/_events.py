"""Typed webhook events and the parser that builds them: pure, no I/O.

A delivery body is a JSON object ``{"id", "timestamp", "event", "data"}``. The ``event``
string alone picks the class (a lookup table, never trial and error), and each class reads
the few ``data`` keys it models. Everything else stays reachable through ``event.data``.
Parsing rejects only a body that is not a JSON object with a string ``event`` and an object
``data``, with :class:`~audian_async.WebhookError` and nothing else. Everything inside is read
leniently: unknown event types, fields, statuses and failure reasons are kept, and a known
field of an unexpected type is coerced when that is lossless (``"486"`` -> 486, ``5`` ->
``"5"`` for an id) or else read as ``None``, its raw value still in ``event.data``. A signed
delivery is never refused over one odd field: a 400 would make the sender give up on it, and
its handlers (a dialer freeing a slot on ``call.failed``) would never hear of the call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import attrs

from .._errors import WebhookError
from .._json import loads
from .._models import _STATUSES, CallStatus, FailureReason, as_reason, as_status

__all__ = [
    "EVENT_TYPES",
    "MAX_EVENT_SIZE",
    "CallAnswered",
    "CallCompleted",
    "CallFailed",
    "CallInitiated",
    "CallRinging",
    "Event",
    "RecordingCompleted",
    "UnknownEvent",
    "parse_event",
]

MAX_EVENT_SIZE = 1024 * 1024
"""The largest body :func:`parse_event` reads by default (1 MiB), like ``WebhookApp``."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_MAX_INT_DIGITS = 18  # any int64; a reason code has three digits
E = TypeVar("E", bound="Event")


def _readonly(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class Event:
    """A webhook event. Subclasses add the fields their type carries.

    * ``id``: the event id (``"evt_..."``), or ``None`` when the body had none;
    * ``type``: the event type, e.g. ``"call.failed"``;
    * ``timestamp``: when the event happened (timezone-aware), or ``None``;
    * ``call_id`` and ``status`` (a :class:`~audian_async.CallStatus`, or a plain ``str`` for a
      status this version does not know) from ``data``, ``None`` when absent;
    * ``data``: a read-only view of the raw ``data`` object, for fields not modelled here.

    Events are frozen; build them directly in tests, e.g. ``CallFailed(call_id="c1",
    reason="busy")``.
    """

    EVENT_TYPE: ClassVar[str] = ""

    id: str | None = None
    timestamp: datetime | None = None
    call_id: str | None = None
    status: CallStatus | str | None = attrs.field(default=None, converter=as_status)
    data: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=_readonly, repr=False, hash=False
    )

    @property
    def type(self) -> str:
        """The event type, e.g. ``"call.failed"``."""
        return self.EVENT_TYPE


@attrs.frozen(kw_only=True)
class CallInitiated(Event):
    """``call.initiated``: the API created the call."""

    EVENT_TYPE: ClassVar[str] = "call.initiated"


@attrs.frozen(kw_only=True)
class CallRinging(Event):
    """``call.ringing``: the destination is ringing."""

    EVENT_TYPE: ClassVar[str] = "call.ringing"


@attrs.frozen(kw_only=True)
class CallAnswered(Event):
    """``call.answered``: the destination answered."""

    EVENT_TYPE: ClassVar[str] = "call.answered"


@attrs.frozen(kw_only=True)
class CallCompleted(Event):
    """``call.completed``: the call ended normally."""

    EVENT_TYPE: ClassVar[str] = "call.completed"


@attrs.frozen(kw_only=True)
class CallFailed(Event):
    """``call.failed``: the call did not connect.

    ``reason`` is a :class:`~audian_async.FailureReason` (``busy``, ``no_answer``,
    ``declined``, ``invalid_number``, ``network_error``) or a plain ``str`` for a reason this
    version does not know; ``reason_code`` the SIP-style code (486 for busy).
    """

    EVENT_TYPE: ClassVar[str] = "call.failed"

    reason: FailureReason | str | None = attrs.field(default=None, converter=as_reason)
    reason_code: int | None = None


@attrs.frozen(kw_only=True)
class RecordingCompleted(Event):
    """``recording.completed``: a call recording is ready to download from ``recording_url``.

    ``recording_url`` is read from ``recording_url``, ``download_url`` or ``url`` (the first
    present); ``duration`` is in seconds.
    """

    EVENT_TYPE: ClassVar[str] = "recording.completed"

    recording_id: str | None = None
    recording_url: str | None = None
    format: str | None = None
    duration: float | None = None


@attrs.frozen(kw_only=True)
class UnknownEvent(Event):
    """An event type this version does not model; ``payload`` is the whole raw body object.

    Handlers can still subscribe to it by its ``type`` (or with ``"*"``).
    """

    # A field here; a class-level constant (through the base's property) everywhere else.
    type: str = ""
    payload: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=_readonly, repr=False, hash=False
    )


# --- parsing ------------------------------------------------------------------------------


def _fail(field: str, expected: str, value: object) -> WebhookError:
    return WebhookError(f"{field}: expected {expected}, got {type(value).__name__}")


def _as_str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)  # an id sent as a number is still that id
        except ValueError:  # over Python's int-to-str digit limit: no id of ours
            return None
    return None


def _str(data: Mapping[str, Any], key: str) -> str | None:
    return _as_str(data.get(key))


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        # ASCII 0-9 only, and short: str.isdigit() also holds for "²" or a 5000-digit run,
        # which int() refuses with a ValueError.
        digits = value.strip()
        if 0 < len(digits) <= _MAX_INT_DIGITS and digits.isascii() and digits.isdecimal():
            return int(digits)
    return None


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number and abs(number) != float("inf") else None
    return None


def _timestamp(value: object) -> datetime | None:
    try:
        if isinstance(value, str):  # "2024-01-15T10:30:00Z"; no offset is taken to be UTC
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)  # tolerate Unix seconds
    except (ValueError, TypeError, OverflowError, OSError):
        pass
    return None  # absent or unreadable: the raw value is still in the payload


# The parser builds events without their __init__: every value is already what the field's
# converter would make of it, and a webhook endpoint builds one per request. attrs' frozen
# classes set their slots the same way.
_new = object.__new__
_set = object.__setattr__


def _base(
    cls: type[E],
    event_id: str | None,
    timestamp: datetime | None,
    data: MappingProxyType[str, Any],
) -> E:
    call_id = data.get("call_id")
    status = data.get("status")
    event: E = _new(cls)
    _set(event, "id", event_id)
    _set(event, "timestamp", timestamp)
    _set(event, "call_id", call_id if type(call_id) is str else _as_str(call_id))
    # What the field's converter (as_status) makes of it, with a plain str looked up inline.
    if type(status) is str:
        status = _STATUSES.get(status, status)
    else:  # a str subclass, or an odd value (None; the raw one is still in data)
        status = as_status(status) if isinstance(status, str) else None
    _set(event, "status", status)
    _set(event, "data", data)
    return event


def _plain(cls: type[E]) -> _Builder:
    # A partial, not a closure: it calls _base without a Python frame of its own.
    return functools.partial(_base, cls)


def _call_failed(
    event_id: str | None, timestamp: datetime | None, data: MappingProxyType[str, Any]
) -> CallFailed:
    event = _base(CallFailed, event_id, timestamp, data)
    reason = data.get("reason")
    _set(event, "reason", as_reason(reason) if isinstance(reason, str) else None)
    _set(event, "reason_code", _int(data, "reason_code"))
    return event


def _recording_completed(
    event_id: str | None, timestamp: datetime | None, data: MappingProxyType[str, Any]
) -> RecordingCompleted:
    url = None
    for key in ("recording_url", "download_url", "url"):
        url = _str(data, key)
        if url is not None:
            break
    event = _base(RecordingCompleted, event_id, timestamp, data)
    _set(event, "recording_id", _str(data, "recording_id"))
    _set(event, "recording_url", url)
    _set(event, "format", _str(data, "format"))
    _set(event, "duration", _number(data, "duration"))
    return event


_Builder = Callable[[str | None, datetime | None, MappingProxyType[str, Any]], Event]
_BUILDERS: dict[str, _Builder] = {
    CallInitiated.EVENT_TYPE: _plain(CallInitiated),
    CallRinging.EVENT_TYPE: _plain(CallRinging),
    CallAnswered.EVENT_TYPE: _plain(CallAnswered),
    CallCompleted.EVENT_TYPE: _plain(CallCompleted),
    CallFailed.EVENT_TYPE: _call_failed,
    RecordingCompleted.EVENT_TYPE: _recording_completed,
}

EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(
    {
        cls.EVENT_TYPE: cls
        for cls in (
            CallInitiated,
            CallRinging,
            CallAnswered,
            CallCompleted,
            CallFailed,
            RecordingCompleted,
        )
    }
)
"""Every event type this version models, by its ``event`` string."""


def _decode(body: bytes | bytearray | memoryview | str, max_size: int) -> object:
    if len(body) > max_size:
        raise WebhookError(f"webhook body is larger than {max_size} bytes")
    try:
        return loads(body if type(body) is bytes or isinstance(body, str) else bytes(body))
    except RecursionError:  # the stdlib decoder on very deep nesting
        raise WebhookError("webhook body is nested too deeply") from None
    except (ValueError, TypeError) as exc:  # orjson and json errors are ValueErrors
        raise WebhookError(f"webhook body is not valid JSON: {exc}") from None


def parse_event(
    body: bytes | bytearray | memoryview | str | Mapping[str, Any],
    *,
    max_size: int = MAX_EVENT_SIZE,
) -> Event:
    """Parse a webhook body into its :class:`Event` subclass.

    ``body`` is the raw request body (bytes or str) or an already decoded mapping. The
    ``event`` value picks the class; an unknown one gives :class:`UnknownEvent`. Raises
    :class:`~audian_async.WebhookError` (and nothing else) when the body is not a JSON object
    with a string ``event`` and an object ``data``, or when it is longer than ``max_size``
    bytes. Fields inside are read leniently (see the module docs): an odd field is ``None``.

    >>> parse_event(b'{"event": "call.failed", "data": {"call_id": "c1", "reason": "busy"}}')
    CallFailed(id=None, timestamp=None, call_id='c1', status=None, reason=<FailureReason.BUSY: 'busy'>, reason_code=None)
    """  # noqa: E501
    if type(body) is bytes:  # the usual case, ahead of the slower ABC check below
        payload: object = _decode(body, max_size)
        owned = True
    elif isinstance(body, Mapping):
        payload = body
        owned = False
    elif isinstance(body, bytes | bytearray | memoryview | str):
        payload = _decode(body, max_size)
        owned = True  # freshly decoded: wrap, don't copy
    else:
        raise WebhookError(f"expected bytes, str or a mapping, got {type(body).__name__}")
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise _fail("body", "a JSON object", payload)
    event_type = payload.get("event")
    if not isinstance(event_type, str):
        raise _fail("event", "a string", event_type)
    raw_data = payload.get("data")
    if type(raw_data) is not dict and not isinstance(raw_data, Mapping):
        raise _fail("data", "an object", raw_data)
    data = MappingProxyType(raw_data if owned and isinstance(raw_data, dict) else dict(raw_data))
    event_id = _as_str(payload.get("id"))
    timestamp = _timestamp(payload.get("timestamp"))
    builder = _BUILDERS.get(event_type)
    if builder is not None:
        return builder(event_id, timestamp, data)
    # An unknown type may use call_id/status differently: keep them only when they fit.
    call_id = data.get("call_id")
    status = data.get("status")
    raw = payload if owned and isinstance(payload, dict) else dict(payload)
    return UnknownEvent(
        type=event_type,
        payload=MappingProxyType(raw),
        id=event_id,
        timestamp=timestamp,
        call_id=call_id if isinstance(call_id, str) else None,
        status=status if isinstance(status, str) else None,
        data=data,
    )
