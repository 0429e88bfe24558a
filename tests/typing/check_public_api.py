"""Type-checked, never run: pins the public API's signatures against regressions (mypy --strict)."""

from __future__ import annotations

from datetime import UTC, datetime

import audian_async as au


async def place_calls() -> None:
    async with au.AsyncAudian("key", base_url="http://127.0.0.1:8443/v2", default_region="US") as c:
        call: au.Call = await c.calls.create(
            from_="+14155552671",
            to="+14155552672",
            timeout=45,
            max_duration=600,
            tags={"campaign": "x"},
            custom_fields={"n": 1},
            recording=au.Recording(enabled=True, format="mp3", participant="all"),
            call_control=au.CallControl(
                on_answered=[
                    au.PlayAudio(message="hi", language="en-US", voice="female", rate=1.0),
                    au.GatherDtmf(
                        max_digits=1,
                        timeout=10,
                        finish_key="#",
                        routes=[au.DtmfRoute(digit="1", action=au.Transfer("+14155552673"))],
                    ),
                ],
                on_no_answer=[au.RecordAudio(max_duration=30, beep_start=True), au.Hangup()],
            ),
            scheduled_for=datetime(2030, 1, 1, tzinfo=UTC),
            idempotency_key="abc",
        )
        same: au.Call = await c.calls.create(au.CallRequest(from_="+14155552671", to="+1415"))
        batch: au.BatchResult = await c.calls.create_batch([au.CallRequest("+1", "+2")])
        first: au.BatchItem = batch.calls[0]
        ok: bool = first.ok
        got: au.Call = await c.calls.get(call.call_id)
        status: au.CallStatus | str | None = got.status
        slow: au.AsyncAudian = c.with_options(timeout=60, max_retries=5)
        del same, ok, status, slow
    try:
        pass
    except au.RateLimitedError as exc:
        after: float | None = exc.retry_after
        code: int = exc.status_code
        del after, code
    except au.ValidationError as exc:
        field: str = exc.field
        hint: str | None = exc.hint
        bare: au.ValidationError = exc.without_hint()
        del field, hint, bare


def instrumented() -> None:
    # The otel extra: providers of the API's types, an SDK's in practice.
    from opentelemetry.metrics import get_meter_provider
    from opentelemetry.trace import get_tracer_provider

    from audian_async.webhooks import EventRouter, WebhookApp

    client = au.AsyncAudian("key", tracer_provider=get_tracer_provider())
    router = EventRouter()
    app = WebhookApp(router, secret="whsec_x", tracer_provider=get_tracer_provider())
    dialer = au.Dialer(client, router, meter_provider=get_meter_provider())
    del app, dialer


def write_reports(report: au.CampaignReport) -> None:
    from pathlib import Path

    from audian_async.dialer import Timeline

    page: str = report.to_html("report.html")
    text: str = report.to_json(Path("report.json"))
    data: dict[str, object] = report.to_dict()
    per_item: dict[int, int] = report.attempts_per_item()
    redials: int = report.redials
    timeline: Timeline | None = report.timeline
    if timeline is not None:
        creates: tuple[int, ...] = timeline.creates
        live: tuple[float, ...] = timeline.series("live")
        step: float = timeline.step
        del creates, live, step
    del page, text, data, per_item, redials
