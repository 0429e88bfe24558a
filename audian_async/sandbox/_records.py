"""What the sandbox lets a test inspect: immutable records of calls, events and recordings."""

from __future__ import annotations

from typing import Any

import attrs

from .._models import Call, CallStatus, FailureReason

__all__ = ["SandboxCall", "SandboxEvent", "SandboxRecording"]


@attrs.frozen
class SandboxEvent:
    """One webhook event the sandbox emitted, as sent (``data`` is the envelope's ``data``)."""

    id: str
    type: str
    timestamp: str
    call_id: str
    data: dict[str, Any]

    def envelope(self) -> dict[str, Any]:
        """The webhook body: ``{"id", "timestamp", "event", "data"}`` as in the reference."""
        return {"id": self.id, "timestamp": self.timestamp, "event": self.type, "data": self.data}


@attrs.frozen
class SandboxRecording:
    """A simulated recording, downloadable at ``url`` while the sandbox runs."""

    recording_id: str
    call_id: str
    url: str
    format: str
    requested_format: str | None
    duration: int
    """Simulated seconds recorded, as the ``recording.completed`` event reports them. The
    downloadable WAV is a tone of that length capped at ``MAX_AUDIO_SECONDS`` (5 s), so a
    long recording stays a small download: do not expect its frames to match ``duration``."""


@attrs.frozen
class SandboxCall:
    """An inspection snapshot of one call: the API's view plus the simulation's history.

    ``call`` is the call exactly as ``GET /v2/calls/{id}`` would report it at that instant.
    ``events`` are the webhook events emitted so far, in order; ``actions`` the call
    control steps the simulation ran (``"play_audio"``, ``"gather_dtmf:1"``,
    ``"transfer:+14155552673"``, ``"hangup"``, ``"max_duration"``...).
    """

    call: Call
    events: tuple[SandboxEvent, ...]
    actions: tuple[str, ...]
    attempt: int
    recordings: tuple[str, ...]
    ended_by: str | None

    @property
    def call_id(self) -> str:
        """The call's id."""
        return self.call.call_id

    @property
    def status(self) -> CallStatus | str | None:
        """The call's current status."""
        return self.call.status

    @property
    def to(self) -> str | None:
        """The destination number (E.164)."""
        return self.call.to

    @property
    def reason(self) -> FailureReason | str | None:
        """Why the call failed, if it did."""
        return self.call.reason

    @property
    def reason_code(self) -> int | None:
        """The failure's code (486 for busy...), if it failed."""
        return self.call.reason_code

    @property
    def event_types(self) -> tuple[str, ...]:
        """Just the event types, e.g. ``("call.initiated", "call.ringing", ...)``."""
        return tuple(event.type for event in self.events)
