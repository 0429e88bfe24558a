"""``audian-async sandbox``: serve the emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

import attrs

from ..sandbox import (
    DEFAULT_API_KEY,
    MAGIC_NUMBERS,
    OWNED_CALLER_ID,
    ROUTES,
    Faults,
    SandboxSettings,
)

__all__ = ["add_arguments", "banner", "run"]


def _route_rate(text: str) -> tuple[str, float]:
    """Parse ``"POST /v2/calls=0.2"`` (or ``"*=0.1"``) into a route and a rate."""
    route, sep, rate_text = text.rpartition("=")
    route = route.strip()
    if not sep or (route not in ROUTES and route != "*"):
        choices = ", ".join(repr(r) for r in ("*", *ROUTES))
        raise argparse.ArgumentTypeError(f"expected ROUTE=RATE with ROUTE one of {choices}")
    try:
        rate = float(rate_text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"the rate must be between 0 and 1, got {rate_text!r}")
    return route, rate


_PORT = 8443  # unlike the library's free port, a fixed one that a shell script can export
_SETTINGS = attrs.fields_dict(SandboxSettings)
_FAULTS = attrs.fields_dict(Faults)


def _default(name: str) -> object:
    """The library's default of a setting, so the command and the library never disagree."""
    return _SETTINGS[name].default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``sandbox`` subcommand's options."""
    host = _default("host")
    parser.add_argument("--host", default=host, help=f"address to bind (default: {host})")
    parser.add_argument("--port", type=int, default=_PORT, help="port; 0 picks a free one")
    parser.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help=f"the accepted API key ({DEFAULT_API_KEY})"
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="deliver signed webhooks here (repeatable)",
    )
    parser.add_argument("--webhook-secret", default=None, help="whsec_... (default: random)")
    parser.add_argument(
        "--speed", type=float, default=_default("speed"), help="simulated time runs N times faster"
    )
    max_concurrent = _default("max_concurrent")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=max_concurrent,
        help=f"live calls before 429 (default: {max_concurrent})",
    )
    parser.add_argument(
        "--caller-id",
        action="append",
        default=[],
        metavar="E164",
        help=f"another caller ID the account owns besides {OWNED_CALLER_ID} (repeatable)",
    )
    parser.add_argument(
        "--drop-rate",
        type=float,
        default=_default("drop_rate"),
        help="fraction of webhooks dropped",
    )
    parser.add_argument(
        "--duplicate-rate",
        type=float,
        default=_default("duplicate_rate"),
        help="fraction of webhooks sent twice",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="make every random choice reproducible"
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=_FAULTS["latency"].default,
        metavar="SECONDS",
        help="delay every API request",
    )
    parser.add_argument(
        "--error-rate",
        action="append",
        type=_route_rate,
        default=[],
        metavar="ROUTE=RATE",
        help="answer this fraction of a route with --error-status without acting, e.g. "
        '"POST /v2/calls=0.2" ("*" for every route; repeatable)',
    )
    error_status = _FAULTS["error_status"].default
    parser.add_argument(
        "--error-status",
        type=int,
        default=error_status,
        choices=(429, 500, 502, 503, 504),
        help=f"the status of injected errors (default: {error_status})",
    )
    parser.add_argument(
        "--no-reply-rate",
        action="append",
        type=_route_rate,
        default=[],
        metavar="ROUTE=RATE",
        help="act on this fraction of a route's requests but never reply (repeatable)",
    )


def banner(
    base_url: str,
    api_key: str,
    secret: str,
    urls: tuple[str, ...],
    speed: float,
    caller_ids: Iterable[str] = (),
    faults: str = "",
    dashboard: str = "",
) -> str:
    """What the command prints once the sandbox listens."""
    owned = [OWNED_CALLER_ID, *sorted(set(caller_ids) - {OWNED_CALLER_ID})]
    lines = [
        "Audian sandbox running",
        f"  base URL        {base_url}",
        f"  dashboard       {dashboard or base_url.removesuffix('/v2') + '/'}",
        f"  OpenAPI         {base_url.removesuffix('/v2')}/openapi.json",
        f"  API key         {api_key}",
        f"  webhook secret  {secret}",
        f"  webhooks to     {', '.join(urls) or '(none: pass --webhook-url)'}",
        f"  speed           x{speed:g}",
        f"  caller IDs      {', '.join(owned)}",
        f"  faults          {faults or '(none)'}",
        "",
        "Magic destination numbers (any other valid number answers and completes):",
    ]
    lines += [f"  {number}  {outcome}" for number, outcome in MAGIC_NUMBERS.items()]
    lines += ["", f"  export AUDIAN_BASE_URL={base_url} AUDIAN_API_KEY={api_key}", ""]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def _describe(faults: Faults) -> str:
    parts = [f"latency {faults.latency:g}s"] if faults.latency > 0 else []
    parts += [
        f"{route} errors {rate:g} ({faults.error_status})"
        for route, rate in faults.error_rate.items()
    ]
    parts += [f"{route} no reply {rate:g}" for route, rate in faults.no_reply_rate.items()]
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit code."""
    import signal
    import threading

    from .._errors import AudianError
    from ..sandbox import Sandbox

    try:
        faults = Faults(
            latency=args.latency,
            error_rate=dict(args.error_rate),
            error_status=args.error_status,
            no_reply_rate=dict(args.no_reply_rate),
        )
        settings = SandboxSettings(
            host=args.host,
            port=args.port,
            api_key=args.api_key or DEFAULT_API_KEY,  # an empty --api-key: the default
            webhook_urls=args.webhook_url,
            webhook_secret=args.webhook_secret,
            caller_ids=args.caller_id,
            speed=args.speed,
            max_concurrent=args.max_concurrent,
            drop_rate=args.drop_rate,
            duplicate_rate=args.duplicate_rate,
            seed=args.seed,
            faults=faults,
        )
        sandbox = Sandbox(settings)
        sandbox.start()
    except (AudianError, ValueError, OSError) as exc:
        print(f"audian-async sandbox: {exc}", file=sys.stderr)
        return 2
    print(
        banner(
            sandbox.base_url,
            sandbox.api_key,
            sandbox.webhook_secret,
            sandbox.webhook_urls,
            sandbox.speed,
            sandbox.app.caller_ids,
            _describe(faults),
            sandbox.dashboard_url,
        ),
        flush=True,
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):  # the server runs on its own thread
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        print("stopping the sandbox...", file=sys.stderr, flush=True)
        sandbox.stop()
    return 0
