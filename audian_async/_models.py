"""Request and response models: plain, frozen attrs classes with no I/O and no wire knowledge.

Wire names and formats (``from`` vs ``from_``, ISO 8601 datetimes, flat DTMF routes, omitted
optionals) belong to :mod:`audian_async._convert`; rules on values belong to
:mod:`audian_async._validation`. Sequences given as lists are stored as tuples so that a model,
once built, cannot change under a request in flight.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeAlias, TypeGuard

import attrs

__all__ = [
    "DEFAULT_MAX_DURATION",
    "DEFAULT_RING_TIMEOUT",
    "Action",
    "BatchItem",
    "BatchResult",
    "Call",
    "CallControl",
    "CallRequest",
    "CallStatus",
    "DtmfRoute",
    "FailureReason",
    "GatherDtmf",
    "Hangup",
    "PlayAudio",
    "RecordAudio",
    "Recording",
    "Transfer",
    "as_reason",
    "as_status",
    "is_terminal",
]

DEFAULT_RING_TIMEOUT = 30
"""Seconds the API lets a call ring when a request sets no ``timeout``."""
DEFAULT_MAX_DURATION = 3600
"""Seconds the API lets a call last when a request sets no ``max_duration``."""


class CallStatus(enum.StrEnum):
    """A call's lifecycle state. Values the API adds later arrive as plain ``str``."""

    SCHEDULED = "scheduled"
    INITIATED = "initiated"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True for the states a call never leaves (completed, failed)."""
        return self in (CallStatus.COMPLETED, CallStatus.FAILED)


class FailureReason(enum.StrEnum):
    """Why a call failed, with the SIP-style code the API pairs it with."""

    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    INVALID_NUMBER = "invalid_number"
    BUSY = "busy"
    NETWORK_ERROR = "network_error"

    @property
    def code(self) -> int:
        """The reference's ``reason_code`` for this reason (``busy`` -> 486)."""
        return _REASON_CODES[self]


# A dict lookup instead of CallStatus(value): no exception for a value newer than this version.
_STATUSES: Mapping[str, CallStatus] = {s.value: s for s in CallStatus}
_REASONS: Mapping[str, FailureReason] = {r.value: r for r in FailureReason}


def as_status(value: CallStatus | str | None) -> CallStatus | str | None:
    """``value`` as a :class:`CallStatus` when this version knows it, else unchanged."""
    if isinstance(value, str) and not isinstance(value, CallStatus):
        return _STATUSES.get(value, value)
    return value


def as_reason(value: FailureReason | str | None) -> FailureReason | str | None:
    """``value`` as a :class:`FailureReason` when this version knows it, else unchanged."""
    if isinstance(value, str) and not isinstance(value, FailureReason):
        return _REASONS.get(value, value)
    return value


def is_terminal(status: CallStatus | str | None) -> TypeGuard[CallStatus]:
    """True for a status a call never leaves; a status this version does not know is not."""
    return isinstance(status, CallStatus) and status.is_terminal


_REASON_CODES = {
    FailureReason.NO_ANSWER: 408,
    FailureReason.DECLINED: 603,
    FailureReason.INVALID_NUMBER: 404,
    FailureReason.BUSY: 486,
    FailureReason.NETWORK_ERROR: 503,
}


def _tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


def _optional_dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


# --- call control actions ---------------------------------------------------------------


@attrs.frozen
class PlayAudio:
    """Play an audio file (``audio_url``) or speak ``message`` with text-to-speech.

    At least one of ``message`` and ``audio_url`` is required; ``voice`` is ``"male"`` or
    ``"female"`` and ``rate`` a speech-rate multiplier between 0.5 and 2.0.
    """

    message: str | None = None
    audio_url: str | None = None
    language: str | None = None
    voice: Literal["male", "female"] | None = None
    rate: float | None = None


@attrs.frozen
class RecordAudio:
    """Record the call from this point, for at most ``max_duration`` seconds."""

    max_duration: int | None = None
    beep_start: bool | None = None


@attrs.frozen
class Transfer:
    """Transfer the call to ``destination``, optionally presenting ``caller_id``."""

    destination: str
    caller_id: str | None = None


@attrs.frozen
class Hangup:
    """End the call."""


@attrs.frozen
class DtmfRoute:
    """What to do when the caller presses ``digit`` during a :class:`GatherDtmf`.

    On the wire a route is flat: ``{"digit": "1", "action": "transfer", "destination": ...}``.
    """

    digit: str
    action: Action


@attrs.frozen
class GatherDtmf:
    """Collect up to ``max_digits`` key presses and run the matching route's action."""

    max_digits: int | None = None
    timeout: int | None = None
    finish_key: str | None = None
    routes: tuple[DtmfRoute, ...] = attrs.field(default=(), converter=_tuple)


Action: TypeAlias = PlayAudio | RecordAudio | Transfer | Hangup | GatherDtmf
"""Any call control action."""


@attrs.frozen
class CallControl:
    """Actions run in order when the call is answered, or when nobody answers."""

    on_answered: tuple[Action, ...] = attrs.field(default=(), converter=_tuple)
    on_no_answer: tuple[Action, ...] = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class Recording:
    """Recording settings: ``format`` wav/mp3/opus, ``participant`` all/caller/callee."""

    enabled: bool = True
    format: Literal["wav", "mp3", "opus"] | None = None
    participant: Literal["all", "caller", "callee"] | None = None
    bitrate: int | None = None


# --- requests and responses ---------------------------------------------------------------


@attrs.frozen
class CallRequest:
    """Everything needed to place one outbound call.

    ``from_`` is a caller ID the account owns and ``to`` the destination, both E.164 (or national
    numbers when the client has a ``default_region``); ``from_`` may be ``None`` only for a
    :class:`~audian_async.Dialer` with ``caller_ids=``, which picks one per attempt. Unset
    optionals are not sent, so the API's defaults apply (``timeout``
    :data:`DEFAULT_RING_TIMEOUT` = 30 s, ``max_duration`` :data:`DEFAULT_MAX_DURATION` =
    3600 s: see :attr:`ring_timeout`, :attr:`duration_limit`).
    """

    from_: str | None
    to: str
    call_type: str | None = None
    timeout: int | None = None
    max_duration: int | None = None
    tags: dict[str, Any] | None = attrs.field(default=None, converter=_optional_dict)
    custom_fields: dict[str, Any] | None = attrs.field(default=None, converter=_optional_dict)
    recording: Recording | None = None
    call_control: CallControl | None = None
    scheduled_for: datetime | None = None

    @property
    def ring_timeout(self) -> int:
        """Seconds the call may ring: ``timeout``, or the API's default."""
        return DEFAULT_RING_TIMEOUT if self.timeout is None else self.timeout

    @property
    def duration_limit(self) -> int:
        """Seconds the call may last: ``max_duration``, or the API's default."""
        return DEFAULT_MAX_DURATION if self.max_duration is None else self.max_duration


@attrs.frozen
class Call:
    """A call as the API reports it. Fields the response did not carry are ``None``.

    ``status`` is a :class:`CallStatus` for known states and a plain ``str`` for states this
    version does not know. ``reason``/``reason_code`` are set for failed calls when the API
    reports them.
    """

    call_id: str
    call_uuid: str | None = None
    from_: str | None = None
    to: str | None = None
    status: CallStatus | str | None = None
    created_at: datetime | None = None
    duration: int | None = None
    initiated_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    scheduled_for: datetime | None = None
    timeout: int | None = None
    max_duration: int | None = None
    tags: dict[str, Any] | None = None
    custom_fields: dict[str, Any] | None = None
    reason: FailureReason | str | None = None
    reason_code: int | None = None


@attrs.frozen
class BatchItem:
    """One entry of a batch reply: a queued call, or the error that kept it from being queued."""

    call_id: str | None = None
    status: CallStatus | str | None = None
    to: str | None = None
    error: str | None = None
    message: str | None = None
    code: int | None = None

    @property
    def ok(self) -> bool:
        """True when the API accepted this entry."""
        return self.error is None and self.call_id is not None


@attrs.frozen
class BatchResult:
    """The reply to a batch create; ``calls`` is aligned with the requests sent."""

    batch_id: str | None = None
    total: int = 0
    queued: int = 0
    failed: int = 0
    calls: tuple[BatchItem, ...] = attrs.field(default=(), converter=_tuple)
