"""Call control on the simulated clock: what the callee hears, presses and says.

:func:`plan` walks a list of actions (``on_answered`` or ``on_no_answer``) and tells, in
simulated seconds after the start, when the call ends, what ended it and which recordings
it made. It is pure: the engine turns the plan into timers and events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import attrs

from .._models import Action, CallRequest, GatherDtmf, Hangup, PlayAudio, RecordAudio, Transfer
from ._magic import PRESSES_ONE

__all__ = ["DIGITS_TAG", "TALK_SECONDS_TAG", "Plan", "Span", "plan", "scripted_digits"]

DIGITS_TAG = "sandbox_digits"
"""Tag whose string value scripts the keys the callee presses (``{"sandbox_digits": "2"}``)."""
TALK_SECONDS_TAG = "sandbox_talk_seconds"
"""Tag: how long (simulated seconds) the callee stays on the line after the actions end."""

# The callee and the platform, in simulated seconds.
TALK_SECONDS = 5.0  # the callee stays this long after the last action
SPEECH_CHARS_PER_SECOND = 15.0  # text-to-speech pace at rate 1.0
AUDIO_URL_SECONDS = 3.0  # a played file, whose real length the sandbox cannot know
DTMF_TIMEOUT = 5.0  # gather_dtmf without its own timeout
KEYPRESS_SECONDS = 1.0
TRANSFER_SECONDS = 10.0  # the transferred leg talks this long before the call completes
RECORD_SECONDS = 60.0  # record_audio without max_duration

Span = tuple[float, float, str | None]
"""A recording made: ``(start, length, format)``, in simulated seconds after the start."""


@attrs.frozen
class Plan:
    """The outcome of walking a call's actions."""

    end: float
    """When the call ends, in simulated seconds after the actions started."""
    ended_by: str
    """``"callee"`` (hung up after talking), ``"hangup"`` or ``"transfer"``."""
    spans: tuple[Span, ...]
    """The recordings made, in order."""
    log: tuple[str, ...]
    """The steps run, as :attr:`SandboxCall.actions` lists them (``"gather_dtmf:1"``...)."""
    digits: str
    """The scripted keys not pressed yet (a later menu hears them)."""


def talk_seconds(request: CallRequest) -> float:
    """How long the callee speaks: the ``sandbox_talk_seconds`` tag when it is a usable number."""
    talk = (request.tags or {}).get(TALK_SECONDS_TAG, TALK_SECONDS)
    if isinstance(talk, bool) or not isinstance(talk, int | float) or talk < 0:
        return TALK_SECONDS
    return float(talk)


def scripted_digits(request: CallRequest) -> str:
    """The keys the callee of ``request`` will press: its ``sandbox_digits`` tag, else none
    (the magic number +14155550107 presses "1")."""
    digits = (request.tags or {}).get(DIGITS_TAG)
    if isinstance(digits, str):
        return digits
    return "1" if request.to == PRESSES_ONE else ""


def plan(
    actions: Sequence[Action], *, digits: str, talk: float, limit: float | None = None
) -> Plan:
    """Walk ``actions`` for a callee who presses ``digits`` and talks ``talk`` seconds.

    Actions that would start at or after ``limit`` (the call's ``max_duration``) are not run;
    the caller cuts the call at ``limit``.
    """
    walk = _Walk(digits, talk)
    t = 0.0
    for action in actions:
        if limit is not None and t >= limit:
            break
        t, ended_by = walk.step(action, t)
        if ended_by is not None:
            return walk.plan(t, ended_by)
    return walk.plan(t + talk, "callee")


class _Walk:
    """The state of one walk through actions: the callee's keys, the log, the recordings."""

    def __init__(self, digits: str, talk: float) -> None:
        self.digits = digits
        self.talk = talk
        self.log: list[str] = []
        self.spans: list[Span] = []

    def plan(self, end: float, ended_by: str) -> Plan:
        """The walk's result, ending at ``end``."""
        return Plan(end, ended_by, tuple(self.spans), tuple(self.log), self.digits)

    def step(self, action: Action, t: float) -> tuple[float, str | None]:
        """Run ``action`` at ``t``: when the next one starts, and what ended the call if it did."""
        log = self.log
        if isinstance(action, PlayAudio):
            log.append("play_audio")
            if action.message:
                seconds = len(action.message) / SPEECH_CHARS_PER_SECOND / (action.rate or 1.0)
            else:
                seconds = AUDIO_URL_SECONDS
            return t + max(seconds, 0.5), None
        if isinstance(action, RecordAudio):
            log.append("record_audio")
            length = min(float(action.max_duration or RECORD_SECONDS), self.talk or 1.0)
            self.spans.append((t, length, None))
            return t + length, None
        if isinstance(action, GatherDtmf):
            return self._gather(action, t)
        if isinstance(action, Transfer):
            log.append(f"transfer:{action.destination}")
            return t + TRANSFER_SECONDS, "transfer"
        if isinstance(action, Hangup):
            log.append("hangup")
            return t, "hangup"
        assert_never(action)

    def _gather(self, action: GatherDtmf, t: float) -> tuple[float, str | None]:
        """Hear the scripted keys up to ``max_digits`` or the finish key; run the route."""
        wanted = action.max_digits or 1
        digits, pressed, used = self.digits, "", 0
        while used < len(digits) and len(pressed) < wanted:
            key = digits[used]
            used += 1
            if key == action.finish_key:
                break
            pressed += key
        self.digits = digits[used:]  # a later gather_dtmf hears the remaining keys
        if not pressed:
            self.log.append("gather_dtmf:timeout")
            return t + float(action.timeout or DTMF_TIMEOUT), None
        self.log.append(f"gather_dtmf:{pressed}")
        t += KEYPRESS_SECONDS * len(pressed)
        for route in action.routes:
            if route.digit == pressed:
                return self.step(route.action, t)
        return t, None
