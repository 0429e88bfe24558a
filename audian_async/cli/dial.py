"""``audian-async dial numbers.csv``: run a campaign from a CSV file."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from .._client import AsyncAudian
from .._errors import (
    APIConnectionError,
    AudianError,
    AuthenticationError,
    PermissionDeniedError,
)
from .._json import dumps
from .._models import CallRequest
from .._redis import REDIS_SCHEMES, shown_url
from .._serving import serve_webhooks
from ..dialer import (
    DEFAULT_DB_PATH,
    CampaignReport,
    Dialer,
    RedisStore,
    RetryPolicy,
    SQLiteStore,
)
from ..webhooks import EventRouter, WebhookApp
from ._csv import CsvError, read_requests
from ._errors import audian_error_in
from ._progress import Progress, report_json, summary_table
from ._reports import REPORT_SUFFIXES, write_report

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``audian-async dial``."""
    parser.add_argument(
        "csv", help="CSV of numbers (a 'to'/'number'/'phone' column, or one per line)"
    )
    parser.add_argument("--from", dest="from_", required=True, help="caller ID your account owns")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--message", help="text-to-speech message played when answered")
    what.add_argument("--audio-url", help="audio file played when answered")
    parser.add_argument("--max-active", type=int, default=100, help="live calls at most (100)")
    parser.add_argument("--cps", type=float, default=None, help="calls placed per second at most")
    parser.add_argument(
        "--campaign", help="campaign name; the same name resumes (default: from the file)"
    )
    parser.add_argument("--max-attempts", type=int, default=3, help="calls per number at most (3)")
    parser.add_argument(
        "--base-delay", type=float, default=30.0, help="redial backoff base, s (30)"
    )
    parser.add_argument(
        "--max-delay", type=float, default=900.0, help="redial backoff cap, s (900)"
    )
    parser.add_argument(
        "--store",
        help=f"campaign state: an SQLite file ({DEFAULT_DB_PATH}), or redis://host:6379/0 "
        "to share the campaign with every machine running the same command",
    )
    parser.add_argument("--db", default=DEFAULT_DB_PATH, help=argparse.SUPPRESS)  # older name
    parser.add_argument("--json", action="store_true", help="print a JSON report, no live display")
    parser.add_argument(
        "--report",
        metavar="PATH",
        help="also write the campaign's report to PATH: a page with charts (.html, one "
        "file that opens offline) or the same data as JSON (.json)",
    )
    parser.add_argument("--region", help="region for national numbers, e.g. US")
    parser.add_argument("--webhook-host", default="127.0.0.1", help="receiver address (127.0.0.1)")
    parser.add_argument(
        "--webhook-port", type=int, default=8765, help="receiver port (8765; 0: any)"
    )
    parser.add_argument(
        "--no-webhooks", action="store_true", help="no receiver: learn outcomes by polling"
    )
    parser.add_argument(
        "--poll-after",
        type=float,
        default=None,
        help="poll a call this many seconds after placing it when no webhook came "
        "(default: its ring timeout without webhooks, else timeout + max_duration + 60)",
    )
    parser.add_argument("--poll-interval", type=float, default=None, help="seconds between polls")
    parser.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="dial a number listed twice twice (default: once, the repeats reported as duplicates)",
    )


def _store(args: argparse.Namespace) -> tuple[SQLiteStore | RedisStore, str]:
    """The campaign's store from ``--store`` (or ``--db``), and how to name it to the user."""
    location = args.store or args.db
    if location.startswith(REDIS_SCHEMES):
        return RedisStore(location), shown_url(location)
    return SQLiteStore(location), location


def _default_campaign(path: Path, text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=5).hexdigest()
    return f"{path.stem}-{digest}"


def run(args: argparse.Namespace) -> int:
    """Run ``audian-async dial``; returns the exit code."""
    path = Path(args.csv)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        requests = read_requests(
            text,
            from_=args.from_,
            message=args.message,
            audio_url=args.audio_url,
            default_region=args.region,
            path=str(path),
        )
        policy = RetryPolicy(
            max_attempts=args.max_attempts, base_delay=args.base_delay, max_delay=args.max_delay
        )
    except CsvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AudianError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_active < 1:
        print("error: --max-active must be >= 1", file=sys.stderr)
        return 2
    if args.report is not None and Path(args.report).suffix.lower() not in REPORT_SUFFIXES:
        # Before dialing: a campaign must not run for hours to end on a report it cannot write.
        print(f"error: --report {args.report}: name a .html or .json file", file=sys.stderr)
        return 2
    campaign = args.campaign or _default_campaign(path, text)
    try:
        return anyio.run(_dial, args, requests, policy, campaign)
    except AudianError as exc:
        return _fail(exc, args, campaign)
    except BaseExceptionGroup as group:  # raised inside a task group
        error = audian_error_in(group)
        if error is None:
            raise
        return _fail(error, args, campaign)
    except KeyboardInterrupt:
        print(
            f"interrupted: run the same command again to resume campaign {campaign!r}",
            file=sys.stderr,
        )
        return 130


def _fail(exc: AudianError, args: argparse.Namespace, campaign: str) -> int:
    print(f"error: {exc}", file=sys.stderr)
    where = _store(args)[1]
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        print(
            f"the API refused the account or its setup, so the campaign stopped; calls not yet "
            f"placed stay pending in {where}: fix it (AUDIAN_API_KEY...) and run the same "
            f"command again to resume campaign {campaign!r}",
            file=sys.stderr,
        )
    elif isinstance(exc, APIConnectionError):
        print(
            f"the API could not be reached, so the campaign stopped; calls not yet placed stay "
            f"pending in {where}: check AUDIAN_BASE_URL and the network, then run the same "
            f"command again to resume campaign {campaign!r}",
            file=sys.stderr,
        )
    return 1


async def _dial(
    args: argparse.Namespace, requests: list[CallRequest], policy: RetryPolicy, campaign: str
) -> int:
    say: Callable[[str], None] = (
        (lambda msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    )
    router = EventRouter()
    secret = None if args.no_webhooks else os.environ.get("AUDIAN_WEBHOOK_SECRET")
    interactive = not args.json and sys.stderr.isatty()
    store, where = _store(args)
    async with AsyncAudian(default_region=args.region) as client:
        # Built before any task group, so a bad option is a plain error. Without webhooks
        # it polls alone: soon after the ring timeout.
        dialer = Dialer(
            client,
            router if secret else None,
            max_active_calls=args.max_active,
            calls_per_second=args.cps,
            retry=policy,
            store=store,
            campaign=campaign,
            poll_after=args.poll_after,
            poll_interval=args.poll_interval,
        )
        started = time.monotonic()
        async with _receiver(args, router, secret, say):
            say(f"campaign {campaign!r}: {len(requests)} numbers, state in {where}")
            progress = Progress(dialer.stats, enabled=interactive)
            report: CampaignReport | None = None
            async with anyio.create_task_group() as tg:
                tg.start_soon(progress.run)
                tg.start_soon(_interrupts, dialer, campaign, tg.cancel_scope)
                report = await dialer.run(requests, keep_duplicates=args.keep_duplicates)
                tg.cancel_scope.cancel()
    if report is None:  # interrupted before the campaign was under way
        print(f"interrupted: run the same command again to resume campaign {campaign!r}")
        return 130
    elapsed = time.monotonic() - started
    if args.json:
        print(dumps(report_json(report, elapsed, db=where)).decode())
    else:
        from rich.console import Console

        Console().print(summary_table(report, elapsed))
    if args.report is not None:
        try:
            written = write_report(report, args.report)
        except OSError as exc:
            print(f"error: cannot write {args.report}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        # On stderr: with --json, stdout holds the JSON report alone.
        print(f"report: {written}", file=sys.stderr)
    if report.pending:
        print(
            f"stopped with {report.pending} calls pending: run the same command again to "
            f"resume campaign {campaign!r}",
            file=sys.stderr,
        )
        return 130
    return 0


async def _interrupts(dialer: Dialer, campaign: str, scope: anyio.CancelScope) -> None:
    """The first Ctrl-C pauses the campaign (live calls finish), the second stops it."""
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        presses = 0
        async for _ in signals:
            presses += 1
            try:
                if presses == 1:
                    dialer.pause()
                    print(
                        "paused: no new calls; live calls are followed to their end. "
                        "Press Ctrl-C again to stop (the next run resumes)",
                        file=sys.stderr,
                    )
                    continue
                dialer.stop()
            except RuntimeError:  # not dialing yet: nothing to pause, stop right away
                scope.cancel()
                return
            print(f"stopping campaign {campaign!r}...", file=sys.stderr)
            return


@asynccontextmanager
async def _receiver(
    args: argparse.Namespace,
    router: EventRouter,
    secret: str | None,
    say: Callable[[str], None],
) -> AsyncIterator[None]:
    """Serve a WebhookApp for the campaign when a signing secret is configured."""
    if args.no_webhooks:
        say("webhooks off: outcomes are learned by polling")
    elif not secret:
        say(
            "no AUDIAN_WEBHOOK_SECRET set: webhooks off, outcomes are learned by polling "
            "(set it to receive signed webhooks)"
        )
    else:
        app = WebhookApp(router, secret=secret)
        async with serve_webhooks(app, args.webhook_host, args.webhook_port) as url:
            say(f"receiving webhooks at {url}: configure this URL for your account")
            yield
        return
    yield
