"""Run the instrumented paths in a fresh interpreter: ``python -m tests.otel._scenario MODE
BACKEND``, from the repository's root. Prints what it saw as JSON on its last line.

MODE is one of:

* ``blocked``: ``opentelemetry`` cannot be imported at all (and the environment asks the API
  to load providers, which must not matter);
* ``unimported``: it is installed, but nothing imports it, so the package must not either;
* ``global``: the SDK's providers are set globally after some objects exist, to show which
  objects pick them up (those whose first use comes after).

Each mode sends a create and a read through a client, one delivery to a WebhookApp, and runs
a one-call campaign, none of which touch the network (httpx's mock and ASGI transports).
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import time
from typing import Any

MODE, BACKEND = sys.argv[1], sys.argv[2]


class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


if MODE == "blocked":
    sys.meta_path.insert(0, _Blocker())
    os.environ["OTEL_PYTHON_TRACER_PROVIDER"] = "sdk"
    os.environ["OTEL_PYTHON_METER_PROVIDER"] = "sdk"

import anyio  # noqa: E402
import httpx  # noqa: E402

from audian_async import AsyncAudian, CallRequest  # noqa: E402
from audian_async.dialer import Dialer, MemoryStore  # noqa: E402
from audian_async.webhooks import EventRouter, WebhookApp, sign  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CALL = {
    "call_id": "call_1",
    "from": "+14155552671",
    "to": "+14155552672",
    "status": "completed",
    "created_at": "2024-01-15T10:30:00Z",
}


def _api(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201 if request.method == "POST" else 200, json=CALL)


def client() -> AsyncAudian:
    http = httpx.AsyncClient(transport=httpx.MockTransport(_api))
    return AsyncAudian("sk_test", base_url="https://api.example.test/v2", http_client=http)


async def deliver(app: WebhookApp, msg_id: str) -> int:
    body = json.dumps({"event": "call.completed", "data": {"call_id": "call_1"}}).encode()
    now = int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(SECRET, msg_id, now, body),
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as http:
        return (await http.post("/", content=body, headers=headers)).status_code


async def campaign(api: AsyncAudian) -> tuple[int, int]:
    dialer = Dialer(api, None, store=MemoryStore(), campaign="c")
    report = await dialer.run([CallRequest(from_="+14155552671", to="+14155552672")])
    return report.completed, report.attempts


async def main() -> dict[str, Any]:
    seen: dict[str, Any] = {}
    early, late = client(), client()
    app = WebhookApp(EventRouter(), secret=SECRET)
    await early.calls.get("call_early")  # its first use: before any provider is set
    if MODE == "global":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    await early.calls.get("call_early_again")
    await late.calls.create(from_="+14155552671", to="+14155552672")
    seen["status"] = await deliver(app, "msg_1")
    seen["campaign"] = await campaign(late)
    if MODE == "global":
        seen["spans"] = [
            [s.name, s.attributes.get("audian.call_id")] for s in exporter.get_finished_spans()
        ]
        data = reader.get_metrics_data()
        seen["metrics"] = sorted(
            m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics
        )
    seen["tracing"] = [early._tracing is not None, late._tracing is not None]
    seen["imported"] = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")[:3]
    return seen


print(json.dumps(anyio.run(main, backend=BACKEND)))
