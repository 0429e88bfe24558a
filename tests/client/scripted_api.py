"""A scripted stand-in for the Audian API, for client tests over real HTTP.

Each request pops the next scripted reply for its method (or answers 200 with a call when the
script is empty), and every request is recorded so tests can count what reached the server.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import attrs

CALL = {
    "call_id": "call_xyz789",
    "call_uuid": "550e8400-e29b-41d4-a716-446655440000",
    "from": "+14155552671",
    "to": "+14155552672",
    "status": "initiated",
    "created_at": "2024-01-15T10:30:00Z",
}


@attrs.define
class Reply:
    """One scripted answer. ``hold`` never answers: the request stays open until the client
    gives up (a timeout, a cancellation), whatever the machine's speed."""

    status: int = 200
    body: bytes | dict[str, Any] = attrs.Factory(lambda: dict(CALL))
    headers: dict[str, str] = attrs.Factory(dict)
    hold: bool = False


HOLD = Reply(hold=True)


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class ScriptedAPI:
    """The ASGI app; ``script[method]`` holds the replies to give, in order."""

    script: dict[str, deque[Reply]] = attrs.Factory(dict)
    seen: list[Seen] = attrs.Factory(list)

    def then(self, method: str, *replies: Reply) -> ScriptedAPI:
        self.script.setdefault(method, deque()).extend(replies)
        return self

    def count(self, method: str) -> int:
        return sum(1 for s in self.seen if s.method == method)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["raw_path"].decode()
        self.seen.append(Seen(scope["method"], path, headers, body))
        queue = self.script.get(scope["method"])
        reply = queue.popleft() if queue else Reply()
        if reply.hold:
            while (await receive())["type"] != "http.disconnect":
                pass
            return
        raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        out_headers = [(b"content-length", str(len(raw)).encode())]
        if not isinstance(reply.body, bytes):
            out_headers.append((b"content-type", b"application/json"))
        out_headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await send({"type": "http.response.start", "status": reply.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": raw})


def error(status: int, code: str, message: str, **headers: str) -> Reply:
    """A reply in the reference's error shape."""
    return Reply(status, {"error": code, "message": message, "code": status}, headers)


@contextmanager
def hang_up_server(reply: bytes = b"") -> Iterator[tuple[str, list[bytes]]]:
    """A raw TCP server that reads one request per connection, sends ``reply`` (by default
    nothing) and closes.

    It is what a client sees when the API acted on a POST but no (readable) reply arrived.
    """
    received: list[bytes] = []
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                if data:
                    received.append(data)
                    if reply:
                        with suppress(OSError):
                            conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    finally:
        stop.set()
        thread.join(5)
        listener.close()
