"""Live progress and the final summary of a campaign, for the command line (rich)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import anyio

from ..dialer import CampaignReport, DialerStats

__all__ = ["Progress", "report_json", "summary_table"]


def _eta(stats: DialerStats, started: float) -> str:
    done = stats.done
    if done == 0 or stats.total == 0:
        return "-"
    elapsed = time.monotonic() - started
    remaining = elapsed / done * (stats.total - done)
    return f"{remaining:.0f}s" if remaining < 120 else f"{remaining / 60:.1f}min"


def stats_table(stats: DialerStats, started: float) -> Any:
    """A one-row rich table of the counters."""
    from rich.table import Table

    state = " (paused: live calls finishing; Ctrl-C again to stop)" if stats.paused else ""
    table = Table(title=f"campaign {stats.campaign}{state}", title_justify="left")
    columns = ["done", "placed", "live", "completed", "failed", "waiting to redial", "ETA"]
    row = [
        f"{stats.done}/{stats.total}",
        str(stats.attempts),
        str(stats.live + stats.placing),
        str(stats.completed),
        str(stats.failed),
        str(stats.waiting),
        _eta(stats, started),
    ]
    if stats.window_waiting:
        opens = stats.window_opens
        when = "" if opens is None else f" (opens {opens:%Y-%m-%d %H:%M} UTC)"
        columns.insert(-1, "waiting for window")
        row.insert(-1, f"{stats.window_waiting}{when}")
    for name in columns:
        table.add_column(name, justify="right")
    table.add_row(*row)
    return table


class Progress:
    """Redraw the counters of ``stats()`` a few times a second while a campaign runs."""

    def __init__(self, stats: Callable[[], DialerStats], *, enabled: bool) -> None:
        self._stats = stats
        self.enabled = enabled
        self.started = time.monotonic()

    async def run(self) -> None:
        """Refresh until cancelled."""
        if not self.enabled:
            await anyio.sleep_forever()
        from rich.live import Live

        with Live(refresh_per_second=4, transient=True) as live:
            while True:
                with contextlib.suppress(RuntimeError):  # not running yet
                    live.update(stats_table(self._stats(), self.started))
                await anyio.sleep(0.25)


def summary_table(report: CampaignReport, elapsed: float) -> Any:
    """The final summary as a rich table."""
    from rich.table import Table

    table = Table(title=f"campaign {report.campaign}: summary", title_justify="left")
    table.add_column("", justify="left")
    table.add_column("calls", justify="right")
    table.add_row("requested", str(len(report.outcomes)))
    table.add_row("completed", str(report.completed))
    table.add_row("failed", str(report.failed))
    for reason, count in report.reasons().items():
        table.add_row(f"  failed: {reason}", str(count))
    if report.duplicates:
        table.add_row("duplicates (not dialed again)", str(report.duplicates))
    if report.pending:
        table.add_row("pending (stopped; the next run resumes)", str(report.pending))
        due = [o.next_at for o in report.outcomes if o.next_at is not None]
        if due:
            table.add_row("  next due", f"{min(due):%Y-%m-%d %H:%M:%S} UTC")
    table.add_row("attempts (calls placed)", str(report.attempts))
    table.add_row("redials", str(report.redials))
    table.add_row("429s waited out", str(report.rate_limited))
    table.add_row("status polls", str(report.polls))
    table.add_row("wall time", f"{elapsed:.1f}s")
    return table


def report_json(report: CampaignReport, elapsed: float, **extra: Any) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    return {
        "campaign": report.campaign,
        "requested": len(report.outcomes),
        "completed": report.completed,
        "failed": report.failed,
        "pending": report.pending,
        "duplicates": report.duplicates,
        "attempts": report.attempts,
        "failed_by_reason": report.reasons(),
        "rate_limited": report.rate_limited,
        "polls": report.polls,
        "elapsed_seconds": round(elapsed, 3),
        **extra,
        "outcomes": [o.to_dict() for o in report.outcomes],
    }
