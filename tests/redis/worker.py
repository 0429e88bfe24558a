"""One dialer process of a shared campaign, for the Redis tests (run as a module).

It runs the campaign of ``--numbers`` against the API at ``--api`` with a RedisStore and
prints the report's outcomes as one JSON line. With ``--webhook-port`` it also serves the
campaign's webhooks (the only receiver: the sandbox delivers to it alone), and says
``listening`` once it does.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from audian_async import AsyncAudian, CallRequest, Dialer, RedisStore, RetryPolicy
from audian_async._json import dumps, loads
from audian_async._serving import serve_webhooks
from audian_async.webhooks import EventRouter, WebhookApp

FROM = "+14155552671"


@contextlib.asynccontextmanager
async def _receiver(args: argparse.Namespace, router: EventRouter) -> AsyncIterator[None]:
    if args.webhook_port is None:
        yield
        return
    app = WebhookApp(router, secret=args.webhook_secret)
    async with serve_webhooks(app, "127.0.0.1", args.webhook_port, path="/"):
        print("listening", flush=True)
        yield


async def main(args: argparse.Namespace) -> None:
    numbers = loads(Path(args.numbers).read_bytes())  # noqa: ASYNC240 - before anything runs
    requests = [CallRequest(from_=FROM, to=n) for n in numbers]
    router = EventRouter()
    store = RedisStore(args.redis, namespace=args.namespace, lease=args.lease)
    policy = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.1)
    async with AsyncAudian(args.api_key, base_url=args.api) as client, _receiver(args, router):
        dialer = Dialer(
            client,
            router,
            retry=policy,
            store=store,
            max_active_calls=args.max_active,
            create_deadline=args.deadline,
            time_scale=args.time_scale,
        )
        print("dialing", flush=True)
        report = await dialer.run(requests, campaign=args.campaign, keep_duplicates=True)
    outcomes = [[o.status, o.reason, o.attempts, list(o.call_ids)] for o in report.outcomes]
    sys.stdout.write(dumps({"outcomes": outcomes}).decode() + "\n")
    sys.stdout.flush()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--campaign", required=True)
    parser.add_argument("--numbers", required=True, help="a JSON file of numbers")
    parser.add_argument("--api", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--max-active", type=int, required=True)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--webhook-port", type=int)
    parser.add_argument("--webhook-secret")
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, _arguments())
