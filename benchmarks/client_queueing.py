"""Where creates beyond ``max_connections`` should wait: the client's CPU and its collector's.

``AsyncAudian`` lets at most ``max_connections`` requests into its transport; the others
wait in the client, holding almost nothing. aiohttp's own clients instead wait inside its
connector, after building their request. This script measures both, a mix of the two and
a pool sized so that nothing waits, in the same run, each measurement in a fresh process
against the loopback server of ``client_create.py`` (another process):

* ``client``     as released: waiting in the client (its limit is ``max_connections``);
* ``connector``  no limit in the client: every create waits in aiohttp's connector;
* ``2x``         up to twice ``max_connections`` past the client's limit, the rest wait in it;
* ``sized``      ``max_connections`` raised to the concurrency, so that nothing waits (not for
                 the flood: nobody opens 10,000 connections).

``connector`` and ``2x`` swap the client's internal limiter, which is what this experiment
is about; nothing else differs. Each cell shows the CPU per create and the part of it spent in the
cyclic garbage collector (``gc``), median of ``--repeats`` runs, with the ratio to
``client`` in the same run.

    python benchmarks/client_queueing.py            # 128 and 256 in flight, 10,000 at once
    python benchmarks/client_queueing.py --heavy    # the same in processes with a larger heap
    python benchmarks/client_queueing.py --quick    # smoke test

``--heavy`` imports Twilio's and Telnyx's SDKs (the ``bench`` extra) into each process first,
as an application's own modules would: a full collection then has more to walk.

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from client_create import (  # noqa: E402
    FROM,
    GC_METER,
    TAGS,
    TO,
    LoopbackServer,
    _drive,
    _flood,
    run_json,
)

KINDS = ["client", "connector", "2x", "sized"]
MAX_CONNECTIONS = 100


async def _measure(port: int, kind: str, concurrency: int, n: int) -> dict[str, float]:
    import anyio

    from audian_async import AsyncAudian

    base_url = f"http://127.0.0.1:{port}"
    pool = max(concurrency, MAX_CONNECTIONS) if kind == "sized" else MAX_CONNECTIONS
    async with AsyncAudian(api_key="bench-key", base_url=base_url, max_connections=pool) as client:
        if kind == "connector":
            client._limiter = anyio.Semaphore(2**30)
        elif kind == "2x":
            client._limiter = anyio.Semaphore(2 * MAX_CONNECTIONS)

        async def create() -> object:
            return await client.calls.create(from_=FROM, to=TO, tags=TAGS)

        await _drive(create, 300, 16)
        gc.collect()
        cpu0 = time.process_time()
        with GC_METER:
            if concurrency == 0:
                await _flood(create, n)
            else:
                await _drive(create, n, concurrency)
        cpu = time.process_time() - cpu0
    return {"cpu": cpu, "n": n, **GC_METER.figures()}


def _worker(args: argparse.Namespace) -> None:
    import anyio

    if args.heavy:
        import telnyx  # noqa: F401
        import twilio.rest  # noqa: F401

    result = anyio.run(_measure, args.port, args.worker, args.concurrency, args.n)
    print(json.dumps(result), flush=True)


def run_worker(kind: str, port: int, concurrency: int, n: int, *, heavy: bool) -> dict[str, float]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--port", str(port),
        "--concurrency", str(concurrency), "--n", str(n), *(["--heavy"] if heavy else []),
    ]  # fmt: skip
    result: dict[str, float] = run_json(cmd, f"worker {kind} c={concurrency}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run (1 repeat)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (median)")
    parser.add_argument("--heavy", action="store_true", help="import two SDKs first (bigger heap)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0

    repeats = args.repeats or (1 if args.quick else 3)
    n, flood = (1000, 2000) if args.quick else (5000, 10000)
    # (label, concurrency, creates); concurrency 0 starts them all at once.
    cases = [("128 in flight", 128, n), ("256 in flight", 256, n), (f"{flood:,} at once", 0, flood)]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with LoopbackServer() as server:
        for _ in range(repeats):  # interleaved, so that machine noise spreads over all kinds
            for label, concurrency, count in cases:
                for kind in KINDS:
                    if kind == "sized" and concurrency == 0:
                        continue
                    r = run_worker(kind, server.port, concurrency, count, heavy=args.heavy)
                    results.setdefault((kind, label), []).append(r)

    def per_call(kind: str, label: str, field: str) -> float:
        return statistics.median(r[field] / r["n"] * 1e6 for r in results[(kind, label)])

    print(
        f"CPU per create (us), max_connections={MAX_CONNECTIONS}, median of {repeats}"
        f"{', two SDKs imported' if args.heavy else ''}; "
        "gc = the part spent in the cyclic garbage collector"
    )
    header = f"{'case':<16} {'kind':<10} {'CPU us':>8} {'gc us':>7} {'vs client':>10}"
    print(header)
    print("-" * len(header))
    for label, _, _ in cases:
        baseline = per_call("client", label, "cpu")
        for kind in KINDS:
            if (kind, label) not in results:
                continue
            cpu = per_call(kind, label, "cpu")
            gc_us = per_call(kind, label, "gc_cpu")
            print(f"{label:<16} {kind:<10} {cpu:>8,.0f} {gc_us:>7,.0f} {cpu / baseline:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
