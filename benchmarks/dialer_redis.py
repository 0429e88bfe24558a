"""Scale-out cost: one campaign shared by 1, 2 and 4 dialer processes through Redis, next to
one process on the embedded SQLite store, measured in the same run.

Each configuration dials the same 10,000-call campaign (one number in twenty busy, so
redialed) on a sandbox in its own process at speed x500; the first worker also serves the
campaign's webhooks (the sandbox delivers to it alone), so the others learn outcomes from
Redis, as replicas behind a load balancer would. Per configuration:

* wall time and aggregate creates per second;
* Redis round trips per attempt (counted by the client, background work included) and
  commands the server executed per attempt (INFO commandstats, inside scripts included);
* each worker's own CPU per create it sent, the receiving worker's and the others' apart,
  and all workers' CPU per attempt against the embedded mode's;
* (the limit holding across processes is asserted by the tests, from the sandbox's side).

    python benchmarks/dialer_redis.py            # 10,000 calls
    python benchmarks/dialer_redis.py --quick    # smoke run (1,000 calls)
    python benchmarks/dialer_redis.py --calls 3000 --rounds 5

Needs a redis-server binary on PATH (Debian's package). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from audian_async import AsyncAudian, Dialer, RedisStore, RetryPolicy, SQLiteStore
from audian_async._serving import serve_webhooks
from audian_async.dialer._redis_connection import RedisConnection
from audian_async.webhooks import EventRouter, WebhookApp

sys.path.insert(0, str(Path(__file__).parent))
from dialer_campaign import API_KEY, MAX_ATTEMPTS, requests, sandbox_process
from local_redis import local_redis
from loopback import free_port

from audian_async.sandbox import generate_webhook_secret

# --- one worker (a process of its own) ---------------------------------------------------


async def worker(args: argparse.Namespace) -> None:
    reqs = requests(args.calls, "bench")
    policy = RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay=30.0, max_delay=120.0)
    router = EventRouter()
    store: RedisStore | SQLiteStore
    if args.redis:
        store = RedisStore(args.redis, namespace=args.namespace, lease=30.0)
    else:
        store = SQLiteStore(Path(tempfile.mkdtemp()) / "bench.sqlite3")
    placed = [0]  # creates this worker sent
    async with AsyncAudian(API_KEY, base_url=args.api, max_connections=200) as client:
        client.calls.create = _counting(client.calls.create, placed)  # type: ignore[method-assign]
        dialer = Dialer(
            client,
            router,
            max_active_calls=args.active,
            retry=policy,
            store=store,
            time_scale=1.0 / args.speed,
            poll_after=10.0,
        )
        cpu0, wall0 = time.process_time(), time.monotonic()
        if args.webhook_port:
            app = WebhookApp(router, secret=args.secret)
            async with serve_webhooks(app, "127.0.0.1", args.webhook_port, path="/"):
                print("listening", flush=True)
                report = await dialer.run(reqs, campaign=args.campaign, keep_duplicates=True)
        else:
            print("listening", flush=True)
            report = await dialer.run(reqs, campaign=args.campaign, keep_duplicates=True)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    result = {
        "cpu": cpu,
        "wall": wall,
        "creates": placed[0],
        "attempts": report.attempts,
        "completed": report.completed,
        "round_trips": RedisConnection.total_round_trips,
        "receiver": bool(args.webhook_port),
    }
    print(json.dumps(result), flush=True)


def _counting(create: Any, placed: list[int]) -> Any:
    async def counted(*a: Any, **k: Any) -> Any:
        placed[0] += 1
        return await create(*a, **k)

    return counted


# --- the conductor -------------------------------------------------------------------------


def redis_commands(port: int) -> int:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "commandstats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(
        int(part.split("=")[1])
        for line in out.splitlines()
        if line.startswith("cmdstat_")
        for part in line.split(":")[1].split(",")
        if part.startswith("calls=")
    )


def run_config(
    args: argparse.Namespace, workers: int, redis_url: str | None, redis_port: int | None
) -> dict[str, Any]:
    secret = generate_webhook_secret()
    port = free_port()
    namespace = f"bench{time.time_ns()}"
    campaign = f"bench-{workers}-{time.time_ns()}"
    with sandbox_process(args.speed, f"http://127.0.0.1:{port}/", secret) as api:
        base = [
            sys.executable, __file__, "--worker", "--api", api, "--calls", str(args.calls),
            "--active", str(args.active), "--speed", str(args.speed), "--campaign", campaign,
            "--namespace", namespace, "--secret", secret,
        ]  # fmt: skip
        if redis_url:
            base += ["--redis", redis_url]
        before = redis_commands(redis_port) if redis_port else 0
        started = time.monotonic()
        processes = []
        for i in range(workers):
            command = base + (["--webhook-port", str(port)] if i == 0 else [])
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "listening"
            processes.append(process)
        results = []
        for process in processes:
            out, _ = process.communicate(timeout=1800)
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.monotonic() - started
        commands = (redis_commands(redis_port) - before) if redis_port else 0
    attempts = results[0]["attempts"]
    return {
        "workers": workers,
        "redis": bool(redis_url),
        "wall": wall,
        "attempts": attempts,
        "creates_per_s": attempts / wall,
        "round_trips": sum(r["round_trips"] for r in results) / attempts,
        "commands": commands / attempts,
        "cpu_receiver": results[0]["cpu"] / max(1, results[0]["creates"]),
        "cpu_others": (
            sum(r["cpu"] for r in results[1:]) / max(1, sum(r["creates"] for r in results[1:]))
            if workers > 1
            else None
        ),
        "cpu_all": sum(r["cpu"] for r in results) / attempts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (1,000 calls)")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=500, help="max_active_calls")
    parser.add_argument("--speed", type=float, default=500.0, help="sandbox speed")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--campaign", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, args)
        return
    if args.quick:
        args.calls, args.rounds = 1_000, 1
    with local_redis() as (url, redis_port):
        configs: list[tuple[int, str | None, int | None]] = [(1, None, None)]
        configs += [(workers, url, redis_port) for workers in (1, 2, 4)]
        # Rounds interleave the configurations, so that a noisy minute hits them all alike;
        # each row is the round with the median CPU per attempt of its configuration.
        runs: list[list[dict[str, Any]]] = [[] for _ in configs]
        for _ in range(args.rounds):
            for runs_of, config in zip(runs, configs, strict=True):
                runs_of.append(run_config(args, *config))
        rows = [sorted(r, key=lambda row: row["cpu_all"])[len(r) // 2] for r in runs]
    base_cpu = rows[0]["cpu_all"]
    print(f"\nscale-out benchmark: {args.calls:,} calls, max_active_calls={args.active}, "
          f"sandbox x{args.speed:g}, median of {args.rounds} interleaved rounds")  # fmt: skip
    header = (
        "mode", "wall s", "creates/s", "RT/attempt", "cmds/attempt",
        "CPU/attempt (receiver)", "CPU/attempt (others)", "vs embedded",
    )  # fmt: skip
    print(" | ".join(header))
    for row in rows:
        mode = f"redis x{row['workers']}" if row["redis"] else "embedded SQLite"
        others = "-" if row["cpu_others"] is None else f"{row['cpu_others'] * 1e6:.0f} us"
        print(
            " | ".join(
                [
                    mode,
                    f"{row['wall']:.1f}",
                    f"{row['creates_per_s']:.0f}",
                    f"{row['round_trips']:.2f}" if row["redis"] else "-",
                    f"{row['commands']:.1f}" if row["redis"] else "-",
                    f"{row['cpu_receiver'] * 1e6:.0f} us",
                    others,
                    f"{row['cpu_all'] / base_cpu:.2f}x",
                ]
            )
        )


if __name__ == "__main__":
    main()
