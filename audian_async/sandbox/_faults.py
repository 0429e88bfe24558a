"""Fault injection knobs: latency, error rates and "acted but never replied" per route."""

from __future__ import annotations

import attrs

from ._chance import Chance, Identity

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
    the seed, the knob, the route and the request's identity: what it asked (its path and
    body) and how many times the sandbox was asked exactly that (1 the first time; a retry
    is the 2nd), never on timing nor on the order concurrent requests arrive in. The
    ``Idempotency-Key`` header is left out, since it is no identity across runs (the SDK
    makes a random one per create, the dialer's carry a per-campaign nonce). Unseeded,
    faults are drawn at random.

    >>> sb.faults.error_rate["POST /v2/calls"] = 0.2   # doctest: +SKIP
    """

    latency: float = 0.0
    error_rate: dict[str, float] = attrs.field(factory=dict)
    error_status: int = 503
    no_reply_rate: dict[str, float] = attrs.field(factory=dict)
    no_reply_hold: float = 30.0
    seed: int | None = None

    def _hit(
        self,
        knob: str,
        rates: dict[str, float],
        route: str,
        request: tuple[Identity, ...],
        seed: int | None,
    ) -> bool:
        """Whether the request of ``route`` identified by ``request`` is hit by ``knob``."""
        rate = rates.get(route, rates.get("*", 0.0)) if rates else 0.0
        chance = Chance(self.seed if self.seed is not None else seed)
        return chance.decide(rate, knob, route, *request)

    def error_for(self, route: str, *request: Identity, seed: int | None = None) -> bool:
        """Whether the request of ``route`` identified by ``request`` (e.g. its content
        digest and occurrence) should fail with ``error_status``.

        ``seed`` stands in when this object has none of its own (the sandbox passes its own).
        """
        return self._hit("fault.error", self.error_rate, route, request, seed)

    def no_reply_for(self, route: str, *request: Identity, seed: int | None = None) -> bool:
        """Whether the request of ``route`` identified by ``request`` should act but never
        reply."""
        return self._hit("fault.no_reply", self.no_reply_rate, route, request, seed)
