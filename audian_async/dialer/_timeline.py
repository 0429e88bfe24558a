"""What a campaign did over time, in bounded memory: the data behind the report's charts.

:class:`TimelineRecorder` counts events (creates, redials, 429s, outcomes) in equal time
buckets as they happen and keeps gauges (live calls, items waiting to redial) sampled into the
same buckets. When the buckets would pass ``cap``, neighbours merge in pairs and the bucket
doubles in length, so a campaign of any length holds at most ``cap`` buckets of each series;
recording an event is a clock read and an increment. Pure: no I/O, the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

__all__ = ["COUNTERS", "GAUGES", "Timeline", "TimelineRecorder"]

COUNTERS = (
    "creates",
    "redial_creates",
    "redials",
    "rate_limited",
    "rate_limited_wait",
    "completed",
    "failed",
)
"""Event series, summed per bucket (``rate_limited_wait`` in seconds, the others counts)."""
GAUGES = ("live", "waiting")
"""Sampled series: the highest sample seen in each bucket."""
_UNSAMPLED = -1


def _halve_sum(values: list[Any]) -> list[Any]:
    return [sum(values[i : i + 2]) for i in range(0, len(values), 2)]


def _halve_max(values: list[int]) -> list[int]:
    return [max(values[i : i + 2]) for i in range(0, len(values), 2)]


@attrs.frozen
class Timeline:
    """A snapshot of a :class:`TimelineRecorder`: bucket ``i`` covers the seconds
    ``[i * step, (i + 1) * step)`` after ``started_at``.

    Counters (``creates``: first attempts the API accepted, ``redial_creates``: later
    attempts accepted, ``redials``: redials scheduled, ``rate_limited``: creates answered
    429, ``rate_limited_wait``: seconds waited out for them, ``completed``/``failed``: items
    that ended) are per bucket; divide by ``step`` for a rate. Gauges (``live``: live calls,
    ``waiting``: items waiting for a redial) are the highest sample of each bucket.
    """

    started_at: datetime
    step: float
    duration: float
    """Seconds from ``started_at`` to the snapshot."""
    creates: tuple[int, ...]
    redial_creates: tuple[int, ...]
    redials: tuple[int, ...]
    rate_limited: tuple[int, ...]
    rate_limited_wait: tuple[float, ...]
    completed: tuple[int, ...]
    failed: tuple[int, ...]
    live: tuple[int, ...]
    waiting: tuple[int, ...]

    @property
    def buckets(self) -> int:
        """Number of buckets of every series."""
        return len(self.creates)

    def series(self, name: str) -> tuple[float, ...]:
        """The series called ``name`` (one of :data:`COUNTERS` or :data:`GAUGES`)."""
        if name not in COUNTERS and name not in GAUGES:
            raise KeyError(name)
        values: tuple[float, ...] = getattr(self, name)
        return values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``started_at`` in ISO 8601, every series a list."""
        data: dict[str, Any] = {
            "started_at": self.started_at.isoformat(),
            "step": self.step,
            "duration": self.duration,
        }
        for name in (*COUNTERS, *GAUGES):
            data[name] = list(self.series(name))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Timeline:
        """The inverse of :meth:`to_dict`."""
        series = {name: tuple(data[name]) for name in (*COUNTERS, *GAUGES)}
        return cls(
            started_at=datetime.fromisoformat(data["started_at"]),
            step=float(data["step"]),
            duration=float(data["duration"]),
            **series,
        )


class TimelineRecorder:
    """Counts a campaign's events per time bucket, in at most ``cap`` buckets.

    ``clock`` gives monotonic seconds (``time.monotonic``, the cheapest clock there is: an
    event costs one read of it); ``started_at`` is the wall-clock time of its zero. Each
    series is a list attribute of its own, so an event is one index computation and one
    increment (no lookup by name on the hot path).
    """

    __slots__ = (
        "_clock",
        "_size",
        "cap",
        "completed",
        "creates",
        "failed",
        "live",
        "rate_limited_count",
        "rate_limited_wait",
        "redial_creates",
        "redials",
        "start",
        "started_at",
        "step",
        "waiting",
    )

    def __init__(
        self,
        *,
        step: float = 0.1,
        cap: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        started_at: datetime | None = None,
    ) -> None:
        if step <= 0 or cap < 2 or cap % 2:
            raise ValueError("step must be > 0 and cap an even number >= 2")
        self._clock = clock
        self.start = clock()
        self.started_at = datetime.now(UTC) if started_at is None else started_at
        self.step = step
        self.cap = cap
        self._size = 0
        self.creates: list[int] = []
        self.redial_creates: list[int] = []
        self.redials: list[int] = []
        self.rate_limited_count: list[int] = []
        self.rate_limited_wait: list[float] = []
        self.completed: list[int] = []
        self.failed: list[int] = []
        self.live: list[int] = []
        self.waiting: list[int] = []

    def _counters(self) -> dict[str, list[Any]]:
        return {
            "creates": self.creates,
            "redial_creates": self.redial_creates,
            "redials": self.redials,
            "rate_limited": self.rate_limited_count,
            "rate_limited_wait": self.rate_limited_wait,
            "completed": self.completed,
            "failed": self.failed,
        }

    def _bucket(self) -> int:
        """The bucket of now, the series grown (or merged) to hold it."""
        index = int((self._clock() - self.start) / self.step)
        if index < self._size:
            return index
        while index >= self.cap:
            self._halve()
            index //= 2
        grow = index + 1 - self._size
        if grow > 0:
            for counts in self._counters().values():
                counts.extend([0] * grow)
            self.live.extend([_UNSAMPLED] * grow)
            self.waiting.extend([_UNSAMPLED] * grow)
            self._size = index + 1
        return index

    def _halve(self) -> None:
        """Merge neighbouring buckets: half as many, each twice as long (in place: the
        lists stay the same objects)."""
        self.step *= 2
        for counts in self._counters().values():
            counts[:] = _halve_sum(counts)
        self.live[:] = _halve_max(self.live)
        self.waiting[:] = _halve_max(self.waiting)
        self._size = len(self.creates)

    # --- events (each one clock read and an increment) ---------------------------------

    def created(self, redial: bool) -> None:
        """The API accepted an attempt (a first one, or a redial)."""
        index = self._bucket()
        (self.redial_creates if redial else self.creates)[index] += 1

    def redial_scheduled(self) -> None:
        """An item's call ended and a redial of it is scheduled."""
        self.redials[self._bucket()] += 1

    def rate_limited(self, wait: float) -> None:
        """A create was answered 429 and is waited out for ``wait`` seconds."""
        index = self._bucket()
        self.rate_limited_count[index] += 1
        self.rate_limited_wait[index] += wait

    def finished(self, completed: bool) -> None:
        """An item ended, completed or failed."""
        index = self._bucket()
        (self.completed if completed else self.failed)[index] += 1

    def sample(self, live: int, waiting: int) -> None:
        """The gauges now: live calls, and items waiting for a redial."""
        index = self._bucket()
        if live > self.live[index]:
            self.live[index] = live
        if waiting > self.waiting[index]:
            self.waiting[index] = waiting

    # --- reading ---------------------------------------------------------------------------

    def snapshot(self) -> Timeline:
        """Every series up to now; a bucket no sample reached holds the gauge's previous
        value (gauges move only when events happen, and the sampler may skip a bucket)."""
        self._bucket()
        gauges: dict[str, tuple[int, ...]] = {}
        for name, samples in (("live", self.live), ("waiting", self.waiting)):
            filled, last = [], 0
            for value in samples:
                last = last if value == _UNSAMPLED else value
                filled.append(last)
            gauges[name] = tuple(filled)
        counters = {name: tuple(counts) for name, counts in self._counters().items()}
        # Sums of float seconds, rounded to the microsecond: no noise in a written report.
        counters["rate_limited_wait"] = tuple(round(v, 6) for v in self.rate_limited_wait)
        return Timeline(
            started_at=self.started_at,
            step=self.step,
            duration=round(max(0.0, self._clock() - self.start), 6),
            **counters,
            **gauges,
        )
