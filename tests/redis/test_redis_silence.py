"""A Redis that stops answering without closing anything (a stopped process, a host or a
network gone silent) is an error after the client's timeout, like a refused connection,
never a wait without end: the clients of the dialer and of the webhook dedupe store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from audian_async import AudianError, RedisStore, ValidationError
from audian_async._resp_pipe import PipeClient
from audian_async._resp_wire import WireClient, address_of, resp_client
from audian_async.webhooks import RedisDedupeStore

from ..loopback import until

pytestmark = pytest.mark.anyio


class Silent:
    """A TCP server on loopback that reads every command and answers none."""

    def __init__(self, port: int) -> None:
        self.url = f"redis://127.0.0.1:{port}/0"
        self.received = 0
        self.closed = 0  # connections the client gave up (closed on its side)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                while True:
                    self.received += len(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self.closed += 1


@asynccontextmanager
async def silent_server() -> AsyncIterator[Silent]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server = Silent(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


async def test_pooled_streams_give_a_silent_connection_up_after_their_timeout() -> None:
    async with silent_server() as server, WireClient(server.url, timeout=0.2) as client:
        with anyio.fail_after(10), pytest.raises(TimeoutError, match=r"no reply .* in 0.2 s"):
            await client.call("PING")
        assert server.received > 0  # the command was sent, and never answered
        await until(lambda: server.closed == 1)  # its connection is not reused


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_pipelined_connection_gives_up_every_waiter_after_its_timeout() -> None:
    async with silent_server() as server:
        address = address_of(server.url)
        assert address is not None
        async with PipeClient(address, timeout=0.2) as client:
            errors: list[BaseException] = []

            async def ping() -> None:
                try:
                    await client.call("PING")
                except ConnectionError as exc:
                    errors.append(exc)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for _ in range(3):  # three waiters on the one connection
                        tg.start_soon(ping)
            assert len(errors) == 3
            assert all("no reply from Redis in 0.2 s" in str(e) for e in errors)
            await until(lambda: server.closed == 1)
            with anyio.fail_after(10), pytest.raises(ConnectionError):
                await client.call("PING")  # a new connection, as silent
            await until(lambda: server.closed == 2)


async def test_a_handshake_without_answer_is_no_connection_after_the_timeout() -> None:
    async with silent_server() as server:
        url = server.url.replace("redis://", "redis://:secret@")  # AUTH first
        client = resp_client(url, timeout=0.2)
        assert client is not None
        async with client:
            with anyio.fail_after(10), pytest.raises(TimeoutError, match="no connection"):
                await client.call("PING")


async def test_a_silent_redis_is_unreachable_to_the_dedupe_store() -> None:
    async with silent_server() as server:
        store = RedisDedupeStore(server.url, timeout=0.2)
        with anyio.fail_after(10), pytest.raises(AudianError, match="cannot reach Redis"):
            async with store:
                pass


def test_the_timeout_is_checked_when_the_store_is_made() -> None:
    for bad in (0, -1.0, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValidationError, match="timeout"):
            RedisStore(timeout=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="timeout"):
            RedisDedupeStore(timeout=bad)  # type: ignore[arg-type]
    assert RedisStore(timeout=2).timeout == RedisDedupeStore(timeout=2).timeout == 2.0
