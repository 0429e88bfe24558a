"""A minimal, fast HTTP/1.1 server on 127.0.0.1 for the client benchmarks.

It answers every POST with a canned create-call reply in the shape the caller's API uses, so
the client under test does all the work a real reply would cost it while the server costs as
little as possible (a raw asyncio Protocol; uvloop when installed). It runs in its own process:
``python benchmarks/_loopback_server.py`` prints ``PORT <n>`` once it listens on a free port
and serves until its stdin closes or it gets SIGTERM/SIGINT.

Routes (by path, any method):

* ``.../Calls.json``      -> a Twilio call resource (201)
* ``/telnyx/...``         -> a Telnyx ``{"data": {...}}`` dial reply (200)
* anything else           -> the Audian reference's create-call reply (201)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
import threading
from typing import Any

AUDIAN_CALL = json.dumps(
    {
        "call_id": "call_xyz789",
        "call_uuid": "550e8400-e29b-41d4-a716-446655440000",
        "from": "+14155552671",
        "to": "+14155552672",
        "status": "initiated",
        "created_at": "2024-01-15T10:30:00Z",
    }
).encode()

TWILIO_CALL = json.dumps(
    {
        "account_sid": "AC" + "0" * 32,
        "annotation": None,
        "answered_by": None,
        "api_version": "2010-04-01",
        "caller_name": None,
        "date_created": "Mon, 15 Jan 2024 10:30:00 +0000",
        "date_updated": "Mon, 15 Jan 2024 10:30:00 +0000",
        "direction": "outbound-api",
        "duration": None,
        "end_time": None,
        "forwarded_from": None,
        "from": "+14155552671",
        "from_formatted": "(415) 555-2671",
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": "PN" + "0" * 32,
        "price": None,
        "price_unit": "USD",
        "sid": "CA" + "0" * 32,
        "start_time": None,
        "status": "queued",
        "subresource_uris": {},
        "to": "+14155552672",
        "to_formatted": "(415) 555-2672",
        "trunk_sid": None,
        "uri": "/2010-04-01/Accounts/AC/Calls/CA.json",
        "queue_time": "0",
    }
).encode()

TELNYX_DIAL = json.dumps(
    {
        "data": {
            "call_control_id": "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
            "call_leg_id": "2dc6fc34-f9e0-11ea-b68e-02420a0f7768",
            "call_session_id": "2dc1b3c8-f9e0-11ea-bc5a-02420a0f7768",
            "is_alive": False,
            "record_type": "call",
            "recording_id": None,
            "call_duration": 0,
            "start_time": "2024-01-15T10:30:00Z",
        }
    }
).encode()


def _reply(status: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


_REPLIES = {
    "audian": _reply(b"201 Created", AUDIAN_CALL),
    "twilio": _reply(b"201 Created", TWILIO_CALL),
    "telnyx": _reply(b"200 OK", TELNYX_DIAL),
}
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024


def _route(path: bytes) -> bytes:
    if path.startswith(b"/telnyx/"):
        return _REPLIES["telnyx"]
    if path.endswith(b"/Calls.json"):
        return _REPLIES["twilio"]
    return _REPLIES["audian"]


class _HTTP(asyncio.Protocol):
    """Parses pipelined HTTP/1.1 requests (Content-Length or chunked bodies) and replies."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    self._fail()
                    return
                break
            head = buf[:end]
            start = end + 4
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            parts = request_line.split(b" ")
            if len(parts) != 3:
                self._fail()
                return
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                done = _chunked_end(buf, start)
                if done is None:
                    break
                buf = buf[done:]
            else:
                length = 0
                at = lower.find(b"\r\ncontent-length:")
                if at >= 0:
                    value_end = lower.find(b"\r\n", at + 2)
                    value = lower[at + 17 : value_end if value_end >= 0 else None]
                    length = int(value.strip())
                    if length > _MAX_BODY:
                        self._fail()
                        return
                if len(buf) < start + length:
                    break
                buf = buf[start + length :]
            out.append(_route(parts[1].split(b"?", 1)[0]))
        self.buf = buf
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def _fail(self) -> None:
        if self.transport is not None:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            self.transport.close()
        self.buf = b""


def _chunked_end(buf: bytes, pos: int) -> int | None:
    """Offset just past a complete chunked body starting at ``pos``, or None if incomplete."""
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buf[pos:line_end].split(b";", 1)[0], 16)
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)
            return None if trailer_end < 0 else trailer_end + 2
        if len(buf) < pos + size + 2:
            return None
        pos += size + 2


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HTTP, "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        # The parent holds our stdin pipe: when it goes away, so do we.
        def watch_parent() -> None:
            # os.read, not sys.stdin: a buffered reader's lock held by this daemon thread
            # would abort the interpreter's shutdown.
            while os.read(0, 4096):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_parent, daemon=True).start()
    async with server:
        await stop.wait()


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve())
    else:
        uvloop.run(_serve())


if __name__ == "__main__":
    main()
