"""What the OpenTelemetry instrumentation costs: per create, per webhook delivery and per
dialer attempt, against the same code path with the instrumentation switched off, measured
interleaved in the same process.

Three settings, each in a fresh worker process:

* ``absent``     opentelemetry cannot be imported (as without the ``otel`` extra);
* ``no provider`` the API is installed and imported, but no SDK provider is set (the API's
                  placeholder is the global provider): the default of most installs;
* ``sdk``        the SDK's TracerProvider (a SimpleSpanProcessor into an exporter that drops
                  every span, so the figure is the SDK's span cost and no exporter's, and no
                  finished span piles up for the garbage collector) and MeterProvider (an
                  InMemoryMetricReader, never collected during the run), passed explicitly.

The baseline of each row is the same object with its tracing object removed
(``_tracing = None``: the hooks' ``is None`` checks are all that is left, as in a client that
found no provider) or, for the dialer, no meter provider at all, so the ratio is the cost of
the instrumentation alone. The paths are the library's own, without I/O:

* create: ``client.calls.create(checked_request)`` over the client's lean path, its transport
  replaced by one answering a canned 201 (so the figure is client CPU, not the network's);
* delivery: ``await app(scope, receive, send)`` on a WebhookApp with a signing secret and one
  async handler, each delivery signed and with an id of its own;
* dialer: ``benchmarks/dialer_campaign.py``'s campaign against its stub client (CPU per
  attempt).

Each figure is the best of ``--rounds`` rounds of CPU time (``time.process_time()``, which a
busy machine disturbs less than the wall clock; the best, since noise only ever adds),
baseline and instrumented interleaved. The ``absent`` and ``no provider`` rows run the same
code on both sides once the first use has decided, so their spread around 1.00x is the
measurement's own noise.

    python benchmarks/otel_overhead.py            # full run (about three minutes)
    python benchmarks/otel_overhead.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
MODES = ["absent", "no provider", "sdk"]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALL = (
    b'{"call_id":"call_xyz789","call_uuid":"550e8400-e29b-41d4-a716-446655440000",'
    b'"from":"+14155552671","to":"+14155552672","status":"initiated",'
    b'"created_at":"2024-01-15T10:30:00Z"}'
)


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


# --------------------------------------------------------------------------- worker side


def _providers(mode: str) -> tuple[Any, Any]:
    """(tracer provider, meter provider) for ``mode``; Nones but for sdk."""
    if mode != "sdk":
        if mode == "no provider":
            import opentelemetry.metrics
            import opentelemetry.trace  # noqa: F401  # imported, as an app using it would
        return None, None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


async def _interleaved(
    rounds: int,
    base: Callable[[], Awaitable[float]],
    variant: Callable[[], Awaitable[float]],
) -> tuple[list[float], list[float]]:
    """``rounds`` figures of each, in ABBA order so neither always runs first (a warmer
    cache, a garbage collection due) and the machine's drift hits both alike."""
    figures: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            figures[which].append(await (base if which == 0 else variant)())
    return figures


async def _creates(mode: str, n: int, rounds: int) -> tuple[list[float], list[float]]:
    import httpx

    from audian_async import AsyncAudian, CallRequest, validate_call_request

    tracer_provider, _ = _providers(mode)

    class Canned(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                201, headers=[(b"content-type", b"application/json")], content=CALL
            )

    def client(traced: bool) -> AsyncAudian:
        made = AsyncAudian(
            "sk_bench", base_url="http://127.0.0.1:9/v2", tracer_provider=tracer_provider
        )
        made._transport = Canned()
        # The httpx path on both sides (tracing always takes it): no direct aiohttp round
        # trip past the canned transport.
        made._exchanging = None
        if not traced:
            made._tracing = None
        return made

    checked = validate_call_request(CallRequest(from_="+14155552671", to="+14155552672"))
    plain, traced = client(False), client(True)

    async def run(api: AsyncAudian) -> float:
        create = api.calls.create
        started = time.process_time()
        for _ in range(n):
            await create(checked)
        return (time.process_time() - started) / n

    await run(plain)  # warm-up (and the traced client's first-use decision)
    await run(traced)
    return await _interleaved(rounds, lambda: run(plain), lambda: run(traced))


async def _deliveries(mode: str, n: int, rounds: int) -> tuple[list[float], list[float]]:
    from audian_async.webhooks import EventRouter, WebhookApp, sign

    tracer_provider, _ = _providers(mode)

    async def handler(event: Any) -> None:
        return None

    def app(traced: bool) -> WebhookApp:
        router = EventRouter()
        router.add(handler, "*")
        made = WebhookApp(router, secret=SECRET, tracer_provider=tracer_provider)
        if not traced:
            made._tracing = None
        return made

    serial = 0

    def signed(count: int) -> list[tuple[dict[str, Any], bytes]]:
        nonlocal serial
        now = int(time.time())
        out = []
        for _ in range(count):
            serial += 1
            msg_id = f"msg_{serial}"
            body = json.dumps(
                {
                    "id": f"evt_{serial}",
                    "event": "call.completed",
                    "data": {"call_id": f"call_{serial}", "status": "completed"},
                }
            ).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"webhook-id", msg_id.encode()),
                (b"webhook-timestamp", str(now).encode()),
                (b"webhook-signature", sign(SECRET, msg_id, now, body).encode()),
            ]
            scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
            out.append((scope, body))
        return out

    async def send(message: Any) -> None:
        return None

    async def run(target: WebhookApp) -> float:
        batch = signed(n)
        started = time.process_time()
        for scope, body in batch:
            message = {"type": "http.request", "body": body, "more_body": False}

            async def receive(message: Any = message) -> Any:
                return message

            await target(scope, receive, send)
        return (time.process_time() - started) / n

    plain, traced = app(False), app(True)
    await run(plain)
    await run(traced)
    return await _interleaved(rounds, lambda: run(plain), lambda: run(traced))


async def _dialer(mode: str, n: int, rounds: int) -> tuple[list[float], list[float]]:
    sys.path.insert(0, str(HERE.parent))
    from dialer_campaign import dialer_alone

    _, meter_provider = _providers(mode)
    db_dir = Path(tempfile.mkdtemp())
    await dialer_alone(n // 10, 500.0, db_dir)
    return await _interleaved(
        rounds,
        lambda: dialer_alone(n, 500.0, db_dir),
        lambda: dialer_alone(n, 500.0, db_dir, meter_provider=meter_provider),
    )


def worker(mode: str, quick: bool, rounds: int) -> None:
    if mode == "absent":
        sys.meta_path.insert(0, _Blocker())
    import anyio

    async def main() -> dict[str, Any]:
        n = 500 if quick else 2_000
        return {
            "create": await _creates(mode, n, rounds),
            "delivery": await _deliveries(mode, n, rounds),
            "dialer": await _dialer(mode, 500 if quick else 3_000, min(rounds, 9)),
            "imported": any(m.startswith("opentelemetry") for m in sys.modules),
        }

    print(json.dumps(anyio.run(main)))


# --------------------------------------------------------------------------- driver side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    if args.worker:
        worker(args.worker, args.quick, rounds)
        return
    started = time.perf_counter()
    rows = []
    for mode in MODES:
        command = [sys.executable, str(HERE), "--worker", mode, "--rounds", str(rounds)]
        if args.quick:
            command.append("--quick")
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.splitlines()[-1])
        for what, unit in (("create", "create"), ("delivery", "delivery"), ("dialer", "attempt")):
            base, variant = (min(v) for v in result[what])
            rows.append((mode, f"per {unit}", base * 1e6, variant * 1e6, variant / base))
        if mode == "absent":
            assert not result["imported"], "opentelemetry was imported in the absent run"
    print(f"\nOpenTelemetry overhead ({'quick' if args.quick else 'full'}; {rounds} rounds)")
    print(f"{'setting':<12}  {'path':<13}  {'baseline':>10}  {'instrumented':>12}  ratio")
    for mode, path, base_us, variant_us, ratio in rows:
        print(f"{mode:<12}  {path:<13}  {base_us:>7.2f} us  {variant_us:>9.2f} us  {ratio:.2f}x")
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
