"""Client CPU per ``calls.create``: audian_async against raw HTTP clients and peer SDKs.

Every variant places the same number of creates at the same concurrency against one loopback
HTTP server (benchmarks/_loopback_server.py) running in ANOTHER process, so the figures are the
client's own CPU: ``time.process_time()`` of the client process over the measured creates,
divided by their number. Each variant runs in a fresh worker process (no shared heap, caches or
pools) after a warm-up, and each figure is the median of ``--repeats`` runs, interleaved so
that noise from a shared machine spreads over all variants alike. A second table
(``--mode one``, on by default) runs every variant in turn inside ONE process, as an
application holding several clients would: the heap, the garbage collector's work and the
interpreter's caches are then shared. Variants ending in ``trio`` run on trio (every other one on
asyncio), so in that mode they share a process of their own. ``gc us`` is the part of the CPU
figure spent in the cyclic garbage collector and ``full gc`` its full collections in the run:
in the one-process table a full collection walks every client's heap, and lands on whichever
variant's allocations cross CPython's threshold.

Variants:

* ``audian auto``     AsyncAudian() as it comes: ``http_backend="auto"``, the aiohttp transport
                      here (asyncio, the extra installed)
* ``audian httpx``    AsyncAudian(http_backend="httpx"): stock httpx (what ``auto`` takes on trio)
* ``audian aiohttp``  AsyncAudian(http_backend="aiohttp") (the ``aiohttp`` extra; asyncio)
* ``audian injected`` AsyncAudian(http_client=httpx.AsyncClient(transport=
                      httpx_aiohttp.AiohttpTransport())): a user's own client
* ``audian trio``     AsyncAudian() as it comes, on trio: ``auto`` takes stock httpx there
* ``audian no-direct trio``  the same with the direct round trip into httpcore turned off:
                      every request as httpx's request and response objects (the baseline
                      of that round trip)
* ``raw httpx``       httpx.AsyncClient.post(json=...) and ``response.json()``
* ``raw httpx trio``  the same on trio (the reference for the trio path)
* ``raw aiohttp``     aiohttp.ClientSession.post(json=...) and ``response.json()``
* ``twilio``          Twilio's async client: ``await client.calls.create_async(...)``
* ``telnyx``          Telnyx's async SDK (httpx): ``await client.calls.dial(...)``

Then the queue test: all N creates started at once (one task each) with N=1,000 and
N=10,000, for both of our backends and raw aiohttp as the reference, with the cyclic garbage
collector on and off; CPU per call should not grow with the queue.

    python benchmarks/client_create.py            # full run (a few minutes)
    python benchmarks/client_create.py --quick    # smoke test (N=500, one repeat)

Only 127.0.0.1 is ever contacted. The peers come with the ``bench`` extra (twilio, telnyx,
aiohttp); a variant whose package is missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER = HERE / "_loopback_server.py"

FROM = "+14155552671"
TO = "+14155552672"
TAGS = {"campaign": "winter_sale", "agent_id": "agent_123"}

VARIANTS = [
    "audian auto",
    "audian httpx",
    "audian aiohttp",
    "audian injected",
    "audian trio",
    "audian no-direct trio",
    "raw httpx",
    "raw httpx trio",
    "raw aiohttp",
    "twilio",
    "telnyx",
]
OURS = ["audian auto", "audian httpx", "audian aiohttp", "audian injected", "audian trio"]
BASELINES = ["twilio", "telnyx"]

Create = Callable[[], Awaitable[Any]]


def _loop(variant: str) -> str:
    """The event loop ``variant`` runs on."""
    return "trio" if variant.endswith(" trio") else "asyncio"


# --------------------------------------------------------------------------- worker side


async def _make_variant(variant: str, port: int, stack: Any) -> Create:
    """Build the client for ``variant`` and return a zero-argument coroutine placing one call."""
    base = f"http://127.0.0.1:{port}"
    # The trio variants build the same clients as their asyncio namesakes.
    direct = variant != "audian no-direct trio"
    variant = {
        "audian trio": "audian auto",
        "audian no-direct trio": "audian auto",
        "raw httpx trio": "raw httpx",
    }.get(variant, variant)
    if variant.startswith("audian "):
        import audian_async as au

        if variant == "audian injected":
            import httpx
            import httpx_aiohttp

            hx = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport())
            )
            client = au.AsyncAudian("bench-key", base_url=f"{base}/v2", http_client=hx)
        else:
            backend = variant.removeprefix("audian ")
            client = au.AsyncAudian("bench-key", base_url=f"{base}/v2", http_backend=backend)  # type: ignore[arg-type]
        await stack.enter_async_context(client)
        if not direct:
            client._exchanging = None  # every request through httpx's objects
        calls = client.calls

        async def create() -> Any:
            return await calls.create(from_=FROM, to=TO, tags=TAGS)

        return create

    if variant == "raw httpx":
        import httpx

        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        hx = await stack.enter_async_context(httpx.AsyncClient(limits=limits))
        url = f"{base}/v2/calls"
        headers = {"X-Auth-Token": "bench-key"}

        async def create() -> Any:
            response = await hx.post(
                url, json={"from": FROM, "to": TO, "tags": TAGS}, headers=headers
            )
            response.raise_for_status()
            return response.json()

        return create

    if variant == "raw aiohttp":
        import aiohttp

        session = await stack.enter_async_context(aiohttp.ClientSession())
        url = f"{base}/v2/calls"
        headers = {"X-Auth-Token": "bench-key"}

        async def create() -> Any:
            async with session.post(
                url, json={"from": FROM, "to": TO, "tags": TAGS}, headers=headers
            ) as response:
                response.raise_for_status()
                return await response.json()

        return create

    if variant == "twilio":
        from twilio.http.async_http_client import AsyncTwilioHttpClient
        from twilio.rest import Client

        class LoopbackTwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
            """Twilio's own async HTTP client, with its API host swapped for the loopback one."""

            async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                url = url.replace("https://api.twilio.com", base, 1)
                return await super().request(method, url, *args, **kwargs)

        http = LoopbackTwilioHttpClient()
        stack.push_async_callback(http.close)
        twilio = Client("AC" + "0" * 32, "bench-token", http_client=http)
        twiml = "<Response><Say>Hello</Say></Response>"

        async def create() -> Any:
            return await twilio.calls.create_async(to=TO, from_=FROM, twiml=twiml)

        return create

    if variant == "telnyx":
        from telnyx import AsyncTelnyx

        telnyx = await stack.enter_async_context(
            AsyncTelnyx(api_key="KEYbench", base_url=f"{base}/telnyx/v2")
        )

        async def create() -> Any:
            return await telnyx.calls.dial(connection_id="7267xxxxxxxxxxxxxx", from_=FROM, to=TO)

        return create

    raise SystemExit(f"unknown variant {variant!r}")


class GcMeter:
    """CPU time the cyclic garbage collector takes while measuring, and its full collections.

    Part of the client CPU above, shown on its own because it depends on more than the
    client: a full collection walks the whole heap (every module and object of the process)
    and falls on whichever client's allocations happen to cross CPython's threshold.
    """

    def __init__(self) -> None:
        self.cpu = 0.0
        self.full = 0
        self._on = False
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if not self._on:
            return
        if phase == "start":
            self._started = time.process_time()
            return
        self.cpu += time.process_time() - self._started
        self.full += info["generation"] == 2

    def __enter__(self) -> GcMeter:
        self.cpu, self.full, self._on = 0.0, 0, True
        return self

    def __exit__(self, *exc: object) -> None:
        self._on = False

    def figures(self) -> dict[str, float]:
        return {"gc_cpu": self.cpu, "gc_full": self.full}


GC_METER = GcMeter()


async def _drive(create: Create, n: int, concurrency: int) -> None:
    """Run ``n`` creates with ``concurrency`` workers pulling from one counter."""
    import anyio

    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await create()

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, n)):
            tg.start_soon(worker)


async def _flood(create: Create, n: int) -> None:
    """Start all ``n`` creates at once, one task each (a dialer's whole queue)."""
    import anyio

    async def one() -> None:
        await create()

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)


async def _worker_main(args: argparse.Namespace) -> dict[str, float]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        create = await _make_variant(args.worker, args.port, stack)
        await _drive(create, args.warmup, args.concurrency or 16)
        gc.collect()
        if args.gc_off:
            gc.disable()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with GC_METER:
            if args.concurrency == 0:
                await _flood(create, args.n)
            else:
                await _drive(create, args.n, args.concurrency)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu": cpu, "wall": wall, "n": args.n, **GC_METER.figures()}


async def _measure(create: Create, n: int, concurrency: int, warmup: int) -> dict[str, float]:
    await _drive(create, warmup, concurrency)
    gc.collect()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with GC_METER:
        await _drive(create, n, concurrency)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu": cpu, "wall": wall, "n": n, **GC_METER.figures()}


async def _one_process_main(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Every variant in turn in this one process (all clients open at once, as in an app)."""
    from contextlib import AsyncExitStack

    variants = args.worker_all.split(",")
    results: dict[str, dict[str, float]] = {}
    async with AsyncExitStack() as stack:
        creates = {v: await _make_variant(v, args.port, stack) for v in variants}
        for variant, create in creates.items():
            results[variant] = await _measure(create, args.n, args.concurrency, args.warmup)
    return results


def _worker(args: argparse.Namespace) -> None:
    import anyio

    main = _one_process_main if args.worker_all else _worker_main
    loops = {_loop(v) for v in (args.worker_all or args.worker).split(",")}
    if len(loops) != 1:
        raise SystemExit("variants on trio and on asyncio cannot share one process")
    result = anyio.run(main, args, backend=loops.pop())
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver side


class LoopbackServer:
    """The loopback server in a child process; stopped (and reaped) on exit."""

    def __enter__(self) -> LoopbackServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.__exit__(None, None, None)
            raise SystemExit(f"loopback server failed to start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def cpu_seconds(self) -> float | None:
        """The server's CPU time so far (Linux /proc), to show it is not the bottleneck."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


def run_json(cmd: list[str], what: str, timeout: float = 600) -> Any:
    """Run a worker process and return the JSON it printed last (SystemExit with the end of
    its stderr if it failed)."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(
    variant: str, port: int, n: int, concurrency: int, warmup: int, *, gc_off: bool = False
) -> dict[str, float]:
    """One measurement in a fresh process."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--port",
        str(port),
        "--n",
        str(n),
        "--concurrency",
        str(concurrency),
        "--warmup",
        str(warmup),
        *(["--gc-off"] if gc_off else []),
    ]
    result: dict[str, float] = run_json(cmd, f"worker {variant} c={concurrency}")
    return result


def run_one_process(
    variants: list[str], port: int, n: int, concurrency: int, warmup: int
) -> dict[str, dict[str, float]]:
    """One measurement of every variant, in turn, in one fresh process."""
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker-all", ",".join(variants),
        "--port", str(port), "--n", str(n), "--concurrency", str(concurrency),
        "--warmup", str(warmup),
    ]  # fmt: skip
    result: dict[str, dict[str, float]] = run_json(
        cmd, f"one-process run c={concurrency}", timeout=1800
    )
    return result


def _available(variant: str) -> bool:
    module = {
        "audian aiohttp": "httpx_aiohttp",
        "audian injected": "httpx_aiohttp",
        "raw aiohttp": "aiohttp",
    }.get(variant)
    module = module or {"twilio": "twilio", "telnyx": "telnyx"}.get(variant)
    module = module or ("trio" if _loop(variant) == "trio" else None)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run (N=500, 1 repeat)")
    parser.add_argument("--n", type=int, default=None, help="creates per measurement")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset of: " + ", ".join(VARIANTS),
    )
    parser.add_argument("--concurrency", default="16,128", help="comma-separated levels")
    parser.add_argument("--no-queue", action="store_true", help="skip the queue-growth test")
    parser.add_argument(
        "--mode",
        choices=["fresh", "one", "both"],
        default="both",
        help="each variant in a fresh process, all in one process in turn, or both",
    )
    # Internal: run one measurement in this process and print it as JSON.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--gc-off", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-all", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker or args.worker_all:
        args.concurrency = int(args.concurrency)
        _worker(args)
        return 0

    n = args.n or (500 if args.quick else 5000)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 100 if args.quick else 500
    levels = [int(c) for c in args.concurrency.split(",")]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    missing = [v for v in variants if not _available(v)]
    for v in missing:
        print(f"skipping {v!r}: not installed (pip install 'audian-async[bench]')")
    variants = [v for v in variants if v not in missing]

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; N={n} creates per run, "
        f"median of {repeats}; client CPU = process_time of the client process only"
    )
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with LoopbackServer() as server:
        if args.mode in ("fresh", "both"):
            for _ in range(repeats):
                for concurrency in levels:
                    for variant in variants:
                        before = server.cpu_seconds()
                        r = run_worker(variant, server.port, n, concurrency, warmup)
                        after = server.cpu_seconds()
                        if before is not None and after is not None:
                            r["server_cpu"] = (after - before) / (n + warmup)
                        results.setdefault((variant, concurrency), []).append(r)
            print("\nEach variant in a fresh process:")
            print_table(results, variants, levels)
        if args.mode in ("one", "both"):
            together: dict[tuple[str, int], list[dict[str, float]]] = {}
            for repeat in range(repeats):
                for concurrency in levels:
                    # Rotated each repeat: no variant always runs first (coldest) or last.
                    order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
                    for loop in ("asyncio", "trio"):  # one process per event loop
                        group = [v for v in order if _loop(v) == loop]
                        if group:
                            runs = run_one_process(group, server.port, n, concurrency, warmup)
                            for variant, r in runs.items():
                                together.setdefault((variant, concurrency), []).append(r)
            print("\nEvery variant in turn in one process:")
            print_table(together, variants, levels)

        if not args.no_queue:
            small, large = (200, 2000) if args.quick else (1000, 10000)
            queued: dict[tuple[str, int, bool], list[dict[str, float]]] = {}
            # raw aiohttp is the reference: what holding N tasks costs any asyncio client.
            flooded = [v for v in [*OURS, "raw aiohttp"] if v in variants]
            for _ in range(repeats):
                for variant in flooded:
                    for size in (small, large):
                        for gc_off in (False, True):
                            r = run_worker(variant, server.port, size, 0, warmup, gc_off=gc_off)
                            queued.setdefault((variant, size, gc_off), []).append(r)
            print_queue(queued, flooded, small, large)
    return 0


def _cpu_us(runs: list[dict[str, float]]) -> float:
    return statistics.median(r["cpu"] / r["n"] * 1e6 for r in runs)


def _rps(runs: list[dict[str, float]]) -> float:
    return statistics.median(r["n"] / r["wall"] for r in runs)


def print_table(
    results: dict[tuple[str, int], list[dict[str, float]]], variants: list[str], levels: list[int]
) -> None:
    header = f"{'variant':<22} {'conc':>5} {'req/s':>8} {'CPU us/call':>12} {'server us':>10}"
    header += f" {'gc us':>6} {'full gc':>7}"
    header += "".join(f" {'vs ' + b:>10}" for b in BASELINES if b in variants)
    print()
    print(header)
    print("-" * len(header))
    for concurrency in levels:
        for variant in variants:
            runs = results[(variant, concurrency)]
            cpu = _cpu_us(runs)
            server = [r["server_cpu"] * 1e6 for r in runs if "server_cpu" in r]
            served = f"{statistics.median(server):,.0f}" if server else "-"
            line = f"{variant:<22} {concurrency:>5} {_rps(runs):>8,.0f} {cpu:>12,.0f} {served:>10}"
            gc_us = statistics.median(r["gc_cpu"] / r["n"] * 1e6 for r in runs)
            full = statistics.median(r["gc_full"] for r in runs)
            line += f" {gc_us:>6,.0f} {full:>7g}"
            for baseline in BASELINES:
                if baseline in variants:
                    ratio = cpu / _cpu_us(results[(baseline, concurrency)])
                    line += f" {ratio:>9.2f}x"
            print(line)


def print_queue(
    queued: dict[tuple[str, int, bool], list[dict[str, float]]],
    variants: list[str],
    small: int,
    large: int,
) -> None:
    print()
    print(f"All creates started at once (queue growth), CPU us/call, N={small:,} vs N={large:,}")
    print("(the gc-off columns rerun it with the cyclic garbage collector disabled):")
    header = (
        f"{'variant':<22} {f'N={small:,}':>10} {f'N={large:,}':>10} {'ratio':>7}"
        f" {'gc off':>8} {'gc off':>8} {'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for variant in variants:
        a = _cpu_us(queued[(variant, small, False)])
        b = _cpu_us(queued[(variant, large, False)])
        c = _cpu_us(queued[(variant, small, True)])
        d = _cpu_us(queued[(variant, large, True)])
        line = f"{variant:<22} {a:>10,.0f} {b:>10,.0f} {b / a:>6.2f}x"
        print(line + f" {c:>8,.0f} {d:>8,.0f} {d / c:>6.2f}x")


if __name__ == "__main__":
    sys.exit(main())
