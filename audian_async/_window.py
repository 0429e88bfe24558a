"""Calling windows: the local hours at which a number may be called. Pure, no clocks.

Many places allow marketing calls only inside local calling hours (8am to 9pm in the
callee's time zone, say). :class:`CallingWindow` answers two questions for a number and an
aware instant: is the window open there now (:meth:`~CallingWindow.is_open`), and when does
it open next (:meth:`~CallingWindow.next_open`). Local time comes from :mod:`zoneinfo`, so
daylight-saving changes are handled; the callee's zone comes from phonenumbers' time-zone
data when the window names none.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import phonenumbers
from phonenumbers import timezone as number_timezones

from ._errors import ValidationError
from ._validation import normalize_number, parsed_number

__all__ = ["CallingWindow"]

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNKNOWN_ZONE = "Etc/Unknown"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAX_STEPS = 2_000
"""Candidate openings tried by next_open before it calls a window never open."""


def _zone(name: str, field: str = "timezone") -> ZoneInfo:
    try:
        return _zone_cached(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(field, f"unknown time zone {name!r}") from None


@functools.lru_cache(maxsize=1024)
def _zone_cached(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parse_days(value: str | Iterable[str | int]) -> frozenset[int]:
    """``"mon-fri"``, ``"sat,sun"``, ``"fri-mon"`` (wrapping), or names / 0-6 (Monday 0)."""
    parts: Iterable[str | int]
    parts = value.split(",") if isinstance(value, str) else value
    days: set[int] = set()
    for part in parts:
        if isinstance(part, bool):
            raise ValidationError("days", f"not a day: {part!r}")
        if isinstance(part, int):
            if not 0 <= part <= 6:
                raise ValidationError("days", f"days are 0 (Monday) to 6 (Sunday), got {part}")
            days.add(part)
            continue
        if not isinstance(part, str):
            raise ValidationError("days", f"not a day: {part!r}")
        first, dash, last = part.strip().lower().partition("-")
        try:
            a = _DAY_NAMES.index(first.strip()[:3])
            b = _DAY_NAMES.index(last.strip()[:3]) if dash else a
        except ValueError:
            raise ValidationError(
                "days", f"unknown day in {part!r} (use mon, tue, ..., sun, or a range mon-fri)"
            ) from None
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    if not days:
        raise ValidationError("days", "the window must be open on at least one day")
    return frozenset(days)


def _check_time(value: object, field: str) -> time:
    if not isinstance(value, time):
        raise ValidationError(field, f"must be a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise ValidationError(field, "must be a local wall-clock time, without tzinfo")
    return value


def _check_start(value: object) -> time:
    return _check_time(value, "start")


def _check_end(value: object) -> time:
    return _check_time(value, "end")


def _check_dates(value: Iterable[date]) -> frozenset[date]:
    if isinstance(value, date):
        value = (value,)
    checked = set()
    for day in value:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValidationError("closed_dates", f"must hold datetime.date values, got {day!r}")
        checked.add(day)
    return frozenset(checked)


def _check_zone_name(value: str | None) -> str | None:
    if value is not None:
        if not isinstance(value, str):
            raise ValidationError("timezone", f"must be an IANA zone name, got {value!r}")
        _zone(value)
    return value


def _check_aware(at: object) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError("at", "must be a timezone-aware datetime (e.g. tzinfo=UTC)")
    return at


@attrs.frozen
class CallingWindow:
    """The local hours, ``start`` to ``end``, on ``days``, at which numbers may be called.

    ``days`` is ``"mon-fri"``, ``"mon-sun"``, ``"sat,sun"``, a wrapping range such as
    ``"fri-mon"``, or an iterable of day names or numbers (0 is Monday). A window whose
    ``end`` is before its ``start`` (20:00-08:00) runs overnight; the day it opens on is the
    one that counts for ``days`` and ``closed_dates`` (no opening on those local dates).

    ``timezone`` (an IANA name) fixes the zone for every number; ``None`` uses the callee's
    own, from the number: a number whose country spans several zones (a mobile, a toll-free
    number) is open only while the window is open in all of them, and a number with no known
    zone uses ``default_timezone``, or is a :class:`~audian_async.ValidationError` naming
    the number when none is set::

        window = CallingWindow(start=time(9), end=time(20), days="mon-fri")
        window.is_open("+14155552672", at=datetime.now(UTC))
        window.next_open("+14155552672", at=datetime.now(UTC))   # == at while open
    """

    start: time = attrs.field(converter=_check_start)
    end: time = attrs.field(converter=_check_end)
    days: frozenset[int] = attrs.field(default="mon-sun", converter=_parse_days)
    timezone: str | None = attrs.field(default=None, converter=_check_zone_name)
    closed_dates: frozenset[date] = attrs.field(default=(), converter=_check_dates)
    default_timezone: str | None = attrs.field(default=None, converter=_check_zone_name)
    _spans: dict[tzinfo, tuple[datetime, datetime]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False, hash=False
    )
    """Per zone, the instants [since, until) known to be inside one opening: a dialer asks
    about every create, and the answer only changes at an opening's end."""

    def __attrs_post_init__(self) -> None:
        if self.start == self.end:
            raise ValidationError("end", "must differ from start (the window would be empty)")

    # --- zones ---------------------------------------------------------------------------

    def zones(self, number: str) -> tuple[ZoneInfo, ...]:
        """The zones the window is read in for ``number`` (E.164)."""
        if self.timezone is not None:
            return (_zone(self.timezone),)
        # A number already in E.164 (the dialer's, validated) is looked up as it is: parsing
        # it again per attempt would cost more than the rest of the check.
        if not (isinstance(number, str) and _E164.fullmatch(number)):
            number = normalize_number(number, "number")
        return _zones_for(number, self.default_timezone)

    # --- questions -----------------------------------------------------------------------

    def is_open(self, number: str, at: datetime) -> bool:
        """Whether ``number`` may be called at the aware instant ``at``."""
        at = _check_aware(at)
        return all(self._open_in(zone, at) for zone in self.zones(number))

    def next_open(self, number: str, at: datetime) -> datetime:
        """The first instant from ``at`` on at which ``number`` may be called (``at`` itself
        while the window is open), in ``at``'s time zone."""
        at = _check_aware(at)
        zones = self.zones(number)
        if all(self._open_in(zone, at) for zone in zones):
            return at  # the common case of a dialer: open now
        when = at
        for _ in range(_MAX_STEPS):
            # Per zone, the first instant from ``when`` on that is open there; before the
            # latest of them some zone is closed throughout.
            latest = max(
                when if self._open_in(zone, when) else self._next_open_in(zone, when)
                for zone in zones
            )
            if latest == when:
                return when.astimezone(at.tzinfo)
            when = latest
        raise ValidationError(
            "window", f"the window never opens for {number} (in all its time zones at once)"
        )

    # --- one zone ------------------------------------------------------------------------

    def _opens_on(self, day: date) -> bool:
        return day.weekday() in self.days and day not in self.closed_dates

    def _open_in(self, zone: tzinfo, at: datetime) -> bool:
        span = self._spans.get(zone)
        if span is not None and span[0] <= at < span[1]:
            return True
        local = at.astimezone(zone)
        now, today = local.time().replace(tzinfo=None), local.date()
        if self.start < self.end:
            closes = today if self.start <= now < self.end and self._opens_on(today) else None
        elif now >= self.start:
            # Overnight: the evening part opens today, the morning part opened yesterday.
            closes = today + timedelta(days=1) if self._opens_on(today) else None
        else:
            opened = now < self.end and self._opens_on(today - timedelta(days=1))
            closes = today if opened else None
        if closes is None:
            return False
        if len(self._spans) > 64:  # zones are few; bound it all the same
            self._spans.clear()
        self._spans[zone] = (at, datetime.combine(closes, self.end, tzinfo=zone))
        return True

    def _openings(self, zone: tzinfo, at: datetime) -> Iterator[datetime]:
        """Opening instants in ``zone``, from the local day before ``at`` onwards."""
        day = at.astimezone(zone).date() - timedelta(days=1)
        while True:
            if self._opens_on(day):
                yield datetime.combine(day, self.start, tzinfo=zone)
            day += timedelta(days=1)

    def _next_open_in(self, zone: tzinfo, at: datetime) -> datetime:
        """The first instant after ``at`` at which the window opens in ``zone``."""
        for steps, opening in enumerate(self._openings(zone, at)):
            if opening > at:
                return opening
            if steps > _MAX_STEPS:
                break
        raise ValidationError("window", "the window never opens")  # pragma: no cover


def _zone_names(number: str) -> tuple[str, ...]:
    """phonenumbers' zones for an E.164 number (:func:`_zones_for` caches the result)."""
    parsed, kind = parsed_number(number)
    # time_zones_for_number(), with the type validation already worked out.
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return (_UNKNOWN_ZONE,)
    if not phonenumbers.is_number_type_geographical(kind, parsed.country_code or 0):
        return tuple(number_timezones.time_zones_for_number(parsed))
    return tuple(number_timezones.time_zones_for_geographical_number(parsed))


@functools.lru_cache(maxsize=4096)
def _zones_named(names: tuple[str, ...]) -> tuple[ZoneInfo, ...]:
    """The zones of phonenumbers' zone names (few distinct tuples: cached)."""
    return tuple(_zone(name, "number") for name in names)


@functools.lru_cache(maxsize=65_536)
def _zones_for(number: str, default_timezone: str | None) -> tuple[ZoneInfo, ...]:
    """The zones a callee-zone window reads ``number`` (E.164) in; a ValidationError (not
    cached) when it has none and there is no default."""
    names = _zone_names(number)
    if names == (_UNKNOWN_ZONE,) or not names:
        if default_timezone is None:
            raise ValidationError(
                "number", f"{number} has no known time zone: give the window a default_timezone"
            )
        names = (default_timezone,)
    return _zones_named(names)
