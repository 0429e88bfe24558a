"""A call's views, without an event loop: the wire JSON is what the client decodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import audian_async as au
from audian_async._convert import decode_call
from audian_async._json import dumps
from audian_async._models import CallStatus
from audian_async.sandbox._engine import Engine
from audian_async.sandbox._scheduler import Scheduler

OWNED = "+14155552671"
WALL = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _engine() -> tuple[Engine, list[float]]:
    clock = [1000.0]
    return Engine(scheduler=Scheduler(clock=lambda: clock[0]), seed=1), clock


def test_the_wire_json_decodes_to_the_snapshot_model() -> None:
    engine, clock = _engine()
    requests = [
        au.CallRequest(from_=OWNED, to="+14155552672", tags={"a": 1}, custom_fields={"b": "c"}),
        au.CallRequest(from_=OWNED, to="+14155550101", timeout=7, max_duration=100),
        au.CallRequest(from_=OWNED, to="+14155552673", scheduled_for=WALL + timedelta(seconds=9)),
    ]
    calls = [engine.create(request, wall=WALL) for request in requests]
    for elapsed in (0.0, 1.5, 4.0, 20.0):
        clock[0] = 1000.0 + elapsed
        engine.scheduler.run_due()
        for call in calls:
            assert decode_call(dumps(engine.wire(call))) == engine.snapshot(call).call


def test_the_wire_json_has_the_reference_fields() -> None:
    engine, clock = _engine()
    call = engine.create(au.CallRequest(from_=OWNED, to="+14155550101", tags={}), wall=WALL)
    assert engine.wire(call) == {
        "call_id": call.call_id,
        "call_uuid": call.call_uuid,
        "from": OWNED,
        "to": "+14155550101",
        "status": "initiated",
        "created_at": "2026-01-02T03:04:05Z",
        "initiated_at": "2026-01-02T03:04:05Z",
        "duration": 0,
    }
    clock[0] += 1.25
    engine.scheduler.run_due()  # busy after 1 s
    assert call.status is CallStatus.FAILED
    wire = engine.wire(call)
    assert (wire["status"], wire["reason"], wire["reason_code"]) == ("failed", "busy", 486)
    assert wire["ended_at"] == "2026-01-02T03:04:06Z"
    assert "tags" not in wire  # empty tags are left out, as the API does
