"""A dialer's settings, checked once: what :class:`~audian_async.Dialer` was built with."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

from .._client import AsyncAudian
from .._errors import ValidationError
from .._window import CallingWindow
from ..webhooks import EventRouter
from ._caller_ids import CallerIdPool
from ._policy import RetryPolicy
from ._redis_store import RedisStore
from ._store import CampaignStore
from ._suppression import Suppression

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["DialerSettings", "check_campaign"]


def _positive(value: object, field: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(field, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        raise ValidationError(field, f"must be a positive finite number, got {value!r}")
    return float(value)


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, got {value!r}")
    if value < 1:
        raise ValidationError(field, f"must be >= 1, got {value}")
    return value


def check_campaign(name: object) -> str:
    """Raise :class:`ValidationError` unless ``name`` can name a campaign."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValidationError("campaign", "must be a non-empty string of at most 200 characters")
    return name


@attrs.frozen
class DialerSettings:
    """Everything a dialer session runs by (see :class:`~audian_async.Dialer`)."""

    client: AsyncAudian
    router: EventRouter | None
    retry: RetryPolicy
    store: CampaignStore | RedisStore
    max_active_calls: int = 100
    calls_per_second: float | None = None
    poll_after: float | None = None
    poll_interval: float | None = None
    grace: float = 60.0
    time_scale: float = 1.0
    flush_interval: float = 0.05
    create_deadline: float = 600.0
    max_pending: int = 100_000
    window: CallingWindow | None = None
    suppress: Suppression = attrs.field(factory=Suppression)
    caller_ids: CallerIdPool | None = None
    """The validated pool (its numbers and cap); each session counts on a fresh copy."""
    meter_provider: MeterProvider | None = None
    """Where the dialer's metrics go (None: the global provider, looked up per session)."""

    def __attrs_post_init__(self) -> None:
        if self.window is not None and not isinstance(self.window, CallingWindow):
            raise ValidationError("window", f"must be a CallingWindow or None, got {self.window!r}")
        if self.router is not None and not isinstance(self.router, EventRouter):
            raise ValidationError("router", f"must be an EventRouter or None, got {self.router!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValidationError("retry", "must be a RetryPolicy")
        _count(self.max_active_calls, "max_active_calls")
        _count(self.max_pending, "max_pending")
        if self.calls_per_second is not None:
            _positive(self.calls_per_second, "calls_per_second")
        for name in ("poll_after", "poll_interval", "time_scale", "create_deadline"):
            value = getattr(self, name)
            if value is not None:
                _positive(value, name)
        _positive(self.grace, "grace", allow_zero=True)
        _positive(self.flush_interval, "flush_interval", allow_zero=True)

    @property
    def policy(self) -> RetryPolicy:
        """The redial policy on the session's clock (delays times ``time_scale``)."""
        if self.time_scale == 1.0:
            return self.retry
        return self.retry.scaled(self.time_scale)
