"""The simulated telephone network: call state, the lifecycle timeline and call control.

Everything here is synchronous and runs on the sandbox's own event loop thread. Time moves
through one heap of timers (:class:`Scheduler`), not one task per call, so thousands of live
calls cost a heap entry each. All simulated durations are divided by ``speed``.

Each call keeps its own simulated clock anchored at its creation: ``created_at`` is the wall
clock, and every later timestamp of that call is ``created_at`` plus the elapsed real time
times ``speed``. A call's timestamps are therefore consistent with its ``duration`` and its
``timeout``, at any speed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

import attrs

from .._convert import format_datetime
from .._models import (
    Action,
    Call,
    CallRequest,
    CallStatus,
    FailureReason,
    GatherDtmf,
    Hangup,
    PlayAudio,
    RecordAudio,
    Transfer,
)
from .._timers import TimerHeap
from ._chance import Chance
from ._magic import MAGIC_NUMBERS, PRESSES_ONE, Outcome, outcome_for

__all__ = [
    "DIGITS_TAG",
    "TALK_SECONDS_TAG",
    "Engine",
    "SandboxCall",
    "SandboxEvent",
    "SandboxRecording",
    "Scheduler",
]

DIGITS_TAG = "sandbox_digits"
"""Tag whose string value scripts the keys the callee presses (``{"sandbox_digits": "2"}``)."""
TALK_SECONDS_TAG = "sandbox_talk_seconds"
"""Tag: how long (simulated seconds) the callee stays on the line after the actions end."""

logger = logging.getLogger("audian_async.sandbox")

DEFAULT_TIMEOUT = 30
DEFAULT_MAX_DURATION = 3600
# The simulated network, in simulated seconds.
RING_AFTER = 1.0  # initiated -> ringing
ANSWER_AFTER = 3.0  # initiated -> answered (so a timeout under 3 s is a no_answer)
DECLINE_AFTER = 2.0  # initiated -> declined
FAST_FAIL_AFTER = {
    Outcome.BUSY: 1.0,
    Outcome.INVALID_NUMBER: 0.5,
    Outcome.NETWORK_ERROR: 1.5,
}
TALK_SECONDS = 5.0  # the callee stays this long after the last action
SPEECH_CHARS_PER_SECOND = 15.0  # text-to-speech pace at rate 1.0
AUDIO_URL_SECONDS = 3.0  # a played file, whose real length the sandbox cannot know
DTMF_TIMEOUT = 5.0  # gather_dtmf without its own timeout
KEYPRESS_SECONDS = 1.0
TRANSFER_SECONDS = 10.0  # the transferred leg talks this long before the call completes
RECORD_SECONDS = 60.0  # record_audio without max_duration

_FAILURE_REASON = {
    Outcome.BUSY: FailureReason.BUSY,
    Outcome.NO_ANSWER: FailureReason.NO_ANSWER,
    Outcome.DECLINED: FailureReason.DECLINED,
    Outcome.INVALID_NUMBER: FailureReason.INVALID_NUMBER,
    Outcome.NETWORK_ERROR: FailureReason.NETWORK_ERROR,
}
_LIVE = frozenset({CallStatus.INITIATED, CallStatus.RINGING, CallStatus.ANSWERED})


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

    ``events`` are the webhook event types emitted so far, in order; ``actions`` the call
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


class Scheduler:
    """Callbacks on the shared :class:`~audian_async._timers.TimerHeap`, run by one task
    (see ``run_due``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._timers: TimerHeap[Callable[[], None]] = TimerHeap()
        self._current: float | None = None
        self.on_earlier: Callable[[], None] = lambda: None
        """Called when a new timer is due before every other one (wakes the runner)."""

    def call_at(self, due: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at monotonic time ``due``."""
        if self._timers.push(due, callback):
            self.on_earlier()

    def now(self) -> float:
        """Inside a timer callback, the time it was due; else the clock.

        Timers late by a few milliseconds (a busy loop) then shift nothing: a call's
        timestamps follow its planned timeline exactly, whatever the load.
        """
        return self._current if self._current is not None else self.clock()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[float]:
        """Make :meth:`now` one instant for the duration of a step (e.g. creating a call)."""
        outer = self._current
        if outer is None:
            self._current = self.clock()
        try:
            yield self.now()
        finally:
            self._current = outer

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` ``delay`` real seconds after :meth:`now`."""
        self.call_at(self.now() + delay, callback)

    def run_due(self) -> float | None:
        """Run every timer that is due; return when the next one is, or None."""
        try:
            for due, callback in self._timers.pop_due(self.clock()):
                self._current = due
                try:
                    callback()
                except Exception:
                    # One call's bug must not stop the clock of every other call.
                    logger.exception("sandbox timer %r failed", callback)
        finally:
            self._current = None
        return self._timers.next_due

    def __len__(self) -> int:
        return len(self._timers)


def _talk_seconds(request: CallRequest) -> float:
    """How long the callee speaks: the ``sandbox_talk_seconds`` tag when it is a usable number."""
    talk = (request.tags or {}).get(TALK_SECONDS_TAG, TALK_SECONDS)
    if isinstance(talk, bool) or not isinstance(talk, int | float) or talk < 0:
        return TALK_SECONDS
    return float(talk)


class _CallState:
    """The mutable record of one call (only the loop thread touches it)."""

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
        self.initiated: float | None = None
        self.answered: float | None = None
        self.ended: float | None = None
        self.reason: FailureReason | None = None
        self.ended_by: str | None = None
        self.events: list[SandboxEvent] = []
        self.actions: list[str] = []
        self.recordings: list[str] = []
        self.planned_recordings = 0  # recordings scheduled so far, numbering their ids
        digits = (request.tags or {}).get(DIGITS_TAG)
        if isinstance(digits, str):
            self.digits = digits
        elif request.to == PRESSES_ONE:
            self.digits = "1"
        else:
            self.digits = ""


class Engine:
    """The simulated network behind the API: creates calls and plays their lifecycle.

    ``emit`` receives every :class:`SandboxEvent` (the webhook deliverer subscribes to it);
    ``recording_url`` builds the download URL of a recording id. ``max_concurrent`` bounds the
    live calls (initiated, ringing, answered); scheduled calls count only once they start,
    and at most ``max_scheduled`` of them wait at once.

    A scheduled call that falls due while ``max_concurrent`` calls are live waits (still
    ``scheduled``) and starts as soon as a line is free, oldest first: the API already
    accepted it, so like a carrier's dialling queue the platform delays it rather than
    failing it.

    With ``seed``, every id is a function of the seed and what it names: a call's id of its
    serial number (the n-th call this engine made), an event's of its call and its rank
    among the call's events, a recording's likewise; without, ids are random.
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        max_concurrent: int = 100,
        max_scheduled: int = 10_000,
        max_stored_calls: int = 100_000,
        scheduler: Scheduler | None = None,
        emit: Callable[[SandboxEvent], None] = lambda event: None,
        recording_url: Callable[[str], str] = lambda rid: f"/v2/recordings/{rid}",
        seed: int | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self.max_concurrent = max_concurrent
        self.max_scheduled = max_scheduled
        self.max_stored_calls = max_stored_calls
        self.scheduler = scheduler if scheduler is not None else Scheduler()
        self.emit = emit
        self.recording_url = recording_url
        self.calls: OrderedDict[str, _CallState] = OrderedDict()
        self.recordings: OrderedDict[str, SandboxRecording] = OrderedDict()
        self.live = 0
        self.peak_live = 0
        self.scheduled = 0
        self._due: deque[_CallState] = deque()  # scheduled calls due, waiting for a line
        self.calls_created = 0
        self.chance = Chance(seed)
        self._serial = 0  # every call made, stored or not: the identity its ids derive from
        self._attempts: dict[str, int] = {}

    # --- time ---------------------------------------------------------------------------

    def _at(self, call: _CallState, mono: float) -> datetime:
        """The call's simulated wall-clock time at monotonic time ``mono``."""
        return call.created_at + timedelta(seconds=(mono - call.created_mono) * self.speed)

    def _after(self, sim_seconds: float, callback: Callable[[], None]) -> None:
        self.scheduler.call_later(sim_seconds / self.speed, callback)

    # --- the API's side -------------------------------------------------------------------

    @property
    def at_limit(self) -> bool:
        """True when a new immediate call would exceed ``max_concurrent``."""
        return self.live >= self.max_concurrent

    @property
    def scheduled_full(self) -> bool:
        """True when one more scheduled call would exceed ``max_scheduled``."""
        return self.scheduled >= self.max_scheduled

    @staticmethod
    def starts_now(request: CallRequest, wall: datetime) -> bool:
        """Whether ``request`` starts at once when accepted at wall-clock time ``wall``."""
        return request.scheduled_for is None or request.scheduled_for <= wall

    def create(self, request: CallRequest, *, wall: datetime | None = None) -> _CallState:
        """Accept a validated request: store the call and start (or schedule) it.

        ``wall`` is the instant the API accepted it (default: now); pass the one the API
        used for its own checks, so both agree on whether the call is scheduled.
        """
        if wall is None:
            wall = datetime.now(UTC)
        with self.scheduler.frozen() as now:
            return self._create(request, now, wall)

    def _create(self, request: CallRequest, now: float, wall: datetime) -> _CallState:
        attempt = 1
        if request.to in MAGIC_NUMBERS:
            attempt = self._attempts.get(request.to, 0) + 1
        self._serial += 1
        call_id = "call_" + self.chance.token(8, "call", self._serial)
        call_uuid = self.chance.uuid("call_uuid", self._serial)
        call = _CallState(request, attempt, now, wall, call_id, call_uuid)
        delay = 0.0
        if not self.starts_now(request, wall):
            assert request.scheduled_for is not None
            delay = (request.scheduled_for - wall).total_seconds()
        if delay > 0:
            call.status = CallStatus.SCHEDULED
            self.scheduled += 1
            self._after(delay, lambda: self._start(call))
        else:
            self._start(call)  # raises before anything is counted when it cannot start
        # Stored only once started or scheduled: a failed create leaves no trace.
        if request.to in MAGIC_NUMBERS:
            self._attempts[request.to] = attempt
        self.calls[call.call_id] = call
        self.calls_created += 1
        self._evict()
        return call

    def _evict(self) -> None:
        # Bound memory: forget the oldest finished calls first; live ones are never dropped.
        calls = self.calls
        while len(calls) > self.max_stored_calls:
            oldest_id, oldest = next(iter(calls.items()))
            if oldest.status in _LIVE or oldest.status == CallStatus.SCHEDULED:
                calls.move_to_end(oldest_id)
                break
            del calls[oldest_id]
            for rid in oldest.recordings:
                self.recordings.pop(rid, None)

    def wire(self, call: _CallState) -> dict[str, Any]:
        """The call as ``GET /calls/{id}`` returns it (wire names, ISO 8601 ``Z`` times)."""
        request = call.request
        out: dict[str, Any] = {
            "call_id": call.call_id,
            "call_uuid": call.call_uuid,
            "from": request.from_,
            "to": request.to,
            "status": call.status.value,
            "created_at": format_datetime(call.created_at),
        }
        if request.timeout is not None:
            out["timeout"] = request.timeout
        if request.max_duration is not None:
            out["max_duration"] = request.max_duration
        if request.tags:
            out["tags"] = request.tags
        if request.custom_fields:
            out["custom_fields"] = request.custom_fields
        if request.scheduled_for is not None:
            out["scheduled_for"] = format_datetime(request.scheduled_for)
        if call.initiated is not None:
            out["initiated_at"] = format_datetime(self._at(call, call.initiated))
            out["duration"] = self._duration(call)
        if call.answered is not None:
            out["answered_at"] = format_datetime(self._at(call, call.answered))
        if call.ended is not None:
            out["ended_at"] = format_datetime(self._at(call, call.ended))
        if call.reason is not None:
            out["reason"] = call.reason.value
            out["reason_code"] = call.reason.code
        return out

    def _duration(self, call: _CallState) -> int:
        """Talk time in simulated seconds: from answer to the end (or to now)."""
        if call.answered is None:
            return 0
        end = call.ended if call.ended is not None else self.scheduler.now()
        return round((end - call.answered) * self.speed)

    def snapshot(self, call: _CallState) -> SandboxCall:
        """An immutable copy of ``call`` for inspection from any thread."""
        wire = self.wire(call)
        request = call.request
        model = Call(
            call_id=call.call_id,
            call_uuid=call.call_uuid,
            from_=request.from_,
            to=request.to,
            status=call.status,
            created_at=call.created_at,
            duration=wire.get("duration"),
            initiated_at=None if call.initiated is None else self._at(call, call.initiated),
            answered_at=None if call.answered is None else self._at(call, call.answered),
            ended_at=None if call.ended is None else self._at(call, call.ended),
            scheduled_for=request.scheduled_for,
            timeout=request.timeout,
            max_duration=request.max_duration,
            tags=request.tags,
            custom_fields=request.custom_fields,
            reason=call.reason,
            reason_code=None if call.reason is None else call.reason.code,
        )
        return SandboxCall(
            call=model,
            events=tuple(call.events),
            actions=tuple(call.actions),
            attempt=call.attempt,
            recordings=tuple(call.recordings),
            ended_by=call.ended_by,
        )

    # --- the lifecycle --------------------------------------------------------------------

    def _event(self, call: _CallState, kind: str, **extra: Any) -> None:
        now = self.scheduler.now()
        request = call.request
        data: dict[str, Any] = {
            "call_id": call.call_id,
            "status": call.status.value,
            "from": request.from_,
            "to": request.to,
        }
        if request.tags:
            data["tags"] = request.tags
        data.update(extra)
        event = SandboxEvent(
            id="evt_" + self.chance.token(8, "event", call.call_id, len(call.events)),
            type=kind,
            timestamp=format_datetime(self._at(call, now).replace(microsecond=0)),
            call_id=call.call_id,
            data=data,
        )
        call.events.append(event)
        self.emit(event)

    def _set_live(self, delta: int) -> None:
        self.live += delta
        if self.live > self.peak_live:
            self.peak_live = self.live

    def _start(self, call: _CallState) -> None:
        if call.status is CallStatus.SCHEDULED:
            if self.at_limit:
                self._due.append(call)  # started by _end once a line is free
                return
            self.scheduled -= 1
        call.status = CallStatus.INITIATED
        call.initiated = self.scheduler.now()
        try:
            self._event(call, "call.initiated")
        except BaseException:
            # Nothing went out and no slot was taken; a scheduled call ends failed, not
            # stuck in "initiated" (the timer heap logs the error).
            call.status, call.reason = CallStatus.FAILED, FailureReason.NETWORK_ERROR
            call.ended = call.initiated
            raise
        self._set_live(1)  # only once the event is out, so a failure cannot leak a slot
        outcome = call.outcome
        if outcome in FAST_FAIL_AFTER:
            self._after(FAST_FAIL_AFTER[outcome], lambda: self._fail(call, outcome))
            return
        timeout = float(call.request.timeout or DEFAULT_TIMEOUT)
        self._after(min(RING_AFTER, timeout / 2), lambda: self._ring(call))
        if outcome is Outcome.DECLINED and timeout > DECLINE_AFTER:
            self._after(DECLINE_AFTER, lambda: self._fail(call, Outcome.DECLINED))
        elif outcome is Outcome.ANSWER and timeout > ANSWER_AFTER:
            self._after(ANSWER_AFTER, lambda: self._answer(call))
        else:
            self._after(timeout, lambda: self._fail(call, Outcome.NO_ANSWER))

    def _ring(self, call: _CallState) -> None:
        if call.status is not CallStatus.INITIATED:
            return
        call.status = CallStatus.RINGING
        self._event(call, "call.ringing")

    def _end(self, call: _CallState, status: CallStatus) -> None:
        call.status = status
        call.ended = self.scheduler.now()
        self._set_live(-1)
        due = self._due
        while due and not self.at_limit:
            waiting = due.popleft()
            try:
                self._start(waiting)
            except Exception:
                # The call ending here must still emit its own event.
                logger.exception("sandbox: scheduled call %s failed to start", waiting.call_id)

    def _fail(self, call: _CallState, outcome: Outcome) -> None:
        if call.status not in _LIVE:
            return
        reason = _FAILURE_REASON[outcome]
        call.reason = reason
        self._end(call, CallStatus.FAILED)
        self._event(call, "call.failed", reason=reason.value, reason_code=reason.code)
        if outcome is Outcome.NO_ANSWER and call.request.call_control is not None:
            # on_no_answer runs after the ring timeout (e.g. leaves a voicemail message).
            actions = call.request.call_control.on_no_answer
            _, _, spans = self._plan(call, actions, limit=None)
            self._schedule_recordings(call, spans, 0.0)

    def _answer(self, call: _CallState) -> None:
        if call.status not in _LIVE:
            return
        call.status = CallStatus.ANSWERED
        call.answered = self.scheduler.now()
        self._event(call, "call.answered")
        request = call.request
        limit = float(request.max_duration or DEFAULT_MAX_DURATION)
        actions = request.call_control.on_answered if request.call_control else ()
        end, ended_by, spans = self._plan(call, actions, limit=limit)
        if end >= limit:
            end, ended_by = limit, "max_duration"
            call.actions.append("max_duration")
        recording = request.recording
        if recording is not None and recording.enabled:
            spans.insert(0, (0.0, end, recording.format))
        self._after(end, lambda: self._complete(call, ended_by))
        self._schedule_recordings(call, [(s, min(d, end - s), f) for s, d, f in spans], end)

    def _complete(self, call: _CallState, ended_by: str) -> None:
        if call.status is not CallStatus.ANSWERED:
            return
        call.ended_by = ended_by
        self._end(call, CallStatus.COMPLETED)
        self._event(call, "call.completed", duration=self._duration(call), ended_by=ended_by)

    # --- call control -----------------------------------------------------------------------

    def _plan(
        self, call: _CallState, actions: Sequence[Action], *, limit: float | None
    ) -> tuple[float, str, list[tuple[float, float, str | None]]]:
        """Walk ``actions`` on the simulated clock.

        Returns the offset (simulated seconds after the start) at which the call ends, what
        ended it, and the recordings made as ``(start, length, format)`` spans. Actions are
        logged in ``call.actions`` as they are planned.
        """
        t = 0.0
        spans: list[tuple[float, float, str | None]] = []
        for action in actions:
            if limit is not None and t >= limit:
                break
            t, ended_by = self._step(call, action, t, spans)
            if ended_by is not None:
                return t, ended_by, spans
        return t + _talk_seconds(call.request), "callee", spans

    def _step(
        self,
        call: _CallState,
        action: Action,
        t: float,
        spans: list[tuple[float, float, str | None]],
    ) -> tuple[float, str | None]:
        log = call.actions
        if isinstance(action, PlayAudio):
            log.append("play_audio")
            if action.message:
                seconds = len(action.message) / SPEECH_CHARS_PER_SECOND / (action.rate or 1.0)
            else:
                seconds = AUDIO_URL_SECONDS
            return t + max(seconds, 0.5), None
        if isinstance(action, RecordAudio):
            log.append("record_audio")
            talk = _talk_seconds(call.request)
            length = min(float(action.max_duration or RECORD_SECONDS), talk or 1.0)
            spans.append((t, length, None))
            return t + length, None
        if isinstance(action, GatherDtmf):
            wanted = action.max_digits or 1
            digits, pressed, used = call.digits, "", 0
            while used < len(digits) and len(pressed) < wanted:
                key = digits[used]
                used += 1
                if key == action.finish_key:
                    break
                pressed += key
            call.digits = digits[used:]  # a later gather_dtmf hears the remaining keys
            if not pressed:
                log.append("gather_dtmf:timeout")
                return t + float(action.timeout or DTMF_TIMEOUT), None
            log.append(f"gather_dtmf:{pressed}")
            t += KEYPRESS_SECONDS * len(pressed)
            for route in action.routes:
                if route.digit == pressed:
                    return self._step(call, route.action, t, spans)
            return t, None
        if isinstance(action, Transfer):
            log.append(f"transfer:{action.destination}")
            return t + TRANSFER_SECONDS, "transfer"
        if isinstance(action, Hangup):
            log.append("hangup")
            return t, "hangup"
        assert_never(action)

    def _schedule_recordings(
        self, call: _CallState, spans: list[tuple[float, float, str | None]], not_before: float
    ) -> None:
        requested = call.request.recording.format if call.request.recording else None
        for start, length, fmt in spans:
            if length <= 0:
                continue
            call.planned_recordings += 1
            rid = "rec_" + self.chance.token(8, "recording", call.call_id, call.planned_recordings)
            recording = SandboxRecording(
                recording_id=rid,
                call_id=call.call_id,
                url=self.recording_url(rid),
                format="wav",
                requested_format=fmt or requested,
                duration=max(1, round(length)),
            )
            # A recording is ready when it ends, and never before the call's final event.
            ready = max(start + length, not_before)
            self._after(ready, functools.partial(self._recording_done, call, recording))

    def _recording_done(self, call: _CallState, recording: SandboxRecording) -> None:
        self.recordings[recording.recording_id] = recording
        while len(self.recordings) > self.max_stored_calls:
            self.recordings.popitem(last=False)
        call.recordings.append(recording.recording_id)
        self._event(
            call,
            "recording.completed",
            recording_id=recording.recording_id,
            recording_url=recording.url,
            format=recording.format,
            duration=recording.duration,
        )
