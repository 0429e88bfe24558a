"""The project's RESP client on asyncio: one pipelined connection, replies matched in order.

Redis answers the commands of one connection in the order it received them, so many tasks
can share one connection: each appends a future to a queue and its command to the
outgoing buffer, and the protocol resolves the futures in order as replies arrive. A task
waits for its reply on one future (no lock, no stream wrapper, no checkpoint around the
write), and the commands issued in one turn of the event loop leave in one ``write``. On
the dialer's hot path that is a third of the CPU per round trip of
:class:`~audian_async._resp_wire.WireClient`, which stays the client on trio
(``benchmarks/redis_round_trip.py``; ``docs/redis.md`` has the figures).

A waiter cancelled before its reply leaves its future in the queue: the reply still comes,
in its turn, and is dropped, so the connection stays in step (no need to close it, unlike a
request interrupted on a connection used one request at a time). A lost connection fails
every waiter with :class:`ConnectionError`; the next command opens a new one. So does a
connection whose oldest command has had no reply for ``timeout`` seconds (a Redis stopped,
or a host gone silent, closes nothing): one timer per connection watches the oldest command
only, since replies come in order, so a command costs a clock read, not a timer of its own.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from types import TracebackType
from typing import Any, Self

from ._resp_wire import DEFAULT_TIMEOUT, Address, Commands, ReplyError, parse_reply

__all__ = ["PipeClient"]


class _RespProtocol(asyncio.Protocol):
    """One connection: commands written as they come, replies handed out in order."""

    def __init__(self, timeout: float | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[asyncio.Future[Any]] = deque()
        # When each waiter's command was queued (loop time), in the same order.
        self.sent: deque[float] = deque()
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []
        self.lost: BaseException | None = None
        self.timeout = timeout
        self._flush_handle: asyncio.Handle | None = None
        self._watch: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos, waiters, sent = 0, self.waiters, self.sent
        while waiters:
            parsed = parse_reply(buffer, pos)
            if parsed is None:
                break
            reply, pos = parsed
            waiter = waiters.popleft()
            if sent:  # kept only with a timeout
                sent.popleft()
            if not waiter.done():  # a cancelled waiter's reply is dropped in its turn
                waiter.set_result(reply)
        if pos:
            del buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost is None:  # else given up here, for a reason of its own
            self.lost = exc or ConnectionError("Redis closed the connection")
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        waiters, self.waiters, self.sent = self.waiters, deque(), deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"Redis connection lost: {self.lost}"))

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Queue ``payload`` for this turn's write; the future of its reply."""
        if self.lost is not None or self.transport is None:
            raise ConnectionError(f"Redis connection lost: {self.lost}")
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.waiters.append(waiter)
        self.outgoing.append(payload)
        if self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)
        if self.timeout is not None:
            now = loop.time()
            self.sent.append(now)
            if self._watch is None:
                self._watch = loop.call_at(now + self.timeout, self._check)
        return waiter

    def _check(self) -> None:
        """Give the connection up if its oldest command waited ``timeout`` for its reply;
        else look again when the oldest one will have."""
        self._watch = None
        if not self.sent or self.transport is None or self.lost is not None:
            return
        assert self.timeout is not None
        due = self.sent[0] + self.timeout
        loop = asyncio.get_running_loop()
        if loop.time() < due:
            self._watch = loop.call_at(due, self._check)
            return
        self.lost = TimeoutError(f"no reply from Redis in {self.timeout:g} s")
        self.transport.abort()  # connection_lost fails every waiter with this reason

    def _flush(self) -> None:
        self._flush_handle = None
        outgoing, self.outgoing = self.outgoing, []
        if self.transport is not None and self.lost is None and outgoing:
            self.transport.write(b"".join(outgoing) if len(outgoing) > 1 else outgoing[0])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PipeClient(Commands):
    """RESP commands to the server at ``address`` over one pipelined connection.

    ``async with PipeClient(address) as client: await client.call("GET", "key")``, on the
    asyncio loop that uses it. Connection errors, and no reply within ``timeout`` seconds
    (None: wait for ever), are raised as :class:`ConnectionError` (``OSError``), no
    connection within ``timeout`` as :class:`TimeoutError`; an error reply as
    :class:`~audian_async._resp_wire.ReplyError`.
    """

    def __init__(self, address: Address, *, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self._address = address
        self._timeout = timeout
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Lock | None = None
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
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()

    async def send(self, payload: bytes) -> Any:
        """Send an encoded command; return its reply, an error reply as a value."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connected()
        return await protocol.send(payload)

    async def _connected(self) -> _RespProtocol:
        if self._closed:
            raise ConnectionError("this Redis client is closed")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # one connection opened, whoever asks at once
            protocol = self._protocol
            if protocol is None or protocol.lost is not None:
                protocol = self._protocol = await self._connect()
            return protocol

    async def _connect(self) -> _RespProtocol:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._open()
        except TimeoutError:
            raise TimeoutError(f"no connection to Redis in {self._timeout:g} s") from None

    async def _open(self) -> _RespProtocol:
        a, loop = self._address, asyncio.get_running_loop()
        protocol: _RespProtocol

        def make() -> _RespProtocol:
            return _RespProtocol(self._timeout)

        if a.path is not None:
            _, protocol = await loop.create_unix_connection(make, a.path)
        else:
            context = ssl.create_default_context() if a.tls else None
            _, protocol = await loop.create_connection(make, a.host or "", a.port, ssl=context)
        try:
            for command in a.handshake():
                reply = await protocol.send(command)
                if isinstance(reply, ReplyError):
                    raise reply
        except BaseException:
            protocol.close()
            raise
        return protocol
