"""Route events to handlers: ``@router.on("call.failed", reason="busy")``.

Matching is pure (type patterns and field filters); running handlers is the only I/O, done
with anyio so it works on asyncio and trio.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from ._events import Event

__all__ = ["EventRouter", "Handler", "Subscription"]

Handler = Callable[[Any], Any]
"""A handler: ``async def h(event) -> None`` or ``def h(event) -> None``."""
H = TypeVar("H", bound=Handler)

logger = logging.getLogger("audian_async.webhooks")

_MISSING: Any = object()
# Bumped by every change to any router, so cached match lists stay right across include().
_generation = [0]


def _bump() -> None:
    _generation[0] += 1


def _is_async(handler: Handler) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(type(handler), "__call__", None)  # noqa: B004 - callable objects
    return call is not None and inspect.iscoroutinefunction(call)


def _check_patterns(patterns: tuple[str, ...]) -> None:
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise TypeError(f"an event pattern must be a non-empty string, got {p!r}")


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _field_value(event: Event, name: str) -> Any:
    value = getattr(event, name, _MISSING)
    if value is _MISSING:
        value = event.data.get(name, _MISSING)
    return value


def _filter_matches(expected: object, actual: object) -> bool:
    if actual is _MISSING:
        return False
    if callable(expected):
        return bool(expected(actual))
    if isinstance(expected, set | frozenset | tuple | list):
        return actual in expected
    return actual == expected


class Subscription:
    """One handler registered on an :class:`EventRouter` for some patterns and filters.

    :meth:`EventRouter.add` returns it; :meth:`cancel` (or leaving a ``with`` block over it)
    removes the handler again, e.g. for a component that subscribes for a while only.
    """

    __slots__ = (
        "_exact",
        "_globs",
        "_match_all",
        "_router",
        "filters",
        "handler",
        "in_thread",
        "is_async",
        "last",
        "patterns",
    )

    def __init__(
        self,
        router: EventRouter,
        handler: Handler,
        patterns: tuple[str, ...],
        filters: Mapping[str, object],
        in_thread: bool,
        last: bool = False,
    ) -> None:
        self._router: EventRouter | None = router
        self.last = last
        self.handler = handler
        self.patterns = patterns
        self.filters = dict(filters)
        self.is_async = _is_async(handler)
        self.in_thread = in_thread and not self.is_async
        self._match_all = "*" in patterns
        self._exact = frozenset(p for p in patterns if not _is_glob(p))
        self._globs = tuple(p for p in patterns if _is_glob(p))

    def __repr__(self) -> str:
        name = getattr(self.handler, "__qualname__", repr(self.handler))
        filters = "".join(f", {k}={v!r}" for k, v in self.filters.items())
        patterns = ", ".join(map(repr, self.patterns))
        return f"<Subscription {name} on {patterns}{filters}>"

    @property
    def active(self) -> bool:
        """True until :meth:`cancel` (or :meth:`EventRouter.off`) removes it."""
        return self._router is not None

    def cancel(self) -> None:
        """Remove this handler from its router (a no-op when already removed)."""
        if self._router is not None:
            self._router._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()

    def matches_type(self, event_type: str) -> bool:
        """True when one of the patterns matches ``event_type``."""
        if self._match_all or event_type in self._exact:
            return True
        return any(fnmatchcase(event_type, glob) for glob in self._globs)

    def matches(self, event: Event) -> bool:
        """True when the event's type matches a pattern and every filter holds.

        A filter that raises does not hold (logged at DEBUG): ``duration=lambda d: d > 60``
        on a recording without a duration, or a set filter against an unhashable value.
        """
        if not self.matches_type(event.type):
            return False
        for name, expected in self.filters.items():
            try:
                if not _filter_matches(expected, _field_value(event, name)):
                    return False
            except Exception:
                # A field the filter did not expect (None, a list...) means "not this
                # handler's event", not a failed delivery: a 500 would only be redelivered
                # into the same exception, and re-run the other handlers each time.
                logger.debug(
                    "%r: the %s filter raised on %s; no match",
                    self,
                    name,
                    event.type,
                    exc_info=True,
                )
                return False
        return True

    async def run(self, event: Event) -> None:
        """Run the handler on ``event`` (a sync one in a worker thread unless opted out)."""
        if self.is_async:
            await self.handler(event)
            return
        if self.in_thread:
            result = await anyio.to_thread.run_sync(self.handler, event)
        else:
            result = self.handler(event)
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            await result


class EventRouter:
    """Maps event types (and field values) to handlers, and runs them.

    >>> router = EventRouter()
    >>> @router.on("call.failed", reason="busy")
    ... async def redial(event):
    ...     ...

    Patterns are exact types (``"call.failed"``), globs (``"call.*"``) or ``"*"`` for every
    event, unknown types included. Filters compare an event attribute, or else a key of
    ``event.data``, with the given value: equality, membership when the value is a set,
    frozenset, tuple or list (``reason={"busy", "no_answer"}``), or a predicate when it is
    callable (``duration=lambda d: d > 60``). A filter on a field the event lacks never
    matches, and neither does one that raises (the predicate above on a recording whose
    ``duration`` is ``None``): the handler is skipped, the others still run, and the
    exception is logged at DEBUG on the ``audian_async.webhooks`` logger.

    Async handlers run on the event loop. Sync handlers run in a worker thread
    (``anyio.to_thread.run_sync``) so they cannot block it; pass ``sync_in_thread=False``
    here or ``in_thread=False`` to :meth:`add` for quick, non-blocking sync handlers.

    :meth:`dispatch` runs every matching handler concurrently in a task group, started in
    registration order (an included router's handlers start at the position of the
    :meth:`include` call). One failing handler does not stop the others; their exceptions
    are raised together afterwards as one ``ExceptionGroup``.
    """

    def __init__(self, *, sync_in_thread: bool = True) -> None:
        self._entries: list[Subscription | EventRouter] = []
        self._sync_in_thread = sync_in_thread
        # event type -> (matching subscriptions, whether any of them has filters)
        self._cache: dict[str, tuple[tuple[Subscription, ...], bool]] = {}
        self._cache_generation = -1

    def __repr__(self) -> str:
        return f"<EventRouter with {len(self.subscriptions())} handler(s)>"

    # --- registration -----------------------------------------------------------------

    def on(self, pattern: str, *patterns: str, **filters: object) -> Callable[[H], H]:
        """Decorator registering a handler for ``pattern`` (and more), with field filters.

        Returns the handler unchanged, so decorators stack::

            @router.on("call.completed")
            @router.on("call.failed", reason="busy")
            async def done(event): ...
        """

        _check_patterns((pattern, *patterns))  # fail at the decorator line, not later

        def decorator(handler: H) -> H:
            self.add(handler, pattern, *patterns, filters=filters)
            return handler

        return decorator

    def add(
        self,
        handler: Handler,
        pattern: str,
        *patterns: str,
        filters: Mapping[str, object] | None = None,
        in_thread: bool | None = None,
        last: bool = False,
    ) -> Subscription:
        """Register ``handler`` and return its :class:`Subscription` (call ``.cancel()``).

        ``in_thread`` overrides the router's ``sync_in_thread`` for a sync handler. A
        ``last`` handler runs once every other matching handler of the event has finished
        (failed ones too): the dialer settles a call that way, so the application's handlers
        can still call ``dialer.redial()`` or ``dialer.finish()`` for it first.
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        all_patterns = (pattern, *patterns)
        _check_patterns(all_patterns)
        sub = Subscription(
            self,
            handler,
            all_patterns,
            filters or {},
            self._sync_in_thread if in_thread is None else in_thread,
            bool(last),
        )
        self._entries.append(sub)
        _bump()
        return sub

    def include(self, other: EventRouter) -> None:
        """Add every handler of ``other``, live: handlers added to it later are included too.

        ``other``'s handlers run in ``other``'s order, at the position of this call.
        """
        if not isinstance(other, EventRouter):
            raise TypeError(f"expected an EventRouter, got {type(other).__name__}")
        if other is self or self in other._routers():
            raise ValueError("including this router would create a cycle")
        self._entries.append(other)
        _bump()

    def off(self, handler: Handler) -> int:
        """Remove every registration of ``handler`` on this router; return how many."""
        removed = [e for e in self._entries if isinstance(e, Subscription) and e.handler == handler]
        for sub in removed:
            self._remove(sub)
        return len(removed)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._entries:
            self._entries.remove(sub)
        sub._router = None
        _bump()

    def _routers(self) -> Iterator[EventRouter]:
        for entry in self._entries:
            if isinstance(entry, EventRouter):
                yield entry
                yield from entry._routers()

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, included routers' too, in dispatch start order."""
        result: list[Subscription] = []
        for entry in self._entries:
            if isinstance(entry, EventRouter):
                result.extend(entry.subscriptions())
            else:
                result.append(entry)
        return result

    # --- dispatch ---------------------------------------------------------------------

    def _by_type(self, event_type: str) -> tuple[tuple[Subscription, ...], bool]:
        if self._cache_generation != _generation[0]:
            self._cache.clear()
            self._cache_generation = _generation[0]
        found = self._cache.get(event_type)
        if found is None:
            subs = tuple(s for s in self.subscriptions() if s.matches_type(event_type))
            # "last" handlers run after the others: keep them at the end, in their order.
            subs = tuple(s for s in subs if not s.last) + tuple(s for s in subs if s.last)
            found = subs, any(s.filters for s in subs)
            if len(self._cache) >= 1024:  # event types are few; bound it against odd senders
                self._cache.clear()
            self._cache[event_type] = found
        return found

    def matching(self, event: Event) -> Sequence[Subscription]:
        """The subscriptions :meth:`dispatch` would run for ``event``, in start order."""
        subs, filtered = self._by_type(event.type)
        if not filtered:
            return subs
        return [s for s in subs if not s.filters or s.matches(event)]

    async def dispatch(self, event: Event) -> int:
        """Run every handler matching ``event``; return how many ran.

        Handlers run concurrently, started in registration order (``last`` ones once all the
        others have finished); the call returns when all have finished. When any raised, the
        exceptions are raised afterwards together as an ``ExceptionGroup`` (in registration
        order), once every other handler has finished: catch them with ``except*``.
        """
        subs = self.matching(event)
        if not subs:
            return 0
        if len(subs) == 1:  # the common case: no task group needed
            sub = subs[0]
            try:
                if sub.is_async:  # Subscription.run, one coroutine fewer
                    await sub.handler(event)
                else:
                    await sub.run(event)
            except Exception as exc:
                raise _group(event, [exc]) from None
            return 1
        errors: list[tuple[int, Exception]] = []
        split = sum(1 for s in subs if not s.last)  # matching() puts "last" ones at the end
        for start, group in ((0, subs[:split]), (split, subs[split:])):
            if group:
                async with anyio.create_task_group() as tg:
                    for index, sub in enumerate(group, start):
                        # start() returns once the handler has begun: start order is
                        # registration order.
                        await tg.start(_run_collecting, sub, event, index, errors)
        if errors:
            raise _group(event, [exc for _, exc in sorted(errors, key=lambda e: e[0])])
        return len(subs)


async def _run_collecting(
    sub: Subscription,
    event: Event,
    index: int,
    errors: list[tuple[int, Exception]],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    try:
        await sub.run(event)
    except Exception as exc:  # collected, so that one failure cannot cancel the others
        errors.append((index, exc))


def _group(event: Event, errors: list[Exception]) -> ExceptionGroup[Exception]:
    label = f"{event.type} {event.id}" if event.id else event.type
    return ExceptionGroup(f"{len(errors)} webhook handler(s) failed on {label}", errors)
