"""A minimal RESP2 client of the project's own: the dialer's steps (one script call each)
and the webhook dedupe store's two commands per delivery.

coredis spends about 0.3 ms of CPU per command on its machinery (a reader and a writer
task per connection, memory streams between them, a request object, a retry policy and a
telemetry span per call); a step of the dialer is one ``EVALSHA`` whose reply is a small
array, and that overhead was most of what the Redis mode cost per attempt over the
embedded one. :class:`WireClient` sends the command on a pooled anyio stream and parses
the reply in the calling task: one send and (usually) one receive per round trip.

It speaks only what those need: commands with string or integer arguments, replies of
every RESP2 type, ``AUTH`` and ``SELECT`` from the URL, TLS for ``rediss://``. A URL with
options it does not know (a query other than ``db``) is left to coredis (:func:`supported`).
A connection whose request was interrupted (cancelled, broken, or unanswered for
``timeout`` seconds) is closed, never reused: its next reply would belong to the interrupted
request. The timeout is what makes a Redis that stops answering without closing the
connection (a stopped process, a host or network gone silent) an error like a refused one,
instead of a wait without end.

On asyncio, :func:`resp_client` gives :class:`~audian_async._resp_pipe.PipeClient` instead,
one pipelined connection that costs a fraction of this per round trip.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import anyio.abc
import attrs

__all__ = [
    "DEFAULT_TIMEOUT",
    "Address",
    "Commands",
    "ReplyError",
    "WireClient",
    "address_of",
    "encode",
    "RespClient",
    "parse_reply",
    "resp_client",
    "supported",
]

MAX_CONNECTIONS = 8
"""Connections per client: Redis runs one command at a time, so more would only queue there."""
DEFAULT_TIMEOUT = 10.0
"""Seconds to wait for a connection or a reply before giving the connection up."""
_CRLF = b"\r\n"


class ReplyError(Exception):
    """Redis answered with an error reply (``-ERR ...``, ``-NOSCRIPT ...``)."""


@attrs.frozen
class Address:
    """Where and how to connect, read from a Redis URL."""

    host: str | None
    port: int
    path: str | None  # a unix socket
    tls: bool
    username: str | None
    password: str | None
    db: int

    def handshake(self) -> list[bytes]:
        """The commands a new connection sends first (``AUTH``, ``SELECT``), encoded."""
        commands: list[bytes] = []
        if self.password is not None:
            user = [self.username] if self.username else []
            commands.append(encode(["AUTH", *user, self.password]))
        if self.db:
            commands.append(encode(["SELECT", self.db]))
        return commands


def address_of(url: str) -> Address | None:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if set(query) - {"db"}:
        return None
    db = int(query["db"][0]) if "db" in query else 0
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if parts.scheme == "unix":
        return Address(None, 0, parts.path, False, username, password, db)
    if parts.scheme not in ("redis", "rediss"):
        return None
    path = parts.path.strip("/")
    if path:
        db = int(path)
    host, tls = parts.hostname or "127.0.0.1", parts.scheme == "rediss"
    return Address(host, parts.port or 6379, None, tls, username, password, db)


def supported(url: str) -> bool:
    """Whether :class:`WireClient` can connect to ``url`` (else coredis does)."""
    try:
        return address_of(url) is not None
    except ValueError:
        return False


def encode(args: Sequence[str | int | bytes]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [
        a if isinstance(a, bytes) else a.encode("utf-8", "surrogatepass") if isinstance(a, str)
        else b"%d" % a
        for a in args
    ]  # fmt: skip
    return b"*%d\r\n" % len(parts) + b"".join(
        [b"$%d\r\n%s\r\n" % (len(data), data) for data in parts]
    )


def parse_reply(buf: bytearray, pos: int) -> tuple[Any, int] | None:
    """The reply starting at ``pos`` and where it ends, or None while it is incomplete.
    Bulk strings come back as ``str``; an error reply as a :class:`ReplyError` value."""
    end = buf.find(_CRLF, pos)
    if end < 0:
        return None
    kind, line = buf[pos], buf[pos + 1 : end]
    pos = end + 2
    if kind == 0x24:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            return None
        return buf[pos : pos + size].decode("utf-8", "surrogateescape"), pos + size + 2
    if kind == 0x3A:  # : integer
        return int(line), pos
    if kind == 0x2A:  # * array
        size = int(line)
        if size < 0:
            return None, pos
        items = []
        for _ in range(size):
            parsed = parse_reply(buf, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos
    if kind == 0x2B:  # + simple string
        return line.decode(), pos
    if kind == 0x2D:  # - error
        return ReplyError(line.decode(errors="replace")), pos
    raise ReplyError(f"unexpected reply type {chr(kind)!r}")


class _Link:
    """One connection: a request is sent whole, and its reply read before the next."""

    __slots__ = ("buffer", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def call(self, payload: bytes) -> Any:
        await self.stream.send(payload)
        buffer = self.buffer
        while True:
            if buffer:
                parsed = parse_reply(buffer, 0)
                if parsed is not None:
                    del buffer[: parsed[1]]
                    return parsed[0]
            buffer += await self.stream.receive()


class Commands:
    """:meth:`call` on top of a client's :meth:`send` (the encoded command, its reply)."""

    async def send(self, payload: bytes) -> Any:
        """Send an encoded command; return its reply, an error reply as a value."""
        raise NotImplementedError

    async def call(self, *args: str | int | bytes) -> Any:
        """Send one command; return its reply (a :class:`ReplyError` reply is raised)."""
        reply = await self.send(encode(args))
        if isinstance(reply, ReplyError):
            raise reply
        return reply


class WireClient(Commands):
    """A small pool of RESP connections to ``url``, used one request at a time each.

    ``async with WireClient(url) as client: await client.call("GET", "key")``. Errors of
    the connection (refused, reset, closed) are raised as they come (``OSError``, anyio's
    stream errors), no connection or reply within ``timeout`` seconds as
    :class:`TimeoutError` (None: wait for ever); an error reply as :class:`ReplyError`.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = MAX_CONNECTIONS,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        address = address_of(url)
        if address is None:
            raise ValueError("this URL needs coredis")
        self._address = address
        self._timeout = timeout
        self._idle: list[_Link] = []
        self._slots = anyio.Semaphore(max_connections)
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for link in idle:
            await anyio.aclose_forcefully(link.stream)

    async def send(self, payload: bytes) -> Any:
        """Send an encoded command; return its reply, an error reply as a value."""
        async with self._slots:
            link = self._idle.pop() if self._idle else await self._connect()
            try:
                with anyio.move_on_after(self._timeout) as waited:
                    reply = await link.call(payload)
                if waited.cancelled_caught:
                    raise TimeoutError(f"no reply from Redis in {self._timeout:g} s")
            except BaseException:
                # Interrupted mid-request: its reply may still come, so never reuse it.
                await anyio.aclose_forcefully(link.stream)
                raise
            if self._closed:
                await anyio.aclose_forcefully(link.stream)
            else:
                self._idle.append(link)
            return reply

    async def _connect(self) -> _Link:
        with anyio.move_on_after(self._timeout):
            return await self._open()
        raise TimeoutError(f"no connection to Redis in {self._timeout:g} s")

    async def _open(self) -> _Link:
        a = self._address
        stream: anyio.abc.ByteStream
        if a.path is not None:
            stream = await anyio.connect_unix(a.path)
        elif a.tls:
            context = ssl.create_default_context()
            stream = await anyio.connect_tcp(a.host or "", a.port, ssl_context=context, tls=True)
        else:
            stream = await anyio.connect_tcp(a.host or "", a.port)
        link = _Link(stream)
        try:
            for command in a.handshake():
                reply = await link.call(command)
                if isinstance(reply, ReplyError):
                    raise reply
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        return link


class RespClient(Protocol):
    """What :func:`resp_client` returns: an async context manager sending commands."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def call(self, *args: str | int | bytes) -> Any: ...
    async def send(self, payload: bytes) -> Any: ...


def resp_client(url: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> RespClient | None:
    """The fastest client of ours for ``url`` on the running loop (a pipelined connection
    on asyncio, pooled streams on trio), or None when the URL needs coredis. ``timeout``:
    seconds to wait for a connection or a reply (None: for ever)."""
    try:
        address = address_of(url)
    except ValueError:
        return None
    if address is None:
        return None
    if asyncio._get_running_loop() is not None:  # None under trio
        from ._resp_pipe import PipeClient

        return PipeClient(address, timeout=timeout)
    return WireClient(url, timeout=timeout)
