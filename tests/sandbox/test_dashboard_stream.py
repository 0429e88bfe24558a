"""The dashboard's live stream (server-sent events), read without a browser."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

import audian_async as au
from audian_async.sandbox import Sandbox

from .conftest import OWNED, Receiver

pytestmark = pytest.mark.anyio

Message = tuple[str, dict[str, Any]]


class EventStream:
    """A minimal event-stream client over a raw connection.

    httpx would do, but its streamed bodies are chains of async generators that trio warns
    about when a test stops reading before the end; this one is a plain class.
    """

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.raw = b""  # received, not yet de-chunked
        self.text = b""  # de-chunked, not yet parsed
        self.ended = False  # the server ended the body properly (the last, empty chunk)

    async def _receive(self) -> None:
        self.raw += await self.stream.receive()  # EndOfStream on an abrupt close

    async def head(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self.raw:
            await self._receive()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        status, *lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 200"), status
        return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}

    async def _chunk(self) -> None:
        while b"\r\n" not in self.raw:
            await self._receive()
        size_line, rest = self.raw.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(rest) < size + 2:
            await self._receive()
            rest = self.raw.split(b"\r\n", 1)[1]
        self.text += rest[:size]
        self.raw = rest[size + 2 :]
        self.ended = size == 0

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Message:
        while True:
            while b"\n\n" not in self.text:
                if self.ended:
                    raise StopAsyncIteration
                await self._chunk()
            block, self.text = self.text.split(b"\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode().split("\n"))
            if "data" in fields:  # else a keep-alive comment
                return fields.get("event", "message"), json.loads(fields["data"])


@asynccontextmanager
async def live(sb: Sandbox) -> AsyncIterator[EventStream]:
    """The dashboard's event stream, its headers checked."""
    async with await anyio.connect_tcp("127.0.0.1", sb.port) as connection:
        request = b"GET /_dashboard/api/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
        await connection.send(request % sb.port)
        stream = EventStream(connection)
        headers = await stream.head()
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert headers["transfer-encoding"] == "chunked"
        yield stream


def dashboard(sb: Sandbox) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sb.dashboard_url.rstrip("/"))


async def test_a_snapshot_then_the_changes_as_they_happen(receiver: Receiver) -> None:
    async with (
        Sandbox(speed=100, webhook_urls=[receiver.url]) as sb,
        live(sb) as stream,
    ):
        name, snapshot = await anext(stream)
        assert name == "snapshot"
        assert snapshot["calls"] == snapshot["deliveries"] == snapshot["requests"] == []
        assert snapshot["faults"]["error_rate"] == {}
        assert snapshot["overview"]["calls"]["created"] == 0
        call = await sb.client.calls.create(from_=OWNED, to="+14155552672")
        statuses: list[str] = []
        requests: list[dict[str, Any]] = []
        delivered: set[str] = set()
        with anyio.fail_after(30):  # a guard against a hang, not a measure
            async for name, update in stream:
                assert name == "update"
                assert "faults" not in update  # only sent when the knobs change
                requests += update["requests"]
                delivered |= {d["event"] for d in update["deliveries"] if d["ok"]}
                statuses += [c["status"] for c in update["calls"] if c["call_id"] == call.call_id]
                if statuses[-1:] == ["completed"] and "call.completed" in delivered:
                    break
        assert statuses[0] in ("initiated", "ringing", "answered")
        assert [(r["method"], r["path"], r["status"]) for r in requests] == [
            ("POST", "/v2/calls", 201)
        ]
        assert delivered == {"call.initiated", "call.ringing", "call.answered", "call.completed"}
        assert update["overview"]["calls"]["completed"] == 1


async def test_a_knob_change_is_streamed_at_once() -> None:
    async with (
        Sandbox(speed=100) as sb,
        dashboard(sb) as http,
        live(sb) as stream,
    ):
        await anext(stream)
        change = {"latency": 0.25, "no_reply_rate": {"*": 0.5}}
        patched = await http.patch(
            "/_dashboard/api/faults", json=change, headers={"X-Audian-Dashboard": "1"}
        )
        assert patched.status_code == 200
        name, update = await anext(stream)
        assert name == "update"
        assert update["faults"]["latency"] == 0.25
        assert update["faults"]["no_reply_rate"] == {"*": 0.5}


async def test_a_thousand_calls_arrive_in_a_few_messages() -> None:
    async with (
        Sandbox(speed=100, max_concurrent=2_000) as sb,
        live(sb) as stream,
    ):
        await anext(stream)
        requests = [au.CallRequest(from_=OWNED, to=f"+1415555{3000 + n:04d}") for n in range(1000)]
        batch = await sb.client.calls.create_batch(requests)
        assert batch.queued == 1000
        seen: dict[str, str] = {}
        with anyio.fail_after(60):
            async for _, update in stream:
                seen.update({c["call_id"]: c["status"] for c in update["calls"]})
                if update["overview"]["calls"]["completed"] == 1000 and all(
                    status == "completed" for status in seen.values()
                ):
                    break
        assert len(seen) == 1000
        assert set(seen) == {c.call_id for c in batch.calls}


async def test_stopping_the_sandbox_ends_open_streams_cleanly() -> None:
    async with Sandbox(speed=100) as sb, live(sb) as stream:
        name, _ = await anext(stream)
        assert name == "snapshot"
        await anyio.to_thread.run_sync(sb.stop)
        async for name, _ in stream:  # EndOfStream here if the server cut it off
            assert name == "update"
        assert stream.ended


async def test_a_closed_dashboard_tells_event_sources_not_to_reconnect() -> None:
    async with Sandbox(speed=100) as sb, dashboard(sb) as http:
        await anyio.to_thread.run_sync(sb._call, sb.app.dashboard.close)
        response = await http.get("/_dashboard/api/events")
        assert response.status_code == 204
