"""The pipelined RESP client of the dialer on asyncio, against a real redis-server: many
tasks on one connection, a cancelled waiter, a lost connection."""

from __future__ import annotations

import anyio
import pytest

from audian_async._resp_pipe import PipeClient
from audian_async._resp_wire import ReplyError, WireClient, address_of

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["asyncio"])]


def pipe(redis_url: str) -> PipeClient:
    address = address_of(redis_url)
    assert address is not None
    return PipeClient(address)


async def blocked_clients(observer: WireClient) -> int:
    info: str = await observer.call("INFO", "clients")
    line = next(x for x in info.splitlines() if x.startswith("blocked_clients:"))
    return int(line.partition(":")[2])


async def until_blocked(observer: WireClient, count: int) -> None:
    with anyio.fail_after(10):
        while await blocked_clients(observer) != count:  # noqa: ASYNC110 - the server's state
            await anyio.sleep(0.005)


async def test_many_tasks_share_one_connection_each_getting_its_own_reply(
    redis_url: str, ns: str
) -> None:
    replies: dict[int, list[object]] = {}

    async def one(client: PipeClient, i: int) -> None:
        key = f"{ns}:k{i}"
        replies[i] = [
            await client.call("SET", key, f"v{i}"),
            await client.call("GET", key),
            await client.call("INCRBY", f"{ns}:n", i),
            await client.call("DEL", key),
        ]

    async with pipe(redis_url) as client:
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, client, i)
        assert await client.call("GET", f"{ns}:n") == str(sum(range(200)))
        with pytest.raises(ReplyError, match="unknown command"):
            await client.call("NOSUCHCOMMAND")
        assert await client.call("PING") == "PONG"
    assert all(r[0] == "OK" and r[1] == f"v{i}" and r[3] == 1 for i, r in replies.items())


async def test_a_waiter_cancelled_before_its_reply_leaves_the_connection_in_step(
    redis_url: str, ns: str
) -> None:
    queue = f"{ns}:q"
    async with pipe(redis_url) as client, WireClient(redis_url) as observer:
        base = await blocked_clients(observer)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call, "BLPOP", queue, 0)
            await until_blocked(observer, base + 1)
            tg.cancel_scope.cancel()
        # The pop's reply comes once the list has an element, and is dropped: the next
        # replies are the next commands'.
        await observer.call("RPUSH", queue, "x")
        assert await client.call("SET", f"{ns}:after", "1") == "OK"
        assert await client.call("GET", f"{ns}:after") == "1"
        assert await observer.call("LLEN", queue) == 0  # the cancelled pop did take it


async def test_a_lost_connection_fails_its_waiters_and_the_next_call_reconnects(
    redis_url: str, ns: str
) -> None:
    async with pipe(redis_url) as client, WireClient(redis_url) as observer:
        assert await client.call("CLIENT", "SETNAME", f"{ns}-pipe") == "OK"
        base = await blocked_clients(observer)
        failures: list[BaseException] = []

        async def pop() -> None:
            try:
                await client.call("BLPOP", f"{ns}:never", 0)
            except ConnectionError as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(pop)
            await until_blocked(observer, base + 1)
            clients: str = await observer.call("CLIENT", "LIST")
            [line] = [x for x in clients.splitlines() if f"name={ns}-pipe" in x]
            client_id = line.split()[0].partition("=")[2]
            assert await observer.call("CLIENT", "KILL", "ID", client_id) == 1
        assert len(failures) == 1
        assert await client.call("PING") == "PONG"  # a new connection


async def test_a_closed_client_refuses_commands(redis_url: str) -> None:
    client = pipe(redis_url)
    async with client:
        assert await client.call("PING") == "PONG"
    with pytest.raises(ConnectionError):
        await client.call("PING")
