"""Dialer cost: a 10,000-call campaign against a sandbox running in another process.

Figures (all from this process; the sandbox's CPU is excluded by construction):

* wall time and peak RSS of the campaign;
* client baseline: CPU per ``calls.create`` placing the campaign's creates (every request
  once, a busy one as many times as the campaign redials it) straight with the client, same
  pool, same concurrency, same process, against a sandbox without webhooks;
* receiver baseline: the same creates again, against a sandbox delivering its webhooks to a
  ``WebhookApp`` served exactly as in the campaign (same server, same thread or loop), with a
  router holding only a counter. Its CPU beyond the client baseline is the receiver's own cost
  (uvicorn + signature check + parsing + dispatch): the webhooks package's, not the dialer's;
* dialer CPU per attempt beyond the client (and the receiver): (campaign process CPU -
  receiver-baseline CPU per create x attempts) / attempts. Everything the dialer adds is in
  it, wherever it runs: its handlers and the hand-off of events to its loop included, even
  when they run on the receiver's thread; whatever the receiver itself costs is not;
* RSS per tracked call: resident memory added while the campaign holds every item;
* pacing: a ``calls_per_second`` run, achieved vs requested pace;
* dialer alone: the same campaign against an in-process stub client and router (no HTTP,
  no receiver, no sandbox), CPU per attempt measured directly, median of three runs. The
  subtraction above takes the difference of two figures near 1.5 ms that each move by
  +-20 % on a shared machine; this one moves by a few us, so it is the figure to compare
  changes of the dialer by.

    python benchmarks/dialer_campaign.py            # 10,000 calls
    python benchmarks/dialer_campaign.py --quick    # smoke run (1,000 calls)
    python benchmarks/dialer_campaign.py --receiver thread   # receiver on a thread, as on trio

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from loopback import free_port

from audian_async import (
    AsyncAudian,
    Call,
    CallRequest,
    CheckedCallRequest,
    Dialer,
    RetryPolicy,
    SQLiteStore,
)
from audian_async._serving import serve_in_thread, serve_webhooks
from audian_async._validation import _normalize_cached
from audian_async.sandbox import generate_webhook_secret
from audian_async.webhooks import (
    CallCompleted,
    CallFailed,
    Event,
    EventRouter,
    Subscription,
    WebhookApp,
)

FROM = "+14155552671"
API_KEY = "bench-key"
CONNECTIONS = 200  # the same pool for the baselines and the campaign
RECEIVER_THREAD = "audian-webhooks"


MAX_ATTEMPTS = 3
BUSY = "+14155550101"


def numbers(count: int) -> list[str]:
    # Distinct answering numbers, one in twenty busy (redialed once or twice).
    return [
        BUSY if i % 20 == 19 else f"+1{2025550000 + i % 10_000:010d}"[:12] for i in range(count)
    ]


def requests(count: int, tag: str) -> list[CallRequest]:
    return [
        CallRequest(from_=FROM, to=to, timeout=30, max_duration=60, tags={"bench": tag})
        for to in numbers(count)
    ]


def creates(count: int, tag: str) -> list[CallRequest]:
    """The creates the campaign makes: every request once, a busy one MAX_ATTEMPTS times."""
    return [r for r in requests(count, tag) for _ in range(MAX_ATTEMPTS if r.to == BUSY else 1)]


@contextmanager
def sandbox_process(speed: float, webhook_url: str | None, secret: str) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "audian_async", "sandbox", "--port", str(port),
        "--api-key", API_KEY, "--speed", str(speed), "--max-concurrent", "1000000",
        "--webhook-secret", secret,
    ]  # fmt: skip
    if webhook_url:
        command += ["--webhook-url", webhook_url]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        proc.terminate()
        proc.wait(10)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def thread_cpu(name: str) -> float:
    for thread in threading.enumerate():
        if thread.name == name and thread.ident is not None:
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0


@asynccontextmanager
async def client_for(base_url: str, connections: int) -> AsyncIterator[AsyncAudian]:
    async with AsyncAudian(API_KEY, base_url=base_url, max_connections=connections) as client:
        yield client


async def baseline(base_url: str, count: int, concurrency: int) -> float:
    """CPU seconds per create, placing the campaign's creates straight with the client."""
    return (await _place_all(base_url, creates(count, "baseline"), concurrency, None))[0]


async def receiver_baseline(
    base_url: str, router: EventRouter, count: int, concurrency: int
) -> tuple[float, float]:
    """CPU seconds per create (and of it, in the receiver's thread) placing the campaign's
    creates with the client while a receiver handles their webhooks."""
    reqs = creates(count, "receiver")
    ended = [0]

    def count_ended(event: object) -> None:  # the only handler: counts the calls that ended
        ended[0] += 1

    router.add(count_ended, "call.completed", "call.failed", in_thread=False)
    return await _place_all(base_url, reqs, concurrency, lambda: ended[0] >= len(reqs))


async def _place_all(
    base_url: str,
    reqs: list[CallRequest],
    concurrency: int,
    finished: Callable[[], bool] | None,
) -> tuple[float, float]:
    async with client_for(base_url, CONNECTIONS) as client:
        limiter = anyio.Semaphore(concurrency)

        async def one(request: CallRequest) -> None:
            async with limiter:
                await client.calls.create(request)

        await client.calls.create(reqs[0])  # warm-up: connections, caches
        _normalize_cached.cache_clear()  # every run parses its numbers cold, whatever ran before
        gc.collect()
        cpu, recv = time.process_time(), thread_cpu(RECEIVER_THREAD)
        async with anyio.create_task_group() as tg:
            for request in reqs[1:]:
                tg.start_soon(one, request)
        if finished is not None:  # until the last webhook is handled
            # Polled: the counting handler may run on the receiver's thread.
            with anyio.fail_after(120):
                while not finished():  # noqa: ASYNC110
                    await anyio.sleep(0.02)
        cpu, recv = time.process_time() - cpu, thread_cpu(RECEIVER_THREAD) - recv
        return cpu / (len(reqs) - 1), recv / (len(reqs) - 1)


async def campaign(
    base_url: str, router: EventRouter, count: int, active: int, speed: float, db: Path
) -> dict[str, float]:
    reqs = requests(count, "campaign")
    policy = RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay=30.0, max_delay=120.0)
    async with client_for(base_url, CONNECTIONS) as client:
        dialer = Dialer(
            client,
            router,
            max_active_calls=active,
            retry=policy,
            store=SQLiteStore(db),
            campaign=f"bench-{time.time_ns()}",
            time_scale=1.0 / speed,
            # Polling is the fallback for lost webhooks; at x500 the default (call timeout +
            # max_duration + grace, scaled) would fire while deliveries are merely queued.
            poll_after=10.0,
        )
        _normalize_cached.cache_clear()  # as in the baselines
        gc.collect()
        rss0 = rss_bytes()
        peak_rss = rss0
        cpu0, recv0, wall0 = time.process_time(), thread_cpu(RECEIVER_THREAD), time.monotonic()
        async with anyio.create_task_group() as tg:

            async def sample() -> None:
                nonlocal peak_rss
                while True:
                    peak_rss = max(peak_rss, rss_bytes())
                    await anyio.sleep(0.05)

            tg.start_soon(sample)
            report = await dialer.run(reqs, keep_duplicates=True)
            peak_rss = max(peak_rss, rss_bytes())
            tg.cancel_scope.cancel()
        cpu = time.process_time() - cpu0
        recv = thread_cpu(RECEIVER_THREAD) - recv0
        wall = time.monotonic() - wall0
    return {
        "wall": wall,
        "cpu": cpu,
        "receiver_cpu": recv,
        "attempts": report.attempts,
        "completed": report.completed,
        "failed": report.failed,
        "polls": report.polls,
        "rss_growth": peak_rss - rss0,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


async def pacing(base_url: str, count: int, cps: float) -> float:
    """Achieved creates per second with ``calls_per_second=cps``."""
    reqs = requests(count, "pacing")
    async with client_for(base_url, 100) as client:
        dialer = Dialer(
            client,
            None,
            calls_per_second=cps,
            max_active_calls=10_000,
            retry=RetryPolicy(max_attempts=1),
            store=SQLiteStore(Path(tempfile.mkdtemp()) / "pace.sqlite3"),
            poll_after=0.5,
            poll_interval=0.5,
        )
        # The pace is read in the steady state, between the 10th and the 90th percentile of
        # accepted creates: the first replies carry one-off start-up costs (connections,
        # worker threads) that would make a window from the very first reply look short.
        low, high = count // 10, count - count // 10
        t_low = t_high = 0.0
        n_low = n_high = 0
        async with dialer, anyio.create_task_group() as tg:
            for request in reqs:
                await dialer.submit(request)
            while True:
                attempts = dialer.stats().attempts
                now = time.monotonic()
                if attempts >= low and not t_low:
                    t_low, n_low = now, attempts
                if attempts >= high:
                    t_high, n_high = now, attempts
                    break
                await anyio.sleep(0.002)
            tg.cancel_scope.cancel()
    return (n_high - n_low) / (t_high - t_low)


class _StubRouter(EventRouter):
    """Holds the dialer's handler; the stub client feeds it the calls' terminal events."""

    def __init__(self) -> None:
        super().__init__()
        self.handler: Callable[[Event], Awaitable[None]] | None = None

    def add(self, handler: Any, *patterns: Any, **options: Any) -> Subscription:
        self.handler = handler
        return super().add(handler, *patterns, **options)


class _StubCalls:
    """``calls.create`` answering at once; a busy number fails, every other completes."""

    def __init__(self, ended: list[Event]) -> None:
        self.ended = ended
        self.count = 0

    async def create(
        self, request: CallRequest | CheckedCallRequest, *, idempotency_key: str | None = None
    ) -> Call:
        await anyio.lowlevel.checkpoint()
        self.count += 1
        call_id = f"call-{self.count}"
        if isinstance(request, CheckedCallRequest):
            request = request.request
        busy = request.to == BUSY
        self.ended.append(
            CallFailed(call_id=call_id, reason="busy") if busy else CallCompleted(call_id=call_id)
        )
        return Call(call_id=call_id)


class _StubClient:
    default_region = None

    def __init__(self, ended: list[Event]) -> None:
        self.calls = _StubCalls(ended)


async def dialer_alone(count: int, speed: float, db_dir: Path, **options: Any) -> float:
    """CPU seconds per attempt of the campaign against the stub client (no HTTP);
    ``options`` go to the Dialer (a calling window, a suppression list...)."""
    ended: list[Event] = []
    router = _StubRouter()
    dialer = Dialer(
        _StubClient(ended),  # type: ignore[arg-type]
        router,
        max_active_calls=500,
        retry=RetryPolicy(max_attempts=MAX_ATTEMPTS, base_delay=30.0, max_delay=120.0),
        store=SQLiteStore(db_dir / f"stub-{time.time_ns()}.sqlite3"),
        time_scale=1.0 / speed,
        poll_after=10.0,
        **options,
    )
    reqs = requests(count, "stub")

    async def deliver() -> None:  # the webhooks, a millisecond after each create
        while True:
            await anyio.sleep(0.001)
            handler = router.handler
            if handler is None or not ended:  # not registered yet, or nothing ended
                continue
            batch = ended[:]
            ended.clear()
            for event in batch:
                await handler(event)

    _normalize_cached.cache_clear()  # as in the other runs
    gc.collect()
    cpu = time.process_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        report = await dialer.run(reqs, keep_duplicates=True)
        tg.cancel_scope.cancel()
    return (time.process_time() - cpu) / report.attempts


async def main_async(args: argparse.Namespace) -> None:
    count = 1_000 if args.quick else args.calls
    cps_calls = 200 if args.quick else 1_000
    secret = generate_webhook_secret()
    db = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    alone = sorted([await dialer_alone(count, args.speed, db.parent) for _ in range(3)])
    with sandbox_process(args.speed, None, secret) as plain_url:
        per_create = await baseline(plain_url, count, args.active)
        achieved = await pacing(plain_url, cps_calls, args.cps)
    serve = serve_in_thread if args.receiver == "thread" else serve_webhooks
    router = EventRouter()
    async with serve(WebhookApp(router, secret=secret)) as hook_url:
        with sandbox_process(args.speed, hook_url, secret) as url:
            with_receiver, receiver_thread = await receiver_baseline(
                url, router, count, args.active
            )
    router = EventRouter()
    async with serve(WebhookApp(router, secret=secret)) as hook_url:
        with sandbox_process(args.speed, hook_url, secret) as url:
            result = await campaign(url, router, count, args.active, args.speed, db)
    attempts = result["attempts"]
    dialer_cpu = result["cpu"] / attempts - with_receiver
    receiver = with_receiver - per_create
    rows = [
        ("calls requested", f"{count:,}", ""),
        ("attempts placed (incl. redials)", f"{attempts:,.0f}", ""),
        ("completed / failed", f"{result['completed']:,.0f} / {result['failed']:,.0f}", ""),
        ("status polls", f"{result['polls']:,.0f}", ""),
        ("wall time", f"{result['wall']:.1f} s", f"sandbox speed x{args.speed:g}"),
        ("peak RSS (process)", f"{result['peak_rss'] / 2**20:.0f} MiB", ""),
        ("client CPU per create (baseline)", f"{per_create * 1e6:.0f} us", "1.00x"),
        (
            "receiver CPU per create (baseline)",
            f"{receiver * 1e6:.0f} us",
            f"uvicorn + verify + parse; {receiver_thread * 1e6:.0f} us on its thread",
        ),
        (
            "process CPU per attempt (campaign)",
            f"{result['cpu'] / attempts * 1e6:.0f} us",
            f"{result['cpu'] / attempts / per_create:.2f}x client; "
            f"{result['receiver_cpu'] / attempts * 1e6:.0f} us on the receiver's thread",
        ),
        (
            "dialer CPU per attempt beyond client",
            f"{dialer_cpu * 1e6:.0f} us",
            "and beyond the receiver; target <= 100 us",
        ),
        (
            "dialer CPU per attempt, alone",
            f"{alone[1] * 1e6:.0f} us",
            f"stub client, no HTTP; median of 3 ({alone[0] * 1e6:.0f}-{alone[2] * 1e6:.0f} us)",
        ),
        (
            "RSS per tracked call",
            f"{result['rss_growth'] / count / 1024:.2f} KiB",
            "target <= 5 KiB",
        ),
        (
            "pacing: requested / achieved",
            f"{args.cps:g} / {achieved:.1f} calls/s",
            f"{(achieved / args.cps - 1) * 100:+.1f}% (target within 5%)",
        ),
    ]
    kind = "quick" if args.quick else "full"
    print_table(f"dialer campaign benchmark ({kind}, receiver on {args.receiver})", rows)


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print ``(metric, value, note)`` rows under ``title``, aligned."""
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"\n{title}")
    print(f"{'metric':<{width}}  {'value':>{vwidth}}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (1,000 calls)")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=500, help="max_active_calls")
    parser.add_argument("--speed", type=float, default=500.0, help="sandbox speed")
    parser.add_argument("--cps", type=float, default=200.0, help="pace for the pacing run")
    parser.add_argument(
        "--receiver",
        choices=("loop", "thread"),
        default="loop",
        help="serve webhooks on the dialer's loop (serve_webhooks) or on a thread (as on trio)",
    )
    args = parser.parse_args()
    anyio.run(main_async, args)


if __name__ == "__main__":
    main()
