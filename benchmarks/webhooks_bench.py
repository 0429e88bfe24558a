"""Webhook receiving: audian_async.webhooks against the usual ways of doing the same work.

(a) In process, per event: verify the signature, parse the body into a typed event and
    dispatch it to one async handler, over the same pre-signed deliveries (all six event
    types, unique ids). Variants:

    * ``audian_async``              ``verify`` + ``parse_event`` + ``EventRouter.dispatch``
    * ``standardwebhooks+pydantic`` ``Webhook.verify`` (parses JSON) + a pydantic v2
                                    discriminated union + a dict of handlers
    * ``standardwebhooks+msgspec``  ``Webhook.verify(json_parse=False)`` + ``msgspec`` tagged
                                    union decode + a dict of handlers

(c) In process, the ASGI app itself: CPU per delivery of ``WebhookApp.__call__`` (default
    settings, and ``handler_timeout=None``) against a bare ASGI callable that reads the body
    and answers 204, over the same scopes: what the endpoint adds to any server; and an
    inline floor (the verifier and the parser called directly, a dict for dedupe, the
    handler awaited directly), what the same work costs without the app's bookkeeping.

(d) With ``--cold MB``: (c) again with MB of memory copied between deliveries (outside the
    measured time), for what the same Python work costs with the caches a server's own work
    leaves it: why an app adds more under a server than in (c).

(b) Over HTTP, events/s and the server process's own CPU per delivery (Linux schedstat,
    every thread, over the measured deliveries only): each server runs uvicorn (httptools,
    uvloop when installed; ``BENCH_UVICORN_LOOP=asyncio`` for the stdlib loop) in its own
    process and one load-generator process (aiohttp, fixed concurrency, a bounded number of
    signed deliveries with unique ids) drives it after a warm-up. Servers:

    * ``bare ASGI 200``        reads the body, answers 200 (the ceiling)
    * ``bare ASGI 204``        the same, answering 204 as WebhookApp does
    * ``HMAC + JSON only``     one HMAC compared with the header, one JSON decode, the
                               handler awaited: no checks, no typed event, no dedupe
    * ``inline floor``         the in-process floor of (c) served: our verifier and parser
                               called directly, a dict for dedupe, no bookkeeping
    * ``WebhookApp``           audian_async.webhooks.WebhookApp with one async handler
                               (``BENCH_WEBHOOKAPP_OPTIONS='{"handler_timeout": null}'`` to
                               pass it other settings)
    * ``WebhookApp + client``  the same in a process that has also loaded the client and the
                               dialer, as a service that places calls and receives their
                               webhooks does: a larger heap for the garbage collector
    * ``FastAPI endpoint``     standardwebhooks verify + pydantic parse + dispatch in a route

Each figure is the median of ``--repeats`` runs, interleaved so that noise from a shared
machine spreads over all variants alike; a ratio is the median of the ratios within each
round. Only 127.0.0.1 is contacted.

    python benchmarks/webhooks_bench.py            # full run (about two minutes)
    python benchmarks/webhooks_bench.py --quick    # smoke test
    python benchmarks/webhooks_bench.py --cold 8   # and (d): (c) with 8 MB copied between
                                                   # deliveries, the caches a server leaves
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _webhook_apps import (
    SECRET,
    bare_asgi,
    build_app,
    inline_floor,
    make_deliveries,
)
from _webhook_peers import TYPES, msgspec_decoder, pydantic_adapter
from loopback import free_port

HERE = Path(__file__).resolve()


# --- (a) in process ----------------------------------------------------------------------


async def inprocess_variant(name: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> float:
    """Seconds per event for one variant over ``deliveries``."""
    count = 0

    async def handler(event: Any) -> None:
        nonlocal count
        count += 1

    if name == "audian_async":
        from audian_async.webhooks import EventRouter, decode_secret, parse_event, verify

        key = decode_secret(SECRET)
        router = EventRouter()
        router.add(handler, "*")

        async def handle(body: bytes, headers: dict[str, str]) -> None:
            verify(key, headers, body)
            await router.dispatch(parse_event(body))

    else:
        import standardwebhooks

        wh = standardwebhooks.Webhook(SECRET)
        handlers: dict[str, list[Any]] = {t: [handler] for t in TYPES}
        if name == "standardwebhooks+pydantic":
            adapter = pydantic_adapter()

            async def handle(body: bytes, headers: dict[str, str]) -> None:
                event = adapter.validate_python(wh.verify(body, headers))
                for h in handlers.get(event.event, ()):
                    await h(event)

        else:
            decoder = msgspec_decoder()

            async def handle(body: bytes, headers: dict[str, str]) -> None:
                wh.verify(body, headers, json_parse=False)
                event = decoder.decode(body)
                for h in handlers.get(event.__struct_config__.tag, ()):
                    await h(event)

    for body, headers in deliveries[:200]:  # warm-up
        await handle(body, headers)
    count = 0
    start = time.perf_counter()
    for body, headers in deliveries:
        await handle(body, headers)
    elapsed = time.perf_counter() - start
    assert count == len(deliveries), (name, count)
    return elapsed / len(deliveries)


INPROCESS = ["audian_async", "standardwebhooks+pydantic", "standardwebhooks+msgspec"]


def run_inprocess(n: int, repeats: int) -> dict[str, float]:
    deliveries = make_deliveries(n)
    results: dict[str, list[float]] = {v: [] for v in INPROCESS}
    for _ in range(repeats):
        for variant in INPROCESS:
            results[variant].append(asyncio.run(inprocess_variant(variant, deliveries)))
    return {v: statistics.median(r) for v, r in results.items()}


# --- (c) in process, the ASGI app itself ---------------------------------------------------


def asgi_requests(
    deliveries: list[tuple[bytes, dict[str, str]]],
) -> list[tuple[dict[str, Any], Any]]:
    """An ASGI scope and a ``receive`` per delivery, as a server would hand them over."""
    out = []
    for body, headers in deliveries:
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "method": "POST", "path": "/", "root_path": "", "headers": raw}
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive(message: dict[str, Any] = message) -> dict[str, Any]:
            return message

        out.append((scope, receive))
    return out


ASGI = [
    "bare ASGI callable",
    "verify_parts + parse_event inline (floor)",
    "WebhookApp",
    "WebhookApp(handler_timeout=None)",
]


async def asgi_variant(
    name: str, requests: list[tuple[dict[str, Any], Any]], evict: int = 0
) -> float:
    """CPU seconds per request for one ASGI app over ``requests``; with ``evict`` bytes of
    memory copied between requests (outside the measured time), as cold as a server's own
    work between deliveries leaves the caches."""
    from audian_async.webhooks import EventRouter, WebhookApp

    router = EventRouter()

    @router.on("*")
    async def handler(event: Any) -> None:
        pass

    app: Any = bare_asgi
    if name == "WebhookApp":
        app = WebhookApp(router, secret=SECRET)
    elif name.endswith("(floor)"):
        app = inline_floor(handler)
    elif name != "bare ASGI callable":
        app = WebhookApp(router, secret=SECRET, handler_timeout=None)
    statuses = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for scope, receive in requests[:200]:  # warm-up (ids seen again later are duplicates:
        await app(scope, receive, send)  # the measured pass uses fresh apps' stores)
    if name.endswith("(floor)"):
        app = inline_floor(handler)
    elif name != "bare ASGI callable":
        app = WebhookApp(router, secret=SECRET, handler_timeout=app.handler_timeout)
    statuses.clear()
    if evict:
        elapsed = await cold_pass(app, send, requests, evict)
    else:
        start = time.process_time()
        for scope, receive in requests:
            await app(scope, receive, send)
        elapsed = time.process_time() - start
    assert statuses == [204] * len(requests), (name, set(statuses))
    return elapsed / len(requests)


async def cold_pass(
    app: Any, send: Any, requests: list[tuple[dict[str, Any], Any]], evict: int
) -> float:
    """CPU seconds over ``requests``, each timed alone after ``evict`` bytes were copied
    (a memmove, no allocation: the caches are refilled with other data, nothing else)."""
    source, target = bytearray(b"\x01") * evict, bytearray(evict)
    clock = time.process_time
    elapsed = 0.0
    for scope, receive in requests:
        target[:] = source
        start = clock()
        await app(scope, receive, send)
        elapsed += clock() - start
    return elapsed


def run_asgi(n: int, repeats: int, evict: int = 0) -> dict[str, float]:
    requests = asgi_requests(make_deliveries(n, prefix="asgi"))
    results: dict[str, list[float]] = {v: [] for v in ASGI}
    for _ in range(repeats):
        for variant in ASGI:
            results[variant].append(asyncio.run(asgi_variant(variant, requests, evict)))
    return {v: statistics.median(r) for v, r in results.items()}


# --- (b) over HTTP -------------------------------------------------------------------------


def serve(kind: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        build_app(kind),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop=os.environ.get("BENCH_UVICORN_LOOP", "auto"),  # uvloop when installed
        lifespan="on",
    )


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used so far, all threads, in seconds (Linux: schedstat's ns)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


async def load(
    url: str, n: int, concurrency: int, warmup: int, server_pid: int
) -> dict[str, float]:
    import aiohttp

    deliveries = make_deliveries(n + warmup, prefix=f"m{os.getpid()}")
    statuses: dict[int, int] = {}

    async def drive(batch: list[tuple[bytes, dict[str, str]]]) -> None:
        queue = iter(batch)

        async def worker() -> None:
            for body, headers in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await drive(deliveries[:warmup])
        statuses.clear()
        cpu = cpu_seconds(server_pid)
        start = time.perf_counter()
        await drive(deliveries[warmup:])
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server_pid) - cpu
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    if ok != n:
        raise RuntimeError(f"unexpected statuses {statuses}")
    return {"events_per_s": n / elapsed, "server_cpu_us": cpu / n * 1e6}


def run_http_once(kind: str, n: int, concurrency: int) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(HERE), "--serve", kind, "--port", str(port)],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        result = subprocess.run(
            [sys.executable, str(HERE), "--load", f"http://127.0.0.1:{port}/",
             "--n", str(n), "--concurrency", str(concurrency),
             "--server-pid", str(server.pid)],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
        figures: dict[str, float] = json.loads(result.stdout)
        return figures
    finally:
        server.terminate()
        server.wait(15)


HTTP = {
    "bare": "bare ASGI 200",
    "bare204": "bare ASGI 204",
    "minimal": "HMAC + JSON only",
    "floor": "inline floor",
    "webhookapp": "WebhookApp",
    "webhookapp_loaded": "WebhookApp + client",
    "fastapi": "FastAPI endpoint",
}


def run_http(n: int, concurrency: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median figures per server, and WebhookApp's CPU ratio to each server as the median
    of the ratios within each round (one round runs every server once, back to back): on a
    shared machine a slow stretch then weighs on both sides of a ratio alike."""
    results: dict[str, list[dict[str, float]]] = {k: [] for k in HTTP}
    for _ in range(repeats):
        for kind in HTTP:
            results[kind].append(run_http_once(kind, n, concurrency))
    ours = [r["server_cpu_us"] for r in results["webhookapp"]]
    summary: dict[str, dict[str, float]] = {}
    for kind, runs in results.items():
        ratios = [a / r["server_cpu_us"] for a, r in zip(ours, runs, strict=True)]
        summary[kind] = {f: statistics.median(r[f] for r in runs) for f in runs[0]}
        summary[kind]["ratio"] = statistics.median(ratios)
    return summary


# --- report -------------------------------------------------------------------------------


def print_tables(
    inproc: dict[str, float],
    asgi: dict[str, float],
    cold: dict[str, float],
    http: dict[str, dict[str, float]],
    args: Any,
) -> None:
    ours = inproc["audian_async"]
    print(f"\n(a) verify + parse + dispatch, in process ({args.n_inprocess} events, "
          f"median of {args.repeats})")  # fmt: skip
    print(f"| {'variant':<28} | {'us/event':>9} | {'events/s':>10} | {'vs audian_async':>15} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 12}|{'-' * 17}|")
    for name, per in inproc.items():
        print(f"| {name:<28} | {per * 1e6:>9.1f} | {1 / per:>10,.0f} | {per / ours:>14.2f}x |")
    floor = asgi["bare ASGI callable"]
    print(f"\n(c) the ASGI app called in process, CPU per delivery ({args.n_inprocess} "
          f"deliveries, median of {args.repeats})")  # fmt: skip
    print(f"| {'app':<43} | {'CPU us':>7} | {'over bare':>10} |")
    print(f"|{'-' * 45}|{'-' * 9}|{'-' * 12}|")
    for name, per in asgi.items():
        print(f"| {name:<43} | {per * 1e6:>7.1f} | {(per - floor) * 1e6:>+8.1f}us |")
    if cold:
        cold_floor = cold["bare ASGI callable"]
        print(f"\n(d) the same, cold: {args.cold} MB copied between deliveries, outside the "
              f"measured time ({args.n_cold} deliveries, median of {args.repeats}; each "
              "delivery timed alone, so a timer call more per delivery than in (c))")  # fmt: skip
        print(f"| {'app':<43} | {'CPU us':>7} | {'over bare':>10} | {'vs hot (c)':>10} |")
        print(f"|{'-' * 45}|{'-' * 9}|{'-' * 12}|{'-' * 12}|")
        for name, per in cold.items():
            over = (per - cold_floor) * 1e6
            print(f"| {name:<43} | {per * 1e6:>7.1f} | {over:>+8.1f}us | "
                  f"{per / asgi[name]:>9.2f}x |")  # fmt: skip
    loop = os.environ.get("BENCH_UVICORN_LOOP", "auto")
    print(f"\n(b) over HTTP under uvicorn (httptools, loop={loop}; {args.n_http} deliveries, "
          f"concurrency {args.concurrency}, median of {args.repeats}); server CPU: its "
          "process's; ratios: median of each round's")  # fmt: skip
    head = f"| {'server':<20} | {'events/s':>9} | {'server CPU us':>13} |"
    print(head + f" {'WebhookApp CPU vs this':>22} |")
    print(f"|{'-' * 22}|{'-' * 11}|{'-' * 15}|{'-' * 24}|")
    for kind, label in HTTP.items():
        row = http[kind]
        rate, cpu, ratio = row["events_per_s"], row["server_cpu_us"], row["ratio"]
        print(f"| {label:<20} | {rate:>9,.0f} | {cpu:>13.1f} | {ratio:>21.2f}x |")
    bare = http["bare"]["ratio"]
    fastapi = http["fastapi"]["ratio"]
    extra = (asgi["WebhookApp"] - floor) * 1e6
    print(f"\nWebhookApp server CPU = {bare:.2f}x the bare app's (target <= 1.25x), "
          f"{fastapi:.2f}x the FastAPI endpoint's (target <= 0.5x); in process "
          f"{extra:+.1f} us over a bare ASGI callable (target <= 8 us)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-inprocess", type=int, default=20_000)
    parser.add_argument("--n-http", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--cold",
        type=int,
        default=0,
        metavar="MB",
        help="also time (c) with MB of memory copied between deliveries (e.g. 8)",
    )
    parser.add_argument("--n-cold", type=int, default=2_000)
    parser.add_argument("--serve", choices=list(HTTP), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.load:
        figures = load(args.load, args.n, args.concurrency, warmup=300, server_pid=args.server_pid)
        print(json.dumps(asyncio.run(figures)))
        return 0
    if args.quick:
        args.repeats, args.n_inprocess, args.n_http, args.n_cold = 1, 2_000, 500, 200
    inproc = run_inprocess(args.n_inprocess, args.repeats)
    asgi = run_asgi(args.n_inprocess, args.repeats)
    cold = run_asgi(args.n_cold, args.repeats, args.cold << 20) if args.cold > 0 else {}
    http = run_http(args.n_http, args.concurrency, args.repeats)
    print_tables(inproc, asgi, cold, http, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
