"""``audian-async demo``: a whole campaign against an embedded sandbox, no setup needed.

It starts the sandbox and a webhook receiver on loopback, dials a few hundred calls across
the sandbox's magic numbers (some with an IVR menu, some recorded), redials busy and
unanswered calls with backoff, and prints the summary, the recordings received, where the
campaign's SQLite file is, and where its report is: a page with charts, written beside the
state file in the temp directory unless ``--report`` names another place.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from .._errors import AudianError
from .._models import (
    CallControl,
    CallRequest,
    DtmfRoute,
    GatherDtmf,
    PlayAudio,
    Recording,
    Transfer,
)
from .._serving import serve_webhooks
from ..dialer import Dialer, RetryPolicy, SQLiteStore
from ._errors import audian_error_in
from ._progress import Progress, summary_table
from ._reports import REPORT_SUFFIXES, write_report

__all__ = ["add_arguments", "run"]

_FROM = "+14155552671"
_MAGIC_CYCLE = (
    "+14155550101",  # busy: redialed, fails busy after max attempts
    "+14155550102",  # no answer: redialed after the ring timeout
    "+14155550103",  # declined: never redialed
    "+14155550104",  # invalid number: never redialed
    "+14155550105",  # network error: redialed
    "+14155550107",  # answers and presses 1 in the IVR
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``audian-async demo``."""
    parser.add_argument("--calls", type=int, default=300, help="calls to place (300)")
    parser.add_argument("--speed", type=float, default=50.0, help="sandbox time speed-up (50)")
    parser.add_argument(
        "--db",
        default=str(Path(tempfile.gettempdir()) / "audian-demo.sqlite3"),
        help="campaign state file (in the temp directory by default)",
    )
    parser.add_argument("--max-active", type=int, default=50, help="live calls at most (50)")
    parser.add_argument(
        "--report",
        default=str(Path(tempfile.gettempdir()) / "audian-demo-report.html"),
        help="where to write the campaign's report: a page with charts (.html) or its data "
        "(.json); in the temp directory by default",
    )


def _ivr() -> CallControl:
    return CallControl(
        on_answered=[
            PlayAudio(message="Your order has shipped. Press 1 to talk to us."),
            GatherDtmf(
                max_digits=1,
                timeout=5,
                routes=[DtmfRoute(digit="1", action=Transfer(destination="+14155552673"))],
            ),
        ]
    )


def demo_requests(count: int) -> list[CallRequest]:
    """``count`` requests: mostly answering numbers, one in five a magic failure number;
    every third with an IVR menu, every fourth recorded."""
    requests = []
    for i in range(count):
        if i % 5 == 4:
            to = _MAGIC_CYCLE[(i // 5) % len(_MAGIC_CYCLE)]
        elif i == 0:
            to = "+14155550106"  # busy first, answers on the redial
        else:
            to = f"+1415555{2700 + i % 1000:04d}"
        control = _ivr() if i % 3 == 0 or to == "+14155550107" else None
        if control is None:
            control = CallControl(on_answered=[PlayAudio(message="Hello from the demo.")])
        recording = Recording(enabled=True, format="mp3") if i % 4 == 0 else None
        requests.append(
            CallRequest(
                from_=_FROM,
                to=to,
                timeout=30,
                max_duration=120,
                tags={"demo": "yes"},
                call_control=control,
                recording=recording,
            )
        )
    return requests


def run(args: argparse.Namespace) -> int:
    """Run ``audian-async demo``; returns the exit code."""
    if args.calls < 1:
        print("error: --calls must be >= 1", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("error: --speed must be positive", file=sys.stderr)
        return 2
    if args.max_active < 1:
        print("error: --max-active must be >= 1", file=sys.stderr)
        return 2
    if Path(args.report).suffix.lower() not in REPORT_SUFFIXES:
        print(f"error: --report {args.report}: name a .html or .json file", file=sys.stderr)
        return 2
    try:
        return anyio.run(_demo, args)
    except AudianError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # raised inside a task group
        error = audian_error_in(group)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1


async def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..sandbox import Sandbox, generate_webhook_secret
    from ..webhooks import EventRouter, RecordingCompleted, WebhookApp

    console = Console()
    router = EventRouter()
    recordings: list[RecordingCompleted] = []

    @router.on("recording.completed")
    async def keep(event: RecordingCompleted) -> None:
        if len(recordings) < 10_000:
            recordings.append(event)

    secret = generate_webhook_secret()
    db_path = await anyio.Path(args.db).resolve()
    requests = demo_requests(args.calls)
    policy = RetryPolicy(max_attempts=3, base_delay=30.0, max_delay=900.0)
    campaign = f"demo-{int(time.time())}"
    async with (
        serve_webhooks(WebhookApp(router, secret=secret)) as url,
        Sandbox(speed=args.speed, webhook_urls=[url], webhook_secret=secret) as sb,
    ):
        console.print(
            f"sandbox at {sb.base_url} (speed x{args.speed:g}), webhooks to {url}\n"
            f"campaign {campaign!r}: {len(requests)} calls, at most {args.max_active} live, "
            f"up to {policy.max_attempts} attempts (busy/no_answer/network_error redialed)"
        )
        dialer = Dialer(
            sb.client,
            router,
            max_active_calls=args.max_active,
            retry=policy,
            store=SQLiteStore(args.db),
            campaign=campaign,
            time_scale=1.0 / args.speed,
        )
        started = time.monotonic()
        progress = Progress(dialer.stats, enabled=console.is_terminal)
        async with anyio.create_task_group() as tg:
            tg.start_soon(progress.run)
            # The magic numbers repeat on purpose: each repeat shows its outcome again.
            report = await dialer.run(requests, keep_duplicates=True)
            tg.cancel_scope.cancel()
        elapsed = time.monotonic() - started
        with anyio.move_on_after(5):
            await sb.wait_idle()  # late recording.completed events
        peak = sb.peak_live_calls
    console.print(summary_table(report, elapsed))
    table = Table(title=f"recordings received: {len(recordings)}", title_justify="left")
    for name in ("call", "recording", "duration", "url"):
        table.add_column(name)
    for event in recordings[:5]:
        table.add_row(
            str(event.call_id),
            str(event.recording_id),
            f"{event.duration}s",
            _s(event.recording_url),
        )
    if len(recordings) > 5:
        table.add_row("...", f"{len(recordings) - 5} more", "", "")
    console.print(table)
    console.print(f"peak live calls in the sandbox: {peak} (limit {args.max_active})")
    console.print(f"campaign state: {db_path} (campaign {campaign!r})")
    written = await anyio.to_thread.run_sync(write_report, report, args.report)
    # Printed whole, never wrapped: the path is there to be copied into a browser.
    console.print(f"report: {written}", soft_wrap=True)
    return 0


def _s(value: Any) -> str:
    return "" if value is None else str(value)
