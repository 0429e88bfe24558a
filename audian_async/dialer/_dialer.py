"""Dialer: the facade over a :class:`~._session.DialSession` that runs campaigns.

The rules live in :mod:`._machine` and :mod:`._policy`, the shared state behind
:mod:`._coordinator`; placing, polling, the clock, batched writes and the cross-thread inbox
each have a module of their own. This module checks the settings, validates requests on
their way in, and opens one session per ``run()`` or ``async with``.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import AsyncIterator, Generator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio

from .._client import AsyncAudian
from .._errors import ValidationError
from .._models import CallRequest
from .._validation import CheckedCallRequest, validate_call_request
from .._window import CallingWindow
from ..webhooks import EventRouter
from ._caller_ids import CallerIdPool
from ._duplicates import Deduplicated
from ._machine import CallOutcome, CampaignReport, Item
from ._policy import RetryPolicy
from ._redis_store import RedisStore
from ._session import DialerStats, DialSession
from ._settings import DialerSettings, check_campaign
from ._store import CampaignStore, SQLiteStore
from ._suppression import Suppression, SuppressOption

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["DEFAULT_DB_PATH", "DialHandle", "Dialer", "DialerStats"]

logger = logging.getLogger("audian_async.dialer")

DEFAULT_DB_PATH = "audian-dialer.sqlite3"


def _check_after(after: object) -> None:
    if isinstance(after, bool) or not isinstance(after, int | float) or not 0 <= after < math.inf:
        raise ValidationError("after", f"must be None or seconds >= 0, got {after!r}")


class DialHandle:
    """The outcome-to-be of one submitted call: ``outcome = await handle``.

    The handle keeps its item: a long-running dialer forgets finished items (the store keeps
    them), so the outcome lives as long as the handle does.
    """

    __slots__ = ("_item", "_session")

    def __init__(self, session: DialSession, item: Item) -> None:
        self._session = session
        self._item = item

    @property
    def index(self) -> int:
        """The item's index in the campaign."""
        return self._item.index

    def __repr__(self) -> str:
        return f"DialHandle(index={self.index})"

    async def wait(self) -> CallOutcome:
        """Wait until the item is completed or failed for good; return its outcome.

        Raises the dialer's error if it stopped for good first (e.g. the API refused the
        account's key), or :class:`RuntimeError` if it stopped before the outcome.
        """
        return await self._session.wait_item(self._item)

    def __await__(self) -> Generator[Any, None, CallOutcome]:
        return self.wait().__await__()


class Dialer:
    """Place many calls with redials, never over ``max_active_calls`` live calls.

    ``client`` places and polls calls; ``router`` (an ``EventRouter``, or ``None`` to rely on
    polling alone) delivers ``call.completed``/``call.failed`` webhooks, and the dialer's own
    handlers sit beside the application's. ``retry`` decides redials; ``store`` keeps the
    campaign across restarts (an embedded SQLite file, ``audian-dialer.sqlite3``, unless
    given). ``calls_per_second`` paces creates evenly.

    A call whose terminal webhook has not come ``poll_after`` seconds after it was placed is
    polled with ``client.calls.get`` every ``poll_interval`` seconds. With a router, by
    default ``poll_after`` is the call's ``timeout`` + ``max_duration`` (API defaults 30 and
    3600) + ``grace`` and ``poll_interval`` is ``grace``; without one (polling only) the first
    poll comes after the ring ``timeout`` and the next every 5 seconds. ``time_scale``
    multiplies these and every redial delay: against a sandbox running at ``speed=50``, pass
    ``time_scale=1/50``. A call the API answers 404 for five polls in a row, or that cannot
    be polled until it must have ended, fails with reason ``"lost"`` (not redialed).

    A create that fails without a definite answer (a timeout, a broken connection, 500, 502,
    504) may have placed the call: the item keeps its slot and the create is sent again with
    the same idempotency key (capped backoff) for up to ``create_deadline`` seconds. If the
    API never answers by then, the item keeps its slot until any call that create could have
    placed must have ended (``timeout`` + ``max_duration`` + ``grace``), then fails with
    reason ``"create_unknown"`` (not redialed). A create that provably did nothing (429, 503,
    connection refused) is waited out and sent again. A 401, or a 403 other than
    ``unauthorized_caller_id``, stops the campaign: :meth:`run` raises it and the items not
    placed stay pending in the store, for a later run. So does an API that no
    create could reach (connection refused, DNS failure; logged at WARNING meanwhile) for
    ``create_deadline`` seconds: :meth:`run` raises the :class:`APIConnectionError`.

    For a finite list::

        report = await Dialer(client, router, max_active_calls=50).run(requests, campaign="w1")

    In a service::

        async with Dialer(client, router, campaign="reminders") as dialer:
            handle = await dialer.submit(request)
            outcome = await handle

    With ``window`` (a :class:`~audian_async.CallingWindow`), no create is sent for a number
    outside its calling hours: an item or redial due outside waits, without a slot, until its
    window opens (``stats().window_waiting``, ``.window_opens``); a create already sent is
    replayed and a live call is never cut off. A number the window cannot place in a time
    zone is a :class:`~audian_async.ValidationError` before anything is dialed.

    Re-running a campaign name resumes it: finished items are not dialed again, live calls
    are polled rather than redialed, and scheduled redials keep their time.

    ``meter_provider`` (the ``otel`` extra) receives the dialer's metrics (calls placed,
    live, completed, failed by reason, redials, 429s, create latency); by default the
    global provider, looked up as each ``run()`` or ``async with`` starts (see
    docs/observability.md).
    """

    def __init__(
        self,
        client: AsyncAudian,
        router: EventRouter | None = None,
        *,
        max_active_calls: int = 100,
        calls_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        store: CampaignStore | RedisStore | None = None,
        campaign: str | None = None,
        poll_after: float | None = None,
        poll_interval: float | None = None,
        grace: float = 60.0,
        time_scale: float = 1.0,
        flush_interval: float = 0.05,
        create_deadline: float = 600.0,
        max_pending: int = 100_000,
        window: CallingWindow | None = None,
        suppress: SuppressOption = None,
        caller_ids: Iterable[str] | None = None,
        max_active_per_caller_id: int | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if campaign is not None:
            check_campaign(campaign)
        suppression = Suppression.from_option(suppress, client.default_region)
        pool = None
        if caller_ids is not None:
            pool = CallerIdPool(
                caller_ids,
                max_active=max_active_per_caller_id,
                default_region=client.default_region,
            )
        elif max_active_per_caller_id is not None:
            raise ValidationError("max_active_per_caller_id", "applies to caller_ids: give them")
        self.settings = DialerSettings(
            client=client,
            router=router,
            retry=RetryPolicy() if retry is None else retry,
            store=SQLiteStore(DEFAULT_DB_PATH) if store is None else store,
            max_active_calls=max_active_calls,
            calls_per_second=calls_per_second,
            poll_after=poll_after,
            poll_interval=poll_interval,
            grace=grace,
            time_scale=time_scale,
            flush_interval=flush_interval,
            create_deadline=create_deadline,
            max_pending=max_pending,
            window=window,
            suppress=suppression,
            caller_ids=pool,
            meter_provider=meter_provider,
        )
        """Everything this dialer runs by, checked."""
        self.campaign = campaign or f"campaign-{uuid.uuid4().hex[:12]}"
        self._session: DialSession | None = None
        self._stack = AsyncExitStack()

    @property
    def client(self) -> AsyncAudian:
        """The client that places and polls calls."""
        return self.settings.client

    @property
    def router(self) -> EventRouter | None:
        """The router whose terminal webhooks the dialer listens to (None: polling only)."""
        return self.settings.router

    @property
    def store(self) -> CampaignStore | RedisStore:
        """Where the campaign's state survives the process."""
        return self.settings.store

    @property
    def retry(self) -> RetryPolicy:
        """The redial policy."""
        return self.settings.retry

    @property
    def max_active_calls(self) -> int:
        """The live-call limit."""
        return self.settings.max_active_calls

    @property
    def calls_per_second(self) -> float | None:
        """The pace of creates, or None for as fast as slots allow."""
        return self.settings.calls_per_second

    def __repr__(self) -> str:
        return (
            f"Dialer(campaign={self.campaign!r}, max_active_calls={self.max_active_calls}, "
            f"calls_per_second={self.calls_per_second!r}, store={self.store!r})"
        )

    # --- lifecycle -------------------------------------------------------------------------

    @asynccontextmanager
    async def _running(
        self,
        campaign: str,
        *,
        keep_finished: bool,
        requests: Sequence[CheckedCallRequest] | None = None,
    ) -> AsyncIterator[DialSession]:
        """One session of ``campaign``, this dialer's only one while it runs."""
        if self._session is not None:
            raise RuntimeError("this Dialer is already running")
        session = DialSession(
            self.settings, campaign, keep_finished=keep_finished, requests=requests
        )
        self._session = session
        try:
            async with session:
                yield session
        finally:
            self._session = None
        if session.fatal is not None:
            raise session.fatal

    async def __aenter__(self) -> Self:
        await self._stack.enter_async_context(self._running(self.campaign, keep_finished=False))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, AsyncExitStack()
        await stack.__aexit__(exc_type, exc, tb)

    def _validated(self, request: CallRequest | CheckedCallRequest) -> CheckedCallRequest:
        """``request`` checked, with the dialer's own rules: ``from_`` may be left to the
        caller-ID pool, and a number the calling window cannot place in a time zone is
        refused up front."""
        pooled = self.settings.caller_ids is not None
        checked = validate_call_request(
            request, self.client.default_region, pooled_caller_id=pooled
        )
        window = self.settings.window
        if window is not None:
            try:
                window.zones(checked.request.to)
            except ValidationError as exc:
                raise ValidationError("to", exc.message) from None
        return checked

    def _require(self) -> DialSession:
        if self._session is None:
            raise RuntimeError("use 'async with dialer:' (or dialer.run()) first")
        return self._session

    # --- public operations -------------------------------------------------------------------

    async def submit(self, request: CallRequest | CheckedCallRequest) -> DialHandle:
        """Queue one call (validated now, unless already checked); returns a handle to await
        its outcome.

        Waits while ``max_pending`` items are unfinished, so a producer cannot outrun the
        dialer without bound. The item is in the store before its first create, so after a
        crash the next session resumes it (with its index and idempotency keys): do not
        submit it again. Finished items are dropped from memory (the store keeps them); the
        handle keeps its own outcome.
        """
        session = self._require()
        checked = self._validated(request)
        await session.wait_for_room()
        item = await session.add(checked, ready=False)
        try:
            await session.flush()
        except BaseException:
            # Not stored, so never placed: a later resume would not know it either.
            with anyio.CancelScope(shield=True):
                await session.discard(item)
            raise
        session.ready_item(item)
        return DialHandle(session, item)

    async def join(self) -> None:
        """Wait until every item of the campaign has its outcome.

        Raises the dialer's error if it stopped for good (e.g. the API refused the account's
        key), or :class:`RuntimeError` if it stopped first.
        """
        await self._require().join()

    def stats(self) -> DialerStats:
        """Progress counters of the running campaign."""
        return self._require().stats()

    # --- campaign controls -------------------------------------------------------------------

    async def redial(self, call_id: str, after: float | None = None) -> bool:
        """Dial the item that placed ``call_id`` once more, ``after`` seconds after that call
        ends (None: the retry policy's backoff); for webhook handlers, whatever the policy
        says of the call's outcome::

            @router.on("call.completed", duration=lambda d: d < 5)   # voicemail picked up
            async def again(event):
                await dialer.redial(event.call_id, after=3600)

        ``max_attempts``, the calling window and suppression still apply, and ``after`` is
        scaled by ``time_scale`` like every delay. Idempotent: only ``call_id`` being the
        item's latest call counts, so a handler run twice for one webhook schedules one
        redial. The dialer settles a call after the application's handlers of its webhook
        have run, so a handler may call this before or after the call's end is known, and
        before the reply to the create that placed the call (a webhook can overtake it):
        the answer then waits for the creates in flight (over Redis, any process's).
        Returns whether a redial after ``call_id`` is scheduled (False: unknown call, not the
        item's latest, ``max_attempts`` reached, the item was finished or suppressed, or the
        dialer is not running).
        """
        if after is not None:
            _check_after(after)
        session = self._session
        if session is None:
            return False
        return await session.on_loop(session.redial, call_id, after)

    async def finish(self, call_id: str) -> bool:
        """End the item that placed ``call_id`` now (the callee opted out): a scheduled
        redial is cancelled, and a call still going on ends the item, with that call's
        outcome and no redial. Idempotent. Returns True when this call finished the item
        (or set it to finish with its current call), False when the call is unknown or its
        item had finished already. Like :meth:`redial`, it may come before the create's
        reply that names the call."""
        session = self._session
        return False if session is None else await session.on_loop(session.finish, call_id)

    async def suppress(self, number: str) -> int:
        """Never call ``number`` again, in any campaign: kept by the store for later runs,
        its pending and waiting items fail now with reason ``"suppressed"`` (a call going on
        is not cut off, and is not redialed). Returns how many items ended now.

        Raises :class:`~audian_async.ValidationError` for a number that is not one.
        """
        number = Suppression.normalize(number, self.client.default_region)
        session = self._require()
        return await session.on_loop(session.suppress, number)

    def pause(self) -> None:
        """Send no new create until :meth:`resume`; live calls go on and are tracked, and a
        create already sent is still answered. Safe to call from any thread."""
        session = self._require()
        session.on_loop_sync(session.pause)

    def resume(self) -> None:
        """Place calls again after :meth:`pause`."""
        session = self._require()
        session.on_loop_sync(session.resume)

    def stop(self) -> None:
        """End the run early: :meth:`run` returns its report, unfinished items ``pending``
        (with when they are due); running the campaign again continues them, with no number
        dialed twice. In a service, :meth:`join` returns and handles raise
        :class:`RuntimeError`."""
        session = self._require()
        session.on_loop_sync(session.stop)

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume` (or after :meth:`stop`)."""
        return self._session is not None and self._session.paused

    async def run(
        self,
        requests: Iterable[CallRequest | CheckedCallRequest],
        *,
        campaign: str | None = None,
        keep_duplicates: bool = False,
    ) -> CampaignReport:
        """Place every request (with redials) and return the :class:`CampaignReport`.

        All requests are validated before anything is dialed (errors name
        ``requests[i].field``; a :class:`~audian_async.CheckedCallRequest` is taken as it
        is). With the name of an interrupted campaign, it resumes.

        A number requested more than once (in E.164) is dialed once, by its first request;
        the others are logged as a warning and reported with status ``"duplicate"``. With
        ``keep_duplicates=True`` every request is dialed.
        """
        checked = []
        for i, request in enumerate(requests):
            try:
                checked.append(self._validated(request))
            except ValidationError as exc:
                raise exc.at(f"requests[{i}]") from None
        name = self.campaign if campaign is None else check_campaign(campaign)
        plan = None if keep_duplicates else Deduplicated.of(checked)
        if plan is not None and plan.duplicate_of:
            logger.warning(
                "campaign %s: %s; dialing each number once (keep_duplicates=True dials them all)",
                name,
                plan.summary(),
            )
        dialed = list(checked if plan is None else plan.unique)
        async with self._running(name, keep_finished=True, requests=dialed) as session:
            # Every item is in the store before the first create gets far.
            await session.flush()
            await session.join()
            report = await session.report(range(len(dialed)))
        if plan is None or not plan.duplicate_of:
            return report
        return CampaignReport.build(
            report.campaign,
            plan.outcomes(report.outcomes),
            rate_limited=report.rate_limited,
            polls=report.polls,
            timeline=report.timeline,
        )
