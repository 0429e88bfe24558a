"""Destination numbers that force each call outcome, so tests can script the network."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["MAGIC_NUMBERS", "OWNED_CALLER_ID", "Outcome", "outcome_for"]

OWNED_CALLER_ID = "+14155552671"
"""The caller ID every sandbox account owns (the reference's own example number)."""


class Outcome(enum.Enum):
    """What the simulated network does with a call."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    DECLINED = "declined"
    INVALID_NUMBER = "invalid_number"
    NETWORK_ERROR = "network_error"


MAGIC_NUMBERS: Mapping[str, str] = MappingProxyType(
    {
        "+14155550100": "answers, then completes",
        "+14155550101": "fails busy (486)",
        "+14155550102": "rings, then fails no_answer (408) after the call's timeout",
        "+14155550103": "rings, then fails declined (603)",
        "+14155550104": "fails invalid_number (404)",
        "+14155550105": "fails network_error (503)",
        "+14155550106": "busy (486) on the first attempt, answers on every later one",
        "+14155550107": 'answers and presses "1" at the first gather_dtmf',
    }
)
"""Magic destination numbers -> what the sandbox does with a call to them.

Every other valid number answers and completes. Attempts to ``+14155550106`` are counted per
sandbox, so a redial of a busy call succeeds.
"""

_FIXED = {
    "+14155550101": Outcome.BUSY,
    "+14155550102": Outcome.NO_ANSWER,
    "+14155550103": Outcome.DECLINED,
    "+14155550104": Outcome.INVALID_NUMBER,
    "+14155550105": Outcome.NETWORK_ERROR,
}
BUSY_THEN_ANSWER = "+14155550106"
PRESSES_ONE = "+14155550107"


def outcome_for(number: str, attempt: int) -> Outcome:
    """The outcome of the ``attempt``-th call (1-based) to ``number`` (E.164)."""
    fixed = _FIXED.get(number)
    if fixed is not None:
        return fixed
    if number == BUSY_THEN_ANSWER and attempt <= 1:
        return Outcome.BUSY
    return Outcome.ANSWER
