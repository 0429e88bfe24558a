"""What the placer and the poller need from the session that runs them.

A protocol, so the workers depend on this small surface and not on the session module
(which builds them): the import graph stays one-way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from anyio.abc import TaskGroup

from .._client import AsyncAudian
from .._errors import AudianError
from .._models import CallRequest, CallStatus, FailureReason
from .._telemetry import DialerMetrics
from ._alarms import Alarms
from ._coordinator import Coordinator
from ._machine import Item, Transition
from ._settings import DialerSettings
from ._suppression import Suppression
from ._timeline import TimelineRecorder

__all__ = ["Host", "Tracker"]


class Tracker(Protocol):
    """Watches live calls (the poller, to the placer)."""

    def track(self, item: Item, call_id: str, *, poll_soon: bool = False) -> None:
        """Start watching the live call ``call_id`` of ``item``."""

    def call_span(self, request: CallRequest) -> float:
        """Seconds from now by which a call of ``request`` placed now must have ended."""


class Host(Protocol):
    """The running session, as its workers see it."""

    @property
    def options(self) -> DialerSettings:
        """The dialer's settings."""

    @property
    def client(self) -> AsyncAudian:
        """The client that places and polls calls."""

    @property
    def coordinator(self) -> Coordinator:
        """The campaign's shared state."""

    @property
    def alarms(self) -> Alarms:
        """The session's clock."""

    @property
    def fatal(self) -> AudianError | None:
        """The error that stopped the campaign, if any."""

    @property
    def create_deadline(self) -> float:
        """Seconds a create may stay unanswered before its item is given up."""

    @property
    def task_group(self) -> TaskGroup:
        """The session's task group."""

    @property
    def metrics(self) -> DialerMetrics | None:
        """The session's metrics, or None when nobody collects them."""

    @property
    def poller(self) -> Tracker:
        """The session's poller."""

    @property
    def timeline(self) -> TimelineRecorder:
        """Where the session counts what it does over time, for the report."""

    def abort(self, exc: AudianError) -> None:
        """Stop the campaign for good with ``exc``."""

    def settle(self, transition: Transition | None) -> None:
        """Act on an item's call having ended."""

    @property
    def suppression(self) -> Suppression:
        """Numbers never to call."""

    @property
    def paused(self) -> bool:
        """True while no new create may be sent."""

    async def wait_unpaused(self) -> None:
        """Return once the campaign is not paused."""

    async def hold_for_window(self, item: Item, opens: datetime) -> None:
        """Keep ``item`` until its calling window opens at ``opens``."""

    async def until_start(self, item: Item) -> None:
        """Hold no slot for the live ``item`` until its scheduled call starts."""

    async def apply_terminal(
        self, call_id: str, status: CallStatus, reason: FailureReason | str | None
    ) -> None:
        """A terminal status of ``call_id`` arrived."""
