"""Fault injection knobs: latency, error rates and "acted but never replied" per route."""

from __future__ import annotations

import random

import attrs

__all__ = ["ROUTES", "Faults"]

ROUTES = (
    "POST /v2/calls",
    "POST /v2/calls/batch",
    "GET /v2/calls/{id}",
    "GET /v2/recordings/{id}",
)
"""Route names accepted as keys of :attr:`Faults.error_rate` and :attr:`Faults.no_reply_rate`
(``"*"`` matches every route)."""


@attrs.define
class Faults:
    """Misbehaviour to inject, changeable while the sandbox runs.

    * ``latency``: seconds added to every API request before it is handled.
    * ``error_rate``: route -> fraction of requests answered ``error_status`` (default 503)
      *without acting* (no call is created), like an overloaded load balancer.
    * ``no_reply_rate``: route -> fraction of requests that are fully acted on (the call is
      created, the idempotency key remembered) but whose reply never arrives: the server holds
      the response until the client gives up and disconnects (at most ``no_reply_hold``
      seconds, after which it answers 504). A correct client must not place the call again
      without the same ``Idempotency-Key``.

    >>> sb.faults.error_rate["POST /v2/calls"] = 0.2   # doctest: +SKIP
    """

    latency: float = 0.0
    error_rate: dict[str, float] = attrs.field(factory=dict)
    error_status: int = 503
    no_reply_rate: dict[str, float] = attrs.field(factory=dict)
    no_reply_hold: float = 30.0
    seed: int | None = None
    _rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _hit(self, rates: dict[str, float], route: str) -> bool:
        rate = rates.get(route, rates.get("*", 0.0)) if rates else 0.0
        return rate > 0 and self._rng.random() < rate

    def error_for(self, route: str) -> bool:
        """Whether this request of ``route`` should fail with ``error_status``."""
        return self._hit(self.error_rate, route)

    def no_reply_for(self, route: str) -> bool:
        """Whether this request of ``route`` should act but never reply."""
        return self._hit(self.no_reply_rate, route)
