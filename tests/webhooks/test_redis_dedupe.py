"""RedisDedupeStore against a real redis-server: replicas share which deliveries ran."""

from __future__ import annotations

import gc
import os
import signal

import anyio
import httpx
import pytest

from audian_async import AudianError, ValidationError
from audian_async.webhooks import EventRouter, RedisDedupeStore, WebhookApp

from ..loopback import free_port
from ..redis_server import redis_process
from ._support import SECRET, delivery, serve

pytestmark = pytest.mark.anyio


def _counting_app(store: RedisDedupeStore, runs: list[str]) -> WebhookApp:
    router = EventRouter()

    @router.on("call.failed")
    async def count(event: object) -> None:
        runs.append("ran")

    return WebhookApp(router, secret=SECRET, dedupe_store=store)


async def test_a_redelivery_to_another_replica_does_not_run_handlers_again(
    redis_url: str, ns: str
) -> None:
    runs: list[str] = []
    body, headers = delivery(msg_id="msg_shared_1")
    async with (
        RedisDedupeStore(redis_url, namespace=ns) as first_store,
        RedisDedupeStore(redis_url, namespace=ns) as second_store,
    ):
        replicas = [_counting_app(first_store, runs), _counting_app(second_store, runs)]
        statuses = []
        for app in replicas:  # the delivery, then its redelivery on the other replica
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
                statuses.append((await http.post("/", content=body, headers=headers)).status_code)
        assert runs == ["ran"]
        assert statuses[0] in range(200, 300)
        assert statuses[1] in range(200, 300)
        # Another namespace (another service on the same Redis) shares nothing.
        async with RedisDedupeStore(redis_url, namespace=ns + "-other") as other:
            assert not await other.seen("msg_shared_1")
            assert await first_store.seen("msg_shared_1")


async def test_keys_expire_and_are_bounded_in_size(redis_url: str, ns: str) -> None:
    import coredis

    async with RedisDedupeStore(redis_url, namespace=ns, ttl=600) as store:
        await store.remember("x" * 10_000)  # a sender-chosen id cannot make a large key
        async with coredis.Redis.from_url(redis_url) as raw:
            keys = await raw.keys(f"{ns}:*")
            assert len(keys) == 1
            (key,) = keys
            assert len(key) < 64
            ttl = await raw.pttl(key)
            assert 0 < ttl <= 600_000


async def test_the_lifespan_opens_the_store_under_uvicorn(redis_url: str, ns: str) -> None:
    runs: list[str] = []
    store = RedisDedupeStore(redis_url, namespace=ns)
    app = _counting_app(store, runs)
    body, headers = delivery(msg_id="msg_lifespan")
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(2):
                reply = await http.post("/", content=body, headers=headers)
                assert reply.status_code in range(200, 300)
    assert runs == ["ran"]
    assert not store.is_open  # left at shutdown


# coredis (6.9) leaves a memory stream of a pool that never connected for the garbage
# collector, which warns: collect it here, where that warning is expected.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_an_unreachable_redis_is_a_clear_error() -> None:
    store = RedisDedupeStore(f"redis://:secret-password@127.0.0.1:{free_port()}/0")
    with pytest.raises(AudianError, match="cannot reach Redis") as info:
        async with store:
            pass
    assert "secret-password" not in str(info.value)
    assert "secret-password" not in repr(store)
    del info
    gc.collect()


async def test_a_redis_that_stops_answering_fails_a_delivery_after_its_timeout_only() -> None:
    # A stopped process (SIGSTOP) closes no connection: without a timeout the delivery
    # would wait for ever; with one, the store fails, and the app answers 500 without
    # running the handlers, so the sender delivers it again. (1 s: long enough that a
    # loaded machine's real replies, after the stop, are never taken for silence.)
    runs: list[str] = []
    body, headers = delivery(msg_id="msg_frozen")
    with redis_process() as server:
        assert server.process is not None
        pid = server.process.pid
        async with RedisDedupeStore(server.url, namespace="frozen", timeout=1.0) as store:
            transport = httpx.ASGITransport(app=_counting_app(store, runs))
            async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
                os.kill(pid, signal.SIGSTOP)
                try:
                    with anyio.fail_after(10):
                        response = await http.post("/", content=body, headers=headers)
                finally:
                    os.kill(pid, signal.SIGCONT)
                assert response.status_code == 500
                assert runs == []
                # Redis is back: the redelivery runs the handlers, and the next is known.
                statuses = [
                    (await http.post("/", content=body, headers=headers)).status_code
                    for _ in range(2)
                ]
                assert all(s in range(200, 300) for s in statuses)
                assert runs == ["ran"]
                assert await store.seen("msg_frozen")


def test_bad_settings_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="url"):
        RedisDedupeStore("http://127.0.0.1:6379")
    with pytest.raises(ValidationError, match="ttl"):
        RedisDedupeStore(ttl=0)
    with pytest.raises(ValidationError, match="namespace"):
        RedisDedupeStore(namespace="has space")


async def test_using_it_unopened_says_how_to_open_it() -> None:
    with pytest.raises(RuntimeError, match="async with RedisDedupeStore"):
        await RedisDedupeStore().seen("k")


async def test_a_url_only_coredis_reads_is_served_by_coredis(redis_url: str, ns: str) -> None:
    async with (
        RedisDedupeStore(redis_url + "?socket_timeout=5", namespace=ns) as by_coredis,
        RedisDedupeStore(redis_url, namespace=ns) as ours,
    ):
        assert not await by_coredis.seen("evt_1")
        await ours.remember("evt_1")
        assert await by_coredis.seen("evt_1")  # the same keys, whichever client wrote them
        await by_coredis.remember("evt_2")
        assert await ours.seen("evt_2")
