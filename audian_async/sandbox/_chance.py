"""Every random choice of the sandbox: knob decisions and ids, seeded or not.

Seeded, a choice is a keyed hash (BLAKE2b) of the seed, what is decided (the knob, or the
kind of id) and the identity of the thing decided (a webhook id, a call's serial number,
a request's number on its route...). It never consumes a shared stream, so the order in
which tasks ask (which webhook worker finishes first) cannot change any answer: the same
seed gives the same choices for the same things. Unseeded, choices come from :mod:`secrets`.

Pure and synchronous: tested without an event loop.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

import attrs

__all__ = ["Chance", "Identity"]

Identity = str | int
"""One part of what a choice is about (an event id, a serial number, a route...)."""

_PERSON = b"audian-sandbox"  # BLAKE2b personalisation: these hashes mean nothing elsewhere
_UNIT = 1 << 53  # a float has 53 bits of mantissa: every draw is a multiple of 2**-53


def _part(value: object) -> bytes:
    """One length-prefixed, type-tagged part of a hashed message (so 1 is not "1")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"an identity part is a str or an int, got {type(value).__name__}")
    text = f"{'i' if isinstance(value, int) else 's'}:{value}".encode()
    return len(text).to_bytes(4, "big") + text


def _digest(seed: int, what: str, identity: tuple[Identity, ...], size: int) -> bytes:
    """``size`` bytes that depend only on ``seed``, ``what`` and ``identity``."""
    message = b"".join(_part(value) for value in (seed, what, *identity))
    return hashlib.blake2b(message, digest_size=size, person=_PERSON).digest()


@attrs.frozen
class Chance:
    """The sandbox's source of chance: deterministic when ``seed`` is set, else random.

    >>> Chance(seed=7).token(8, "call", 1) == Chance(seed=7).token(8, "call", 1)
    True
    """

    seed: int | None = None

    def draw(self, what: str, *identity: Identity) -> float:
        """A number in ``[0, 1)``: a function of (seed, ``what``, ``identity``) when seeded."""
        if self.seed is None:
            return secrets.randbits(53) / _UNIT
        bits = int.from_bytes(_digest(self.seed, what, identity, 8), "big") >> 11
        return bits / _UNIT

    def decide(self, rate: float, what: str, *identity: Identity) -> bool:
        """True for a ``rate`` fraction of the things decided (never at 0, always at 1)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        return self.draw(what, *identity) < rate

    def token(self, nbytes: int, what: str, *identity: Identity) -> str:
        """``nbytes`` as hex, for an id: random, or a function of (seed, ``what``, ``identity``)."""
        if self.seed is None:
            return secrets.token_hex(nbytes)
        return _digest(self.seed, what, identity, nbytes).hex()

    def uuid(self, what: str, *identity: Identity) -> str:
        """A version 4 UUID: random, or a function of (seed, ``what``, ``identity``)."""
        if self.seed is None:
            return str(uuid.uuid4())
        return str(uuid.UUID(bytes=_digest(self.seed, what, identity, 16), version=4))
