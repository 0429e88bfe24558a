"""The simulated telephone network: creates calls and plays their lifecycle.

Everything here is synchronous and runs on the sandbox's own event loop thread. Time moves
through one :class:`~._scheduler.Scheduler`; all simulated durations are divided by
``speed``. A call's record and its views live in :mod:`._calls`, its call control is planned
by :mod:`._control`, and its ids come from :mod:`._chance`.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .._convert import format_datetime
from .._models import Action, Call, CallRequest, CallStatus, FailureReason
from ._calls import LIVE, CallState, call_model, call_wire, snapshot
from ._chance import Chance, Identity
from ._control import Plan, Span, plan, talk_seconds
from ._magic import MAGIC_NUMBERS, Outcome
from ._records import SandboxCall, SandboxEvent, SandboxRecording
from ._scheduler import Scheduler

__all__ = ["Engine"]

logger = logging.getLogger("audian_async.sandbox")

# The simulated network, in simulated seconds.
RING_AFTER = 1.0  # initiated -> ringing
ANSWER_AFTER = 3.0  # initiated -> answered (so a timeout under 3 s is a no_answer)
DECLINE_AFTER = 2.0  # initiated -> declined
FAST_FAIL_AFTER = {
    Outcome.BUSY: 1.0,
    Outcome.INVALID_NUMBER: 0.5,
    Outcome.NETWORK_ERROR: 1.5,
}

_FAILURE_REASON = {
    Outcome.BUSY: FailureReason.BUSY,
    Outcome.NO_ANSWER: FailureReason.NO_ANSWER,
    Outcome.DECLINED: FailureReason.DECLINED,
    Outcome.INVALID_NUMBER: FailureReason.INVALID_NUMBER,
    Outcome.NETWORK_ERROR: FailureReason.NETWORK_ERROR,
}


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

    With ``seed``, every id is a function of the seed and what it names: a call's id of the
    identity its creator gives (the API: the request's content and how many times it came),
    else of its serial number; an event's of its call and its rank among the call's events,
    a recording's likewise; without, ids are random.
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
        self.calls: OrderedDict[str, CallState] = OrderedDict()
        self.recordings: OrderedDict[str, SandboxRecording] = OrderedDict()
        self.live = 0
        self.peak_live = 0
        self.live_by_caller_id: dict[str, int] = {}
        self.peak_live_by_caller_id: dict[str, int] = {}
        self.scheduled = 0
        self._due: deque[CallState] = deque()  # scheduled calls due, waiting for a line
        self.calls_created = 0
        self.completed = 0  # calls ended, by outcome, evicted ones included
        self.failed = 0
        self.recordings_made = 0  # the cursor of readers of `recordings`
        self.chance = Chance(seed)
        self._serial = 0  # every call made, stored or not: the identity its ids derive from
        self._attempts: dict[str, int] = {}

    def _after(self, sim_seconds: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``sim_seconds`` of simulated time."""
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

    def create(
        self,
        request: CallRequest,
        *,
        wall: datetime | None = None,
        identity: tuple[Identity, ...] | None = None,
    ) -> CallState:
        """Accept a validated request: store the call and start (or schedule) it.

        ``wall`` is the instant the API accepted it (default: now); pass the one the API
        used for its own checks, so both agree on whether the call is scheduled.
        ``identity`` is what the call's seeded ids derive from (the API passes what the
        request said and how often it said it); the call's serial number by default.
        """
        if wall is None:
            wall = datetime.now(UTC)
        with self.scheduler.frozen() as now:
            return self._create(request, now, wall, identity)

    def _create(
        self,
        request: CallRequest,
        now: float,
        wall: datetime,
        identity: tuple[Identity, ...] | None,
    ) -> CallState:
        """Make, start or schedule, and store one call (``now`` frozen by the caller)."""
        attempt = 1
        if request.to in MAGIC_NUMBERS:
            attempt = self._attempts.get(request.to, 0) + 1
        self._serial += 1
        if identity is None:
            identity = (self._serial,)
        call_id = "call_" + self.chance.token(8, "call", *identity)
        call_uuid = self.chance.uuid("call_uuid", *identity)
        call = CallState(request, attempt, now, wall, call_id, call_uuid)
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
            if oldest.status in LIVE or oldest.status == CallStatus.SCHEDULED:
                calls.move_to_end(oldest_id)
                break
            del calls[oldest_id]
            for rid in oldest.recordings:
                self.recordings.pop(rid, None)

    def model(self, call: CallState) -> Call:
        """The call as the API reports it now."""
        return call_model(call, self.scheduler.now(), self.speed)

    def wire(self, call: CallState) -> dict[str, Any]:
        """The call as ``GET /calls/{id}`` returns it (wire names, ISO 8601 ``Z`` times)."""
        return call_wire(self.model(call))

    def snapshot(self, call: CallState) -> SandboxCall:
        """An immutable copy of ``call`` for inspection from any thread."""
        return snapshot(call, self.model(call))

    # --- the lifecycle --------------------------------------------------------------------

    def _event(self, call: CallState, kind: str, **extra: Any) -> None:
        """Record and emit one webhook event of ``call``, stamped with its simulated time."""
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
            timestamp=format_datetime(call.at(now, self.speed).replace(microsecond=0)),
            call_id=call.call_id,
            data=data,
        )
        call.events.append(event)
        self.emit(event)

    def _set_live(self, call: CallState, delta: int) -> None:
        """Count calls taking or freeing a line, keeping the peak (also per caller ID)."""
        self.live += delta
        if self.live > self.peak_live:
            self.peak_live = self.live
        caller = call.request.from_ or ""
        live = self.live_by_caller_id.get(caller, 0) + delta
        if live:
            self.live_by_caller_id[caller] = live
        else:
            del self.live_by_caller_id[caller]  # bounded by the calls live now
        if live > self.peak_live_by_caller_id.get(caller, 0):
            self.peak_live_by_caller_id[caller] = live

    def _start(self, call: CallState) -> None:
        """Initiate ``call`` (a due scheduled one waits for a line) and plan its outcome."""
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
        self._set_live(call, 1)  # only once the event is out, so a failure cannot leak a slot
        outcome = call.outcome
        if outcome in FAST_FAIL_AFTER:
            self._after(FAST_FAIL_AFTER[outcome], lambda: self._fail(call, outcome))
            return
        timeout = float(call.request.ring_timeout)
        self._after(min(RING_AFTER, timeout / 2), lambda: self._ring(call))
        if outcome is Outcome.DECLINED and timeout > DECLINE_AFTER:
            self._after(DECLINE_AFTER, lambda: self._fail(call, Outcome.DECLINED))
        elif outcome is Outcome.ANSWER and timeout > ANSWER_AFTER:
            self._after(ANSWER_AFTER, lambda: self._answer(call))
        else:
            self._after(timeout, lambda: self._fail(call, Outcome.NO_ANSWER))

    def _ring(self, call: CallState) -> None:
        """The callee's phone rings (unless the call already moved on)."""
        if call.status is not CallStatus.INITIATED:
            return
        call.status = CallStatus.RINGING
        self._event(call, "call.ringing")

    def _end(self, call: CallState, status: CallStatus) -> None:
        """End ``call``, free its line and start scheduled calls waiting for one."""
        call.status = status
        call.ended = self.scheduler.now()
        self._set_live(call, -1)
        if status is CallStatus.COMPLETED:
            self.completed += 1
        else:
            self.failed += 1
        due = self._due
        while due and not self.at_limit:
            waiting = due.popleft()
            try:
                self._start(waiting)
            except Exception:
                # The call ending here must still emit its own event.
                logger.exception("sandbox: scheduled call %s failed to start", waiting.call_id)

    def _fail(self, call: CallState, outcome: Outcome) -> None:
        """Fail a live call for ``outcome``; after a no_answer, run ``on_no_answer``."""
        if call.status not in LIVE:
            return
        reason = _FAILURE_REASON[outcome]
        call.reason = reason
        self._end(call, CallStatus.FAILED)
        self._event(call, "call.failed", reason=reason.value, reason_code=reason.code)
        if outcome is Outcome.NO_ANSWER and call.request.call_control is not None:
            # on_no_answer runs after the ring timeout (e.g. leaves a voicemail message).
            voicemail = self._run_actions(call, call.request.call_control.on_no_answer, None)
            self._schedule_recordings(call, voicemail.spans, 0.0)

    def _answer(self, call: CallState) -> None:
        """Answer a live call, plan its actions and schedule its end and recordings."""
        if call.status not in LIVE:
            return
        call.status = CallStatus.ANSWERED
        call.answered = self.scheduler.now()
        self._event(call, "call.answered")
        request = call.request
        limit = float(request.duration_limit)
        actions = request.call_control.on_answered if request.call_control else ()
        planned = self._run_actions(call, actions, limit)
        end, ended_by = planned.end, planned.ended_by
        if end >= limit:
            end, ended_by = limit, "max_duration"
            call.actions.append("max_duration")
        spans = list(planned.spans)
        recording = request.recording
        if recording is not None and recording.enabled:
            spans.insert(0, (0.0, end, recording.format))
        self._after(end, lambda: self._complete(call, ended_by))
        self._schedule_recordings(call, [(s, min(d, end - s), f) for s, d, f in spans], end)

    def _complete(self, call: CallState, ended_by: str) -> None:
        """Complete an answered call, ended by ``ended_by``."""
        if call.status is not CallStatus.ANSWERED:
            return
        call.ended_by = ended_by
        self._end(call, CallStatus.COMPLETED)
        duration = call.duration(self.scheduler.now(), self.speed)
        self._event(call, "call.completed", duration=duration, ended_by=ended_by)

    # --- call control and recordings ----------------------------------------------------

    @staticmethod
    def _run_actions(call: CallState, actions: Sequence[Action], limit: float | None) -> Plan:
        """Plan ``actions`` for ``call``'s callee, logging the steps and the keys used."""
        planned = plan(actions, digits=call.digits, talk=talk_seconds(call.request), limit=limit)
        call.actions.extend(planned.log)
        call.digits = planned.digits
        return planned

    def _schedule_recordings(
        self, call: CallState, spans: Sequence[Span], not_before: float
    ) -> None:
        """Schedule each recording of ``spans`` to be ready when it ends (not before
        ``not_before``)."""
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

    def _recording_done(self, call: CallState, recording: SandboxRecording) -> None:
        """Store a finished recording and announce it with ``recording.completed``."""
        self.recordings[recording.recording_id] = recording
        self.recordings_made += 1
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
