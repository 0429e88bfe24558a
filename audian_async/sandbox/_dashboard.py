"""The sandbox's dashboard: a page at ``/`` and a JSON API and live stream under ``/_dashboard/``.

It is served by the sandbox's own app on the sandbox's own address, needs no API key, and
answers only requests whose ``Host`` names a loopback address (or the address the sandbox was
bound to), which keeps DNS-rebinding pages out. Changing a knob takes a ``PATCH`` with the
``X-Audian-Dashboard`` header and a JSON body: a page on another origin can send neither
without a CORS preflight, which the dashboard never grants, and an ``Origin`` that is not
the dashboard's own is refused as well.

The live stream (``/_dashboard/api/events``) is server-sent events: one ``snapshot``, then an
``update`` with what changed at most every :data:`STREAM_INTERVAL` seconds, so a thousand
calls changing at once cost one message, not thousands. See ``docs/dashboard.md``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs

import anyio

from .._asgi import BodyTooLarge, ClientDisconnected, Receive, Scope, Send, read_body
from .._json import dumps, loads
from ._audio import make_wav
from ._dashboard_views import (
    KnobError,
    apply_knobs,
    call_detail,
    call_summary,
    delivery_view,
    knobs_view,
    latest,
    latest_calls,
    overview,
    recording_view,
    request_view,
)

if TYPE_CHECKING:
    from ._app import SandboxApp

__all__ = ["API_PREFIX", "MAX_LIMIT", "STREAM_INTERVAL", "Dashboard"]

API_PREFIX = "/_dashboard/api/"
MAX_LIMIT = 1_000
"""The most rows one JSON request (``?limit=``) or one snapshot returns of a list."""
STREAM_INTERVAL = 0.25
"""Seconds between two updates of a live stream, so bursts of changes coalesce."""
_KEEPALIVE = 15.0  # proxies and browsers drop silent streams
_DEFAULT_LIMIT = 200
_SNAPSHOT_CALLS = MAX_LIMIT
_SNAPSHOT_ROWS = 200  # deliveries and requests in a snapshot, and in one update at most
_SNAPSHOT_RECORDINGS = 100
_MAX_KNOB_BODY = 64 * 1024
_LOOPBACK_NAMES = frozenset({"localhost", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_STATIC = "_dashboard_static"
_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".mjs": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".txt": b"text/plain; charset=utf-8",
}
_COMMON = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

Header = tuple[bytes, bytes]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class _Ring(Protocol[T_co]):
    """A deque or a dict's values: sized and reversible."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[T_co]: ...
    def __reversed__(self) -> Iterator[T_co]: ...


def _since(ring: _Ring[T], total: int, cursor: int, cap: int) -> list[T]:
    """At most ``cap`` of the entries of ``ring`` (``total`` ever added) after ``cursor``,
    oldest first."""
    new = min(total - cursor, len(ring), cap)
    if new <= 0:
        return []
    newest = list(latest(ring, new))
    newest.reverse()
    return newest


class _Problem(Exception):
    """An error answer of the dashboard: ``{"error", "message"}`` with a status."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def _load_assets() -> dict[str, tuple[bytes, bytes]]:
    """Every file of the static directory by its path in it: (content type, bytes)."""
    assets: dict[str, tuple[bytes, bytes]] = {}
    root = importlib.resources.files(__package__ or "audian_async.sandbox") / _STATIC

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                walk(entry, name + "/")
                continue
            suffix = name[name.rfind(".") :] if "." in name else ""
            kind = _TYPES.get(suffix, b"text/plain; charset=utf-8")  # LICENSE files
            assets[name] = (kind, entry.read_bytes())

    walk(root, "")
    return assets


def _policy(page: bytes) -> bytes:
    """The page's Content-Security-Policy: its own files only, its import map by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in re.findall(rb"<script type=\"importmap\">(.*?)</script>", page, re.S)
    ]
    return (
        "default-src 'none'; script-src 'self' " + " ".join(hashes) + "; style-src 'self'; "
        "connect-src 'self'; media-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ).encode()


def _host_name(host: str) -> str:
    """The name of a ``Host`` header value: ``[::1]:8443`` -> ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _limit(query: dict[str, list[str]]) -> int:
    text = query.get("limit", [str(_DEFAULT_LIMIT)])[-1]
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise _Problem(400, "invalid_request", f"limit: an integer from 1 to {MAX_LIMIT}")
    return int(text)


class _Cursors:
    """How far one live stream has read each ring."""

    __slots__ = ("calls", "deliveries", "recordings", "requests")

    def __init__(self, app: SandboxApp) -> None:
        self.requests = app.journal.requests_total
        self.deliveries = app.deliverer.recorded
        self.recordings = app.engine.recordings_made
        self.calls = app.journal.call_changes_total


class Dashboard:
    """The dashboard's ASGI handler, mounted by :class:`~._app.SandboxApp` (see the module
    docstring). :meth:`close` ends the live streams so a stopping server can drain."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self._assets: dict[str, tuple[bytes, bytes]] | None = None
        self._page_policy = b""
        self._routes: dict[str, Callable[[dict[str, list[str]]], Any]] = {
            "overview": lambda q: overview(app),
            "calls": lambda q: latest_calls(app.engine.calls, _limit(q), q.get("status", [""])[-1]),
            "deliveries": self._deliveries,
            "requests": lambda q: [
                request_view(r) for r in latest(app.journal.requests, _limit(q))
            ],
            "recordings": lambda q: [
                recording_view(r) for r in latest(app.engine.recordings.values(), _limit(q))
            ],
            "faults": lambda q: knobs_view(app),
        }

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` is the dashboard's (every other path is the API's)."""
        return path == "/" or path.startswith("/_dashboard/")

    def close(self) -> None:
        """End every live stream now and refuse new ones (the sandbox is stopping)."""
        self.app.journal.close()

    @property
    def assets(self) -> dict[str, tuple[bytes, bytes]]:
        """The static files, read from the package once."""
        if self._assets is None:
            assets = _load_assets()
            self._page_policy = _policy(assets["index.html"][1])
            self._assets = assets
        return self._assets

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one dashboard request."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        try:
            self._check_host(headers)
            await self._dispatch(scope, headers, receive, send)
        except _Problem as problem:
            body = dumps({"error": problem.error, "message": problem.message})
            await _send(send, problem.status, body, b"application/json")

    def _check_host(self, headers: dict[bytes, bytes]) -> None:
        host = headers.get(b"host")
        if host is None:
            return  # no browser omits it; only they carry another site's requests here
        name = _host_name(host.decode("latin-1")).lower()
        bound = self.app.settings.host.lower()
        if (
            name in _LOOPBACK_NAMES
            or name.startswith("127.")
            or (name == bound and bound not in _WILDCARDS)
        ):
            return
        raise _Problem(403, "forbidden_host", "The dashboard answers loopback addresses only")

    async def _dispatch(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        method, path = scope["method"], scope["path"]
        if path in ("/", "/_dashboard/"):
            self._only(method, "GET")
            kind, page = self.assets["index.html"]
            policy = [(b"content-security-policy", self._page_policy)]
            await _send(send, 200, page, kind, policy)
            return
        if path.startswith("/_dashboard/static/"):
            self._only(method, "GET")
            asset = self.assets.get(path.removeprefix("/_dashboard/static/"))
            if asset is None:
                raise _Problem(404, "not_found", "No such file")
            await _send(send, 200, asset[1], asset[0])
            return
        if not path.startswith(API_PREFIX):
            raise _Problem(404, "not_found", "No such dashboard page")
        name = path.removeprefix(API_PREFIX)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if name == "events":
            self._only(method, "GET")
            await self._events(receive, send)
        elif name == "faults" and method == "PATCH":
            await self._patch_knobs(headers, receive, send)
        elif name in self._routes:
            self._only(method, "GET")
            await _json(send, self._routes[name](query))
        elif name.startswith("calls/") and name.count("/") == 1:
            self._only(method, "GET")
            call = self.app.engine.calls.get(name.removeprefix("calls/"))
            if call is None:
                raise _Problem(404, "not_found", "Call not found")
            await _json(send, call_detail(self.app, call))
        elif name.startswith("recordings/") and name.endswith("/audio") and name.count("/") == 2:
            self._only(method, "GET")
            recording = self.app.engine.recordings.get(name.split("/")[1])
            if recording is None:
                raise _Problem(404, "not_found", "Recording not found")
            await _send(send, 200, make_wav(recording.duration), b"audio/wav")
        else:
            raise _Problem(404, "not_found", "No such dashboard endpoint")

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise _Problem(405, "method_not_allowed", f"Use {allowed[0]}")

    def _deliveries(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        records: Any = self.app.deliverer.records
        call_id = query.get("call_id", [""])[-1]
        if call_id:
            records = [d for d in records if d.call_id == call_id]
        return [delivery_view(d) for d in latest(records, _limit(query))]

    # --- knobs --------------------------------------------------------------------------

    async def _patch_knobs(self, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        # Another origin's page can make a browser send a simple POST here, but not one
        # with a custom header or a JSON body without a preflight, which is never granted.
        if not headers.get(b"x-audian-dashboard"):
            raise _Problem(403, "csrf", "Changing a knob needs the X-Audian-Dashboard header")
        origin = headers.get(b"origin")
        host = headers.get(b"host")
        if origin is not None and host is not None and origin not in (b"http://" + host,):
            raise _Problem(403, "csrf", "Knobs change only from the dashboard's own origin")
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            raise _Problem(415, "unsupported_media_type", "Send the change as application/json")
        try:
            body = await read_body(receive, list(headers.items()), _MAX_KNOB_BODY)
            change = loads(body)
        except BodyTooLarge:
            raise _Problem(413, "payload_too_large", "The change is too large") from None
        except ClientDisconnected:
            return
        except ValueError:
            raise _Problem(400, "invalid_json", "The body is not valid JSON") from None
        try:
            apply_knobs(self.app, change)
        except KnobError as exc:
            raise _Problem(400, "invalid_knob", str(exc)) from None
        self.app.journal.poke()  # live streams show the new knobs at once
        await _json(send, knobs_view(self.app))

    # --- the live stream ----------------------------------------------------------------

    async def _events(self, receive: Receive, send: Send) -> None:
        journal = self.app.journal
        if journal.closed:
            await _send(send, 204, b"", b"text/plain")  # tells EventSource not to reconnect
            return
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), *_COMMON],
        }
        await send(start)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_disconnect, receive, tg.cancel_scope)
            await self._stream(send)
            tg.cancel_scope.cancel()

    async def _stream(self, send: Send) -> None:
        app, journal = self.app, self.app.journal
        cursors = _Cursors(app)
        seen = journal.version
        knobs = knobs_view(app)
        await _event(send, "snapshot", self._snapshot(knobs))
        while True:
            with anyio.move_on_after(_KEEPALIVE):
                await journal.wait_change(seen)
            if journal.closed:
                break
            if journal.version == seen:
                # Quiet: knobs changed from Python (sb.faults...) show up here too.
                now = knobs_view(app)
                if now == knobs:
                    await send({"type": "http.response.body", "body": b": \n\n", "more_body": True})
                    continue
            seen = journal.version
            update, knobs = self._update(cursors, knobs)
            await _event(send, "update", update)
            await anyio.sleep(STREAM_INTERVAL)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _snapshot(self, knobs: dict[str, Any]) -> dict[str, Any]:
        app = self.app
        return {
            "overview": overview(app),
            "faults": knobs,
            "calls": latest_calls(app.engine.calls, _SNAPSHOT_CALLS),
            "deliveries": [delivery_view(d) for d in latest(app.deliverer.records, _SNAPSHOT_ROWS)],
            "requests": [request_view(r) for r in latest(app.journal.requests, _SNAPSHOT_ROWS)],
            "recordings": [
                recording_view(r)
                for r in latest(app.engine.recordings.values(), _SNAPSHOT_RECORDINGS)
            ],
        }

    def _update(
        self, cursors: _Cursors, knobs: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """What changed since ``cursors`` (moving them on), and the knobs now."""
        app = self.app
        journal, engine, deliverer = app.journal, app.engine, app.deliverer
        update: dict[str, Any] = {"overview": overview(app)}
        behind = journal.call_changes_total - cursors.calls
        if behind > len(journal.call_changes) or behind > _SNAPSHOT_CALLS * 2:
            # Too far behind to tell what changed: start the table over.
            update["calls_reset"] = True
            update["calls"] = latest_calls(engine.calls, _SNAPSHOT_CALLS)
        else:
            changed = dict.fromkeys(
                _since(journal.call_changes, journal.call_changes_total, cursors.calls, behind)
            )
            found = (engine.calls.get(call_id) for call_id in changed)
            update["calls"] = [call_summary(call) for call in found if call is not None]
        cursors.calls = journal.call_changes_total
        deliveries = _since(
            deliverer.records, deliverer.recorded, cursors.deliveries, _SNAPSHOT_ROWS
        )
        cursors.deliveries = deliverer.recorded
        requests = _since(
            journal.requests, journal.requests_total, cursors.requests, _SNAPSHOT_ROWS
        )
        cursors.requests = journal.requests_total
        recordings = _since(
            engine.recordings.values(),
            engine.recordings_made,
            cursors.recordings,
            _SNAPSHOT_RECORDINGS,
        )
        cursors.recordings = engine.recordings_made
        update["deliveries"] = [delivery_view(d) for d in deliveries]
        update["requests"] = [request_view(r) for r in requests]
        update["recordings"] = [recording_view(r) for r in recordings]
        now = knobs_view(app)
        if now != knobs:
            update["faults"] = now
        return update, now


async def _watch_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once the client goes away."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _event(send: Send, name: str, data: Any) -> None:
    # Compact JSON holds no raw newline, so one data line carries it.
    body = b"event: %s\ndata: %s\n\n" % (name.encode(), dumps(data))
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _json(send: Send, data: Any) -> None:
    await _send(send, 200, dumps(data), b"application/json")


async def _send(
    send: Send, status: int, body: bytes, kind: bytes, extra: list[Header] | None = None
) -> None:
    headers = [(b"content-type", kind), (b"content-length", b"%d" % len(body)), *_COMMON]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
