"""Calling windows in the callee's time zone: pure, no event loop."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phonenumbers.timezone import time_zones_for_number

from audian_async import CallingWindow, ValidationError
from audian_async._validation import _normalize_cached, _recent_parsed, normalize_number
from audian_async._window import _zone_names

NEW_YORK_NUMBER = "+12125550123"  # America/New_York only
SF_NUMBER = "+14155552672"  # America/Los_Angeles only
TOLL_FREE = "+18005550199"  # every North American zone
NY = ZoneInfo("America/New_York")
BUSINESS = CallingWindow(start=time(9), end=time(20), days="mon-fri")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_open_inside_local_hours_on_open_days_only() -> None:
    monday = ny(2026, 12, 7, 10, 0)
    assert BUSINESS.is_open(NEW_YORK_NUMBER, monday)
    assert not BUSINESS.is_open(NEW_YORK_NUMBER, ny(2026, 12, 7, 8, 59))
    assert not BUSINESS.is_open(NEW_YORK_NUMBER, ny(2026, 12, 7, 20, 0))  # end is exclusive
    assert not BUSINESS.is_open(NEW_YORK_NUMBER, ny(2026, 12, 5, 12, 0))  # a Saturday
    # The same instant is 07:00 in San Francisco: closed there.
    assert not BUSINESS.is_open(SF_NUMBER, monday)
    assert BUSINESS.is_open(SF_NUMBER, monday + timedelta(hours=2))


def test_next_open_is_now_while_open_and_the_next_opening_otherwise() -> None:
    monday = ny(2026, 12, 7, 10, 0)
    assert BUSINESS.next_open(NEW_YORK_NUMBER, monday) == monday
    friday_evening = ny(2026, 12, 4, 21, 0)
    assert BUSINESS.next_open(NEW_YORK_NUMBER, friday_evening) == ny(2026, 12, 7, 9, 0)
    # Given in UTC, answered in UTC: Friday 23:30 in New York is 20:30 in San Francisco.
    utc = (friday_evening + timedelta(hours=2, minutes=30)).astimezone(UTC)
    opening = BUSINESS.next_open(SF_NUMBER, utc)
    assert opening.tzinfo is UTC
    assert opening == datetime(2026, 12, 7, 17, 0, tzinfo=UTC)  # 09:00 in San Francisco


def test_daylight_saving_changes_move_the_opening_in_utc() -> None:
    # The US springs forward on Sunday 2026-03-08: 09:00 is 14:00 UTC before, 13:00 after.
    saturday_night = datetime(2026, 3, 7, 2, 0, tzinfo=UTC)  # Friday 21:00 EST
    assert BUSINESS.next_open(NEW_YORK_NUMBER, saturday_night) == datetime(
        2026, 3, 9, 13, 0, tzinfo=UTC
    )
    friday = BUSINESS.next_open(NEW_YORK_NUMBER, datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    assert friday == datetime(2026, 3, 6, 14, 0, tzinfo=UTC)


def test_an_overnight_window_spans_midnight_from_its_opening_day() -> None:
    night = CallingWindow(start=time(20), end=time(8), days="fri")
    assert night.is_open(NEW_YORK_NUMBER, ny(2026, 12, 4, 23, 0))  # Friday night
    assert night.is_open(NEW_YORK_NUMBER, ny(2026, 12, 5, 7, 59))  # Saturday morning
    assert not night.is_open(NEW_YORK_NUMBER, ny(2026, 12, 5, 8, 0))
    assert not night.is_open(NEW_YORK_NUMBER, ny(2026, 12, 5, 21, 0))  # Saturday night
    assert not night.is_open(NEW_YORK_NUMBER, ny(2026, 12, 4, 7, 0))  # Thursday's night
    assert night.next_open(NEW_YORK_NUMBER, ny(2026, 12, 5, 9, 0)) == ny(2026, 12, 11, 20, 0)


def test_closed_dates_skip_their_opening() -> None:
    window = CallingWindow(
        start=time(9), end=time(17), days="mon-fri", closed_dates=(date(2026, 12, 25),)
    )
    assert not window.is_open(NEW_YORK_NUMBER, ny(2026, 12, 25, 12, 0))
    assert window.next_open(NEW_YORK_NUMBER, ny(2026, 12, 24, 18, 0)) == ny(2026, 12, 28, 9, 0)


def test_a_number_in_several_zones_is_open_only_where_all_are_open() -> None:
    # Toll-free numbers span every North American zone, Newfoundland to Hawaii: 9-20 is
    # open in all of them at once only for a short stretch, if at all.
    window = CallingWindow(start=time(8), end=time(21))
    monday = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    opening = window.next_open(TOLL_FREE, monday)
    zones = window.zones(TOLL_FREE)
    assert len(zones) > 10
    for zone in zones:
        local = opening.astimezone(zone).time()
        assert time(8) <= local < time(21)
    assert window.is_open(TOLL_FREE, opening)
    assert not window.is_open(TOLL_FREE, opening - timedelta(minutes=1))


def test_a_fixed_timezone_overrides_the_numbers() -> None:
    london = CallingWindow(start=time(9), end=time(17), timezone="Europe/London")
    noon_london = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert london.is_open(SF_NUMBER, noon_london)  # 04:00 in San Francisco: irrelevant


def test_a_number_without_a_known_zone_needs_a_default() -> None:
    unknown = "+80012345678"  # an international freephone number: no zone
    with pytest.raises(ValidationError, match=r"\+80012345678 has no known time zone"):
        BUSINESS.is_open(unknown, ny(2026, 12, 7, 10, 0))
    fallback = CallingWindow(start=time(9), end=time(20), default_timezone="America/New_York")
    assert fallback.is_open(unknown, ny(2026, 12, 7, 10, 0))


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("sat,sun", {5, 6}),
        ("fri-mon", {4, 5, 6, 0}),
        ("Monday, Wed", {0, 2}),
        ([0, 6], {0, 6}),
        ("mon-sun", set(range(7))),
    ],
)
def test_days(days: str | list[int], expected: set[int]) -> None:
    assert CallingWindow(start=time(9), end=time(17), days=days).days == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days": "funday"}, "days"),
        ({"days": [7]}, "days"),
        ({"days": ""}, "days"),
        ({"end": time(9)}, "end"),
        ({"start": "09:00"}, "start"),
        ({"start": time(9, tzinfo=UTC)}, "start"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"closed_dates": [datetime(2026, 1, 1)]}, "closed_dates"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict[str, object], field: str) -> None:
    settings: dict[str, object] = {"start": time(9), "end": time(17), **kwargs}
    with pytest.raises(ValidationError) as info:
        CallingWindow(**settings)  # type: ignore[arg-type]
    assert info.value.field == field


def test_instants_must_be_aware_and_numbers_valid() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        BUSINESS.is_open(NEW_YORK_NUMBER, datetime(2026, 12, 7, 10, 0))
    with pytest.raises(ValidationError) as info:
        BUSINESS.next_open("+1415", ny(2026, 12, 7, 10, 0))
    assert info.value.field == "number"


@given(
    at=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    start=st.times(),
    length=st.integers(min_value=1, max_value=23 * 60),
)
def test_next_open_is_open_and_nothing_earlier_is(at: datetime, start: time, length: int) -> None:
    end_at = datetime.combine(date(2026, 1, 1), start) + timedelta(minutes=length)
    window = CallingWindow(start=start, end=end_at.time().replace(microsecond=0), days="mon,thu")
    if window.start == window.end:
        return
    opening = window.next_open(NEW_YORK_NUMBER, at)
    assert opening >= at
    assert window.is_open(NEW_YORK_NUMBER, opening)
    if opening > at:
        # Closed just before it, and at the instant asked about.
        assert not window.is_open(NEW_YORK_NUMBER, at)
        assert not window.is_open(NEW_YORK_NUMBER, opening - timedelta(microseconds=1))


@given(
    instants=st.lists(
        st.datetimes(
            min_value=datetime(2026, 3, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=12,
    ),
    start=st.times(),
    length=st.integers(min_value=1, max_value=23 * 60),
)
def test_a_window_answers_a_sequence_of_questions_as_a_fresh_one_would(
    instants: list[datetime], start: time, length: int
) -> None:
    # The window remembers the opening it last found open per zone: whatever the order of
    # the questions (DST changes included), it answers as a window asked only once.
    end = (datetime.combine(date(2026, 1, 1), start) + timedelta(minutes=length)).time()
    if end.replace(microsecond=0) == start:
        return
    options = {"start": start, "end": end.replace(microsecond=0), "days": "mon-fri"}
    window = CallingWindow(**options)  # type: ignore[arg-type]
    for at in sorted(instants) + instants:
        fresh = CallingWindow(**options)  # type: ignore[arg-type]
        assert window.is_open(NEW_YORK_NUMBER, at) == fresh.is_open(NEW_YORK_NUMBER, at)
        assert window.next_open(SF_NUMBER, at) == fresh.next_open(SF_NUMBER, at)


@pytest.mark.parametrize(
    "number",
    [
        "+14155552671",  # US geographic
        "+18005550199",  # US toll-free: not geographic
        "+447911123456",  # UK mobile
        "+442079460958",  # London
        "+5511987654321",  # Brazil mobile (several zones)
        "+61291234567",  # Sydney
        "+81312345678",  # Tokyo
        "+79123456789",  # Russian mobile (many zones)
    ],
)
def test_zones_match_phonenumbers_whether_or_not_validation_just_parsed_the_number(
    number: str,
) -> None:
    expected = tuple(time_zones_for_number(phonenumbers.parse(number)))
    _recent_parsed.clear()
    _normalize_cached.cache_clear()
    assert _zone_names(number) == expected  # parsed afresh
    assert normalize_number(number, "to") == number  # validation keeps its parse
    assert number in _recent_parsed
    assert _zone_names(number) == expected  # reused
