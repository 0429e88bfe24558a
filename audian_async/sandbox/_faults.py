"""Fault injection knobs: latency, error rates and "acted but never replied" per route."""

from __future__ import annotations

import attrs

from ._chance import Chance

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

    Seeded (``seed``, else the sandbox's ``seed``), whether a request is hit depends only on
    the seed, the knob, the route and the request's number on that route (1 for the first
    request the sandbox got on it, retries counted as requests), never on timing. The
    ``Idempotency-Key`` is no identity across runs (the SDK makes a random one per create,
    the dialer's carry a per-campaign nonce), so a seeded run repeats its faults when its
    requests arrive in the same order, as a test sending them one after another does.
    Unseeded, faults are drawn at random.

    >>> sb.faults.error_rate["POST /v2/calls"] = 0.2   # doctest: +SKIP
    """

    latency: float = 0.0
    error_rate: dict[str, float] = attrs.field(factory=dict)
    error_status: int = 503
    no_reply_rate: dict[str, float] = attrs.field(factory=dict)
    no_reply_hold: float = 30.0
    seed: int | None = None

    def _hit(
        self, knob: str, rates: dict[str, float], route: str, request: int, seed: int | None
    ) -> bool:
        """Whether request number ``request`` of ``route`` is hit by ``knob``."""
        rate = rates.get(route, rates.get("*", 0.0)) if rates else 0.0
        chance = Chance(self.seed if self.seed is not None else seed)
        return chance.decide(rate, knob, route, request)

    def error_for(self, route: str, request: int, *, seed: int | None = None) -> bool:
        """Whether request number ``request`` of ``route`` should fail with ``error_status``.

        ``seed`` stands in when this object has none of its own (the sandbox passes its own).
        """
        return self._hit("fault.error", self.error_rate, route, request, seed)

    def no_reply_for(self, route: str, request: int, *, seed: int | None = None) -> bool:
        """Whether request number ``request`` of ``route`` should act but never reply."""
        return self._hit("fault.no_reply", self.no_reply_rate, route, request, seed)
