"""Sandbox capacity: call creates per second, latency, live calls and webhook throughput.

Three processes, so the load generator never steals the sandbox's interpreter:

* this process runs the sandbox (its own uvicorn thread) or the baseline server;
* a load generator (aiohttp, closed loop with N concurrent POSTs) hits it for D seconds;
* a minimal webhook receiver (a raw asyncio protocol answering 200) takes the deliveries.

The baseline is a bare uvicorn ASGI app that answers every request with a fixed 200 JSON body,
served the same way (same thread model, HTTP parser and event loop), measured in the same run.

    python benchmarks/sandbox_capacity.py [--seconds 10] [--concurrency 64] [--speed 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from loopback import free_port

OWNED = "+14155552671"


# --- child: load generator -------------------------------------------------------------------


async def _load(
    url: str, key: str, seconds: float, concurrency: int, rate: float
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    headers = {"X-Auth-Token": key, "Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession, index: int) -> None:
        n = 0
        interval = concurrency / rate if rate else 0.0  # open loop: paced, not flat out
        next_at = time.perf_counter() + index * interval / concurrency
        while time.perf_counter() < deadline:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            n += 1
            body = json.dumps({"from": OWNED, "to": f"+1415555{2000 + (index * 7 + n) % 7000:04d}"})
            start = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed": elapsed,
        "statuses": statuses,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


# --- child: webhook receiver -----------------------------------------------------------------


class _Receiver(asyncio.Protocol):
    reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.reply)


async def _receive(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Receiver, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# --- orchestrator ----------------------------------------------------------------------------


def _run_load(
    url: str, key: str, seconds: float, concurrency: int, rate: float = 0.0
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child-load", url, key, str(seconds), str(concurrency)]
    command.append(str(rate))
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output)
    return result


async def _baseline_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"call_id":"call_1","status":"initiated"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _baseline(seconds: float, concurrency: int) -> dict[str, Any]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        _baseline_app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level=None,
        access_log=False,
        lifespan="off",
        http="httptools",
        loop="uvloop",
        backlog=4096,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        return _run_load(f"http://127.0.0.1:{port}/v2/calls", "x", seconds, concurrency)
    finally:
        server.should_exit = True
        thread.join()


def _sandbox(
    seconds: float, concurrency: int, speed: float, webhooks: bool, rate: float = 0.0
) -> dict[str, Any]:
    from audian_async.sandbox import Sandbox

    receiver = None
    urls: list[str] = []
    if webhooks:
        port = free_port()
        receiver = subprocess.Popen([sys.executable, __file__, "--child-receive", str(port)])
        urls = [f"http://127.0.0.1:{port}/hooks"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    sandbox = Sandbox(speed=speed, max_concurrent=1_000_000, webhook_urls=urls, drain_timeout=0.1)
    sandbox.start()
    try:
        url = f"{sandbox.base_url}/calls"
        result = _run_load(url, sandbox.api_key, seconds, concurrency, rate)
        result["peak_live"] = sandbox.peak_live_calls
        result["delivered"] = sandbox.app.deliverer.delivered
        result["backlog"] = sandbox.pending_deliveries
        result["created"] = sandbox.app.stats["calls_created"]
        return result
    finally:
        sandbox.stop()
        if receiver is not None:
            receiver.terminate()
            receiver.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--speed", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=500.0, help="creates/s of the paced run")
    args = parser.parse_args()

    rows = [("bare uvicorn app (baseline)", _baseline(args.seconds, args.concurrency))]
    # backlog: webhook deliveries still pending when the load stops (0 = keeping up).
    rows.append(
        ("sandbox, no webhooks", _sandbox(args.seconds, args.concurrency, args.speed, False))
    )
    rows.append(("sandbox + webhooks", _sandbox(args.seconds, args.concurrency, args.speed, True)))
    paced = _sandbox(args.seconds, args.concurrency, args.speed, True, args.rate)
    rows.append((f"sandbox + webhooks @{args.rate:g}/s", paced))
    base_rate = rows[0][1]["requests"] / rows[0][1]["elapsed"]
    print(
        f"\n{args.seconds:g} s per scenario, {args.concurrency} concurrent POST /v2/calls, "
        f"speed x{args.speed:g} (a default call lives {8 / args.speed:g} s)\n"
    )
    header = (
        f"{'scenario':<30} {'creates/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'peak live':>10} "
        f"{'webhooks/s':>11} {'backlog':>8} {'vs baseline':>12}"
    )
    print(header)
    print("-" * len(header))
    for name, r in rows:
        rate = r["requests"] / r["elapsed"]
        hooks = r.get("delivered")
        hooks_rate = "-" if hooks is None else f"{hooks / r['elapsed']:.0f}"
        print(
            f"{name:<30} {rate:>10.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
            f"{r.get('peak_live', '-'):>10} "
            f"{hooks_rate:>11} {r.get('backlog', '-'):>8} "
            f"{rate / base_rate:>11.2f}x"
        )
        bad = {k: v for k, v in r["statuses"].items() if k not in ("200", "201")}
        if bad:
            print(f"{'':<30} non-2xx replies: {bad}")
    print()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-load":
        _, _, url, key, seconds, concurrency, rate = sys.argv
        import uvloop

        result = uvloop.run(_load(url, key, float(seconds), int(concurrency), float(rate)))
        print(json.dumps(result))
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-receive":
        import uvloop

        uvloop.run(_receive(int(sys.argv[2])))
    else:
        main()
