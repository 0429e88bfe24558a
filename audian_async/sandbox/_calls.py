"""One simulated call: its mutable record and the two views of it the sandbox gives out.

Each call keeps its own simulated clock anchored at its creation: ``created_at`` is the wall
clock, and every later timestamp of that call is ``created_at`` plus the elapsed real time
times ``speed``. A call's timestamps are therefore consistent with its ``duration`` and its
``timeout``, at any speed.

The API's view (``GET /v2/calls/{id}``, the reply of a create) and the inspection snapshot
are both made from one :class:`~audian_async.Call` built by :func:`call_model`; the wire JSON
is that model through the package's one converter, the same one the client decodes it with.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .._convert import converter
from .._models import Call, CallRequest, CallStatus, FailureReason
from ._control import scripted_digits
from ._magic import outcome_for
from ._records import SandboxCall, SandboxEvent

__all__ = ["LIVE", "CallState", "call_model", "call_wire", "snapshot"]

LIVE = frozenset({CallStatus.INITIATED, CallStatus.RINGING, CallStatus.ANSWERED})
"""The statuses of a call that holds a line."""

_unstructure_call = converter.get_unstructure_hook(Call)


class CallState:
    """The mutable record of one call (only the sandbox's loop thread touches it)."""

    __slots__ = (
        "actions",
        "answered",
        "attempt",
        "call_id",
        "call_uuid",
        "created_at",
        "created_mono",
        "digits",
        "ended",
        "ended_by",
        "events",
        "initiated",
        "outcome",
        "planned_recordings",
        "reason",
        "recordings",
        "request",
        "status",
    )

    def __init__(
        self,
        request: CallRequest,
        attempt: int,
        now: float,
        wall: datetime,
        call_id: str,
        call_uuid: str,
    ) -> None:
        self.call_id = call_id
        self.call_uuid = call_uuid
        self.request = request
        self.attempt = attempt
        self.outcome = outcome_for(request.to, attempt)
        self.created_mono = now
        self.created_at = wall.replace(microsecond=0)
        self.status: CallStatus = CallStatus.INITIATED
        # Monotonic instants of the call's milestones (None until reached).
        self.initiated: float | None = None
        self.answered: float | None = None
        self.ended: float | None = None
        self.reason: FailureReason | None = None
        self.ended_by: str | None = None
        self.events: list[SandboxEvent] = []
        self.actions: list[str] = []
        self.recordings: list[str] = []
        self.planned_recordings = 0  # recordings scheduled so far, numbering their ids
        self.digits = scripted_digits(request)

    def at(self, mono: float, speed: float) -> datetime:
        """The call's simulated wall-clock time at monotonic time ``mono``."""
        return self.created_at + timedelta(seconds=(mono - self.created_mono) * speed)

    def duration(self, now: float, speed: float) -> int:
        """Talk time in simulated seconds: from answer to the end (or to ``now``)."""
        if self.answered is None:
            return 0
        end = self.ended if self.ended is not None else now
        return round((end - self.answered) * speed)


def call_model(call: CallState, now: float, speed: float) -> Call:
    """The call as the API reports it at monotonic time ``now``.

    ``duration`` appears once the call was initiated; empty ``tags`` / ``custom_fields`` are
    absent, as the API leaves them out.
    """
    request = call.request
    initiated = call.initiated
    return Call(
        call_id=call.call_id,
        call_uuid=call.call_uuid,
        from_=request.from_,
        to=request.to,
        status=call.status,
        created_at=call.created_at,
        duration=None if initiated is None else call.duration(now, speed),
        initiated_at=None if initiated is None else call.at(initiated, speed),
        answered_at=None if call.answered is None else call.at(call.answered, speed),
        ended_at=None if call.ended is None else call.at(call.ended, speed),
        scheduled_for=request.scheduled_for,
        timeout=request.timeout,
        max_duration=request.max_duration,
        tags=request.tags or None,
        custom_fields=request.custom_fields or None,
        reason=call.reason,
        reason_code=None if call.reason is None else call.reason.code,
    )


def call_wire(model: Call) -> dict[str, Any]:
    """The JSON object of ``model`` on the wire (``"from"``, ISO 8601 ``Z``, no nulls)."""
    wire: dict[str, Any] = _unstructure_call(model)
    return wire


def snapshot(call: CallState, model: Call) -> SandboxCall:
    """An immutable copy of ``call`` for inspection from any thread."""
    return SandboxCall(
        call=model,
        events=tuple(call.events),
        actions=tuple(call.actions),
        attempt=call.attempt,
        recordings=tuple(call.recordings),
        ended_by=call.ended_by,
    )
