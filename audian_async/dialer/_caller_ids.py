"""Caller-ID pool for the dialer: local presence under a per-number cap.

Callees answer a number from their own area more often than a distant or foreign one, and
carriers flag a caller ID that places too many calls at once. :class:`CallerIdPool` picks,
for each new attempt, a caller ID local to the callee when one is free, and counts the live
calls each caller ID carries so none goes over ``max_active``. Choosing is pure and
synchronous (:meth:`~CallerIdPool.choose`); only :meth:`~CallerIdPool.acquire` waits.

Locality comes from phonenumbers' *geographical* area code
(:func:`phonenumbers.length_of_geographical_area_code`): the NPA for US/CA (``415``), ``20``
or ``161`` in GB, ``30`` or ``89`` in DE, ``1``-``5`` in FR. Mobiles, toll-free and other
non-geographic numbers, and countries without area codes (DK, SG, HK), have none; the
national destination code would be wrong there (an operator prefix, or an arbitrary slice
of a closed numbering plan). Numbers without an area code are compared by country only.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable

import anyio
import phonenumbers

from .._errors import ValidationError
from .._validation import normalize_number, parsed_number

__all__ = ["CallerIdPool"]

_Locality = tuple[int, str]
"""(country calling code, geographical area code or ``""``); ``(0, "")`` when unknown."""

_SAME_AREA, _SAME_COUNTRY, _ELSEWHERE = 0, 1, 2
"""How well a caller ID suits a callee, best first."""


def _locality(number: str) -> _Locality:
    try:
        parsed = parsed_number(number)[0]
    except phonenumbers.NumberParseException:
        return (0, "")
    length = phonenumbers.length_of_geographical_area_code(parsed)
    area = phonenumbers.national_significant_number(parsed)[:length] if length else ""
    return (parsed.country_code or 0, area)


# A campaign dials each callee a few times at most, but many callees: bound the cache.
_callee_locality = functools.lru_cache(maxsize=65_536)(_locality)


def _match(caller: _Locality, callee: _Locality) -> int:
    if caller[0] != callee[0] or not callee[0]:
        return _ELSEWHERE
    if caller[1] and caller[1] == callee[1]:
        return _SAME_AREA
    return _SAME_COUNTRY


class _Waiter:
    """One :meth:`CallerIdPool.acquire` waiting; the releaser fills in ``caller_id``."""

    __slots__ = ("caller_id", "event", "to")

    def __init__(self, to: str) -> None:
        self.to = to
        self.event = anyio.Event()
        self.caller_id: str | None = None


class CallerIdPool:
    """The caller IDs a dialer presents, each carrying at most ``max_active`` live calls.

    For a callee, :meth:`choose` prefers a caller ID with the same country calling code and
    geographical area code (local presence), then one of the same country, then any; within
    the best such group it takes the least busy, ties going to the earliest in pool order.
    Caller IDs at the cap are skipped; when all are, there is none to give. A number without
    an area code (a mobile, toll-free, a country with no area codes) matches by country only.

    Numbers are validated up front (E.164, or national ones with ``default_region``); errors
    name the entry, e.g. ``caller_ids[2]``. ``max_active`` (the dialer's
    ``max_active_per_caller_id``) is the cap; ``None`` sets none::

        pool = CallerIdPool(["+14155552671", "+12125550123"], max_active=5)
        caller_id = await pool.acquire("+14155550100")   # "+14155552671", the 415 one
        ...                                               # the call is live
        pool.release(caller_id)                           # it ended
    """

    def __init__(
        self,
        caller_ids: Iterable[str],
        *,
        max_active: int | None = None,
        default_region: str | None = None,
    ) -> None:
        if isinstance(caller_ids, str | bytes):
            raise ValidationError("caller_ids", "must be a collection of numbers, not one string")
        try:
            entries = list(caller_ids)
        except TypeError:
            raise ValidationError(
                "caller_ids", f"must be a collection of numbers, got {type(caller_ids).__name__}"
            ) from None
        if not entries:
            raise ValidationError("caller_ids", "needs at least one caller ID")
        if max_active is not None and (
            isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1
        ):
            raise ValidationError(
                "max_active_per_caller_id", f"must be an integer >= 1 or None, got {max_active!r}"
            )
        index: dict[str, int] = {}
        for i, value in enumerate(entries):
            number = normalize_number(value, f"caller_ids[{i}]", default_region)
            if number in index:
                raise ValidationError(
                    f"caller_ids[{i}]", f"{number} is already caller_ids[{index[number]}]"
                )
            index[number] = i
        self._numbers = tuple(index)
        self._index = index
        self._localities = tuple(_locality(number) for number in self._numbers)
        self.max_active = max_active
        # Pool numbers always have an entry; others (occupied after a restart) only while live.
        self._active: dict[str, int] = dict.fromkeys(self._numbers, 0)
        self._peak: dict[str, int] = dict.fromkeys(self._numbers, 0)
        self._waiters: deque[_Waiter] = deque()

    def fresh(self) -> CallerIdPool:
        """The same caller IDs and cap with no call counted (each dialer session counts its
        own, live calls restored from the store included)."""
        return CallerIdPool(self._numbers, max_active=self.max_active)

    @property
    def numbers(self) -> tuple[str, ...]:
        """The pool's caller IDs in E.164, in the order given."""
        return self._numbers

    def __len__(self) -> int:
        """How many caller IDs the pool holds."""
        return len(self._numbers)

    def __contains__(self, caller_id: object) -> bool:
        """Whether ``caller_id`` (E.164) is one of the pool's numbers."""
        return caller_id in self._index

    def claim_arguments(self) -> list[str | int]:
        """The pool as a shared claim takes it (see the ``CLAIM`` script): the cap (0 for
        none), then each caller ID in order with its ``+<country code>`` and
        ``+<country code><area code>`` prefixes (``""`` without an area code)."""
        arguments: list[str | int] = [self.max_active or 0]
        for number, (country, area) in zip(self._numbers, self._localities, strict=True):
            arguments += [number, f"+{country}", f"+{country}{area}" if area else ""]
        return arguments

    def active(self, caller_id: str) -> int:
        """How many live calls ``caller_id`` carries now (0 for a number never taken)."""
        return self._active.get(caller_id, 0)

    def peak(self, caller_id: str) -> int:
        """The most live calls ``caller_id`` carried at once."""
        return self._peak.get(caller_id, 0)

    def choose(self, to: str) -> str | None:
        """The caller ID to present to ``to`` (E.164), or ``None`` when all are at the cap.

        Pure: nothing is counted until :meth:`take`. A callee phonenumbers cannot parse has
        no local caller ID; it still gets the least busy one.
        """
        callee = _callee_locality(to)
        cap = self.max_active
        best: tuple[int, int, int] | None = None
        for i, number in enumerate(self._numbers):
            count = self._active[number]
            if cap is not None and count >= cap:
                continue
            rank = (_match(self._localities[i], callee), count, i)
            if best is None or rank < best:
                best = rank
        return None if best is None else self._numbers[best[2]]

    def take(self, caller_id: str) -> None:
        """Count one more live call on ``caller_id``, a pool number under the cap.

        Raises :class:`ValueError` otherwise: a call restored over the cap, or on a number
        no longer in the pool, is recorded with :meth:`occupy`.
        """
        if caller_id not in self._index:
            raise ValueError(f"{caller_id} is not in the caller-ID pool")
        if self.max_active is not None and self._active[caller_id] >= self.max_active:
            raise ValueError(f"{caller_id} already carries {self.max_active} live calls")
        self._count(caller_id)

    def occupy(self, caller_id: str) -> None:
        """Count a live call found after a restart on ``caller_id``, even over the cap.

        A number dropped from the pool since is tracked too, so :meth:`release` works when
        that call ends; it is never chosen.
        """
        self._count(caller_id)

    def _count(self, caller_id: str) -> None:
        count = self._active.get(caller_id, 0) + 1
        self._active[caller_id] = count
        if count > self._peak.get(caller_id, 0):
            self._peak[caller_id] = count

    def release(self, caller_id: str) -> None:
        """Count one live call on ``caller_id`` as ended, handing the freed capacity to the
        longest waiter of :meth:`acquire`.

        Raises :class:`ValueError` when ``caller_id`` carries no live call: a count never
        goes negative, so a double release shows up where it happens.
        """
        count = self._active.get(caller_id, 0)
        if count <= 0:
            raise ValueError(f"{caller_id} carries no live call to release")
        if count == 1 and caller_id not in self._index:
            del self._active[caller_id]
        else:
            self._active[caller_id] = count - 1
        self._serve()

    def _serve(self) -> None:
        """Hand caller IDs to waiters, oldest first, while the oldest can be served."""
        while self._waiters:
            waiter = self._waiters[0]
            caller_id = self.choose(waiter.to)
            if caller_id is None:
                return
            self._count(caller_id)
            self._waiters.popleft()
            waiter.caller_id = caller_id
            waiter.event.set()

    async def acquire(self, to: str) -> str:
        """:meth:`choose` a caller ID for ``to`` and :meth:`take` it, waiting while every
        caller ID is at the cap.

        Waiters are served in arrival order (a newcomer does not pass them), each woken
        by the :meth:`release` that frees a caller ID for it. Cancelled while waiting, it
        takes nothing: a caller ID handed over at that moment is released again.
        """
        if not self._waiters:
            caller_id = self.choose(to)
            if caller_id is not None:
                self._count(caller_id)
                return caller_id
        waiter = _Waiter(to)
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.caller_id is None:
                self._waiters.remove(waiter)
            else:
                self.release(waiter.caller_id)  # handed over while we were cancelled
            raise
        assert waiter.caller_id is not None
        return waiter.caller_id
