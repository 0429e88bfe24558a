"""Client CPU per Redis round trip: the dialer's pipelined connection (asyncio) against its
pooled anyio streams (the trio client, and asyncio's before), measured in the same run.

Each round sends ``EVALSHA`` of a tiny script (the shape of a dialer step: a few arguments,
a short array back) from 1, 16 and 200 concurrent tasks, and reports this process's CPU
per round trip (``time.process_time``; the server's CPU is not counted). Rounds alternate
the clients and each row is the median of ``--rounds``.

A second table prices :class:`~audian_async.webhooks.RedisDedupeStore` per delivery (its
``seen`` then ``remember``, 16 deliveries at a time) over the project's client and over
coredis (which serves a URL with a query option the project's client does not read).

    python benchmarks/redis_round_trip.py            # 20,000 round trips per measurement
    python benchmarks/redis_round_trip.py --quick

Needs a redis-server binary on PATH (Debian's package). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from local_redis import local_redis

from audian_async._resp_pipe import PipeClient
from audian_async._resp_wire import WireClient, address_of

SCRIPT = "return {'changed', tonumber(ARGV[1]), ARGV[2]}"


async def measure(client: Any, tasks: int, total: int) -> float:
    """CPU seconds per round trip of ``total`` script calls spread over ``tasks`` tasks."""
    sha = await client.call("SCRIPT", "LOAD", SCRIPT)

    async def worker(n: int) -> None:
        for i in range(n):
            await client.call("EVALSHA", sha, 0, i, "placing")

    await worker(200)  # warm up
    started = time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker, total // tasks)
    return (time.process_time() - started) / (total // tasks * tasks)


async def dedupe_cost(url: str, total: int) -> float:
    """CPU seconds per delivery of a RedisDedupeStore's ``seen`` + ``remember``."""
    from audian_async.webhooks import RedisDedupeStore

    async with RedisDedupeStore(url, namespace=f"bench{time.time_ns()}") as store:

        async def deliveries(first: int, n: int) -> None:
            for i in range(first, first + n):
                if not await store.seen(f"evt_{i}"):
                    await store.remember(f"evt_{i}")

        await deliveries(-200, 200)  # warm up
        tasks, per_task = 16, total // 16
        started = time.process_time()
        async with anyio.create_task_group() as tg:
            for t in range(tasks):
                tg.start_soon(deliveries, t * per_task, per_task)
        return (time.process_time() - started) / (tasks * per_task)


def clients(url: str) -> dict[str, tuple[str, Callable[[], Any]]]:
    address = address_of(url)
    assert address is not None
    return {
        "pipelined connection (asyncio)": ("asyncio", lambda: PipeClient(address)),
        "pooled streams (asyncio)": ("asyncio", lambda: WireClient(url)),
        "pooled streams (trio)": ("trio", lambda: WireClient(url)),
        # What the reply timeout (on by default) costs: the same clients without it.
        "pipelined, no timeout (asyncio)": (
            "asyncio",
            lambda: PipeClient(address, timeout=None),
        ),
        "pooled streams, no timeout (trio)": ("trio", lambda: WireClient(url, timeout=None)),
    }


def dedupe_urls(url: str) -> dict[str, str]:
    return {"the project's client": url, "coredis": url + "?socket_timeout=30"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 2_000, 1
    with local_redis() as (url, _):
        concurrency = (1, 16, 200)
        found: dict[tuple[str, int], list[float]] = {}
        dedupe: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, (backend, make) in clients(url).items():
                for tasks in concurrency:

                    async def one(make: Callable[[], Any] = make, tasks: int = tasks) -> float:
                        async with make() as client:
                            return await measure(client, tasks, args.calls)

                    cpu = anyio.run(one, backend=backend)
                    found.setdefault((name, tasks), []).append(cpu)
            for name, store_url in dedupe_urls(url).items():
                cost = anyio.run(dedupe_cost, store_url, args.calls // 4)
                dedupe.setdefault(name, []).append(cost)
    print(f"\nclient CPU per round trip, median of {args.rounds} rounds ({args.calls:,} each)")
    print("client | " + " | ".join(f"{t} tasks" for t in concurrency) + " | vs pipelined (16)")
    base = statistics.median(found[("pipelined connection (asyncio)", 16)])
    for name in clients(url):
        cells = [f"{statistics.median(found[(name, t)]) * 1e6:.1f} us" for t in concurrency]
        ratio = statistics.median(found[(name, 16)]) / base
        print(f"{name} | " + " | ".join(cells) + f" | {ratio:.2f}x")
    print("\nRedisDedupeStore CPU per delivery (seen + remember, 16 at a time, asyncio)")
    print("client | CPU per delivery | vs ours")
    ours = statistics.median(dedupe["the project's client"])
    for name, costs in dedupe.items():
        cost = statistics.median(costs)
        print(f"{name} | {cost * 1e6:.1f} us | {cost / ours:.2f}x")


if __name__ == "__main__":
    main()
