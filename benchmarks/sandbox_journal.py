"""What the dashboard's request journal costs the sandbox's hot path, per request.

The capacity benchmark (``sandbox_capacity.py``) measures the whole server over the network,
where run-to-run noise is several percent; a cost under a microsecond drowns in it. This one
drives the ASGI app in-process (no sockets, no uvicorn), so the figures are stable:

* the journal's own work for one request, alone: a ``RequestRecord``, two clock reads, the
  ring append and the wake-up check, exactly as ``SandboxApp._http`` does them;
* a whole ``POST /v2/calls`` (validation, the call, its timers, the JSON reply) and a whole
  ``GET /v2/calls/{id}``, journal included;

and prints the journal's share of each.

    python benchmarks/sandbox_journal.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio

from audian_async._json import dumps
from audian_async.sandbox import SandboxApp
from audian_async.sandbox._journal import Journal, RequestRecord

OWNED = "+14155552671"


def journal_alone(n: int) -> float:
    """Seconds per request of the journal's work on the hot path."""
    journal = Journal()
    perf_counter = time.perf_counter
    began = perf_counter()
    for _ in range(n):
        record = RequestRecord("POST", "/v2/calls")
        started = perf_counter()
        record.status = 201
        record.latency = perf_counter() - started
        journal.add_request(record)
    return (perf_counter() - began) / n


async def _drive(app: SandboxApp, scopes: list[dict[str, Any]], body: bytes) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    began = time.perf_counter()
    for scope in scopes:
        await app(scope, receive, send)
    return (time.perf_counter() - began) / len(scopes)


def whole_requests(n: int) -> tuple[float, float]:
    """Seconds per POST /v2/calls and per GET /v2/calls/{id}, in-process."""
    app = SandboxApp(max_concurrent=10 * n)
    headers = [(b"x-auth-token", app.settings.api_key.encode())]
    body = dumps({"from": OWNED, "to": "+14155552672"})
    post = {
        "type": "http",
        "method": "POST",
        "path": "/v2/calls",
        "query_string": b"",
        "headers": [*headers, (b"content-length", b"%d" % len(body))],
    }
    per_post = anyio.run(_drive, app, [post] * n, body)
    (call_id, *_) = app.engine.calls
    get = {**post, "method": "GET", "path": f"/v2/calls/{call_id}", "headers": headers}
    per_get = anyio.run(_drive, app, [get] * n, b"")
    assert app.journal.requests_total == 2 * n
    return per_post, per_get


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    n = args.requests
    journal_alone(n)  # warm up
    alone = min(journal_alone(n) for _ in range(5))
    post, get = (min(pair) for pair in zip(*(whole_requests(n) for _ in range(3)), strict=True))
    print(f"\n{n} requests per figure, best of several runs, in-process (no network)\n")
    print(f"{'':<34} {'µs/request':>11} {'journal share':>14}")
    print("-" * 61)
    print(f"{'journal record (alone)':<34} {alone * 1e6:>11.2f} {'':>14}")
    print(f"{'POST /v2/calls (journal included)':<34} {post * 1e6:>11.2f} {alone / post:>13.1%}")
    print(f"{'GET /v2/calls/{id} (included)':<34} {get * 1e6:>11.2f} {alone / get:>13.1%}")
    print()


if __name__ == "__main__":
    main()
