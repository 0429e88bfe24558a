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
every waiter with :class:`ConnectionError`; the next command opens a new one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from types import TracebackType
from typing import Any, Self

from ._resp_wire import Address, Commands, ReplyError, parse_reply

__all__ = ["PipeClient"]


class _RespProtocol(asyncio.Protocol):
    """One connection: commands written as they come, replies handed out in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []
        self.lost: BaseException | None = None
        self._flush_handle: asyncio.Handle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        pos, waiters = 0, self.waiters
        while waiters:
            parsed = parse_reply(buffer, pos)
            if parsed is None:
                break
            reply, pos = parsed
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter's reply is dropped in its turn
                waiter.set_result(reply)
        if pos:
            del buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionError("Redis closed the connection")
        waiters, self.waiters = self.waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"Redis connection lost: {self.lost}"))

    def send(self, payload: bytes) -> asyncio.Future[Any]:
        """Queue ``payload`` for this turn's write; the future of its reply."""
        if self.lost is not None or self.transport is None:
            raise ConnectionError(f"Redis connection lost: {self.lost}")
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.outgoing.append(payload)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)
        return waiter

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
    asyncio loop that uses it. Connection errors are raised as :class:`ConnectionError`
    (``OSError``); an error reply as :class:`~audian_async._resp_wire.ReplyError`.
    """

    def __init__(self, address: Address) -> None:
        self._address = address
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
        a, loop = self._address, asyncio.get_running_loop()
        protocol: _RespProtocol
        if a.path is not None:
            _, protocol = await loop.create_unix_connection(_RespProtocol, a.path)
        else:
            context = ssl.create_default_context() if a.tls else None
            _, protocol = await loop.create_connection(
                _RespProtocol, a.host or "", a.port, ssl=context
            )
        try:
            for command in a.handshake():
                reply = await protocol.send(command)
                if isinstance(reply, ReplyError):
                    raise reply
        except BaseException:
            protocol.close()
            raise
        return protocol
