"""ASGI plumbing shared by the package's pure ASGI apps (the webhook receiver, the sandbox).

Three things every one of them needs and none should write twice: the ASGI type aliases, a
request body read that never goes past a limit, and a JSON reply. Private: the API here is
kept small and stable so that each app can build on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._json import dumps

__all__ = [
    "BodyTooLarge",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body is over the limit: announced by Content-Length, or counted.

    ``limit`` is the limit in bytes; ``size`` the announced length, or the bytes received when
    the count went over (the rest is never read).
    """

    def __init__(self, limit: int, size: int, *, announced: bool) -> None:
        how = "Content-Length" if announced else "received"
        super().__init__(f"request body over {limit} bytes ({how} {size})")
        self.limit = limit
        self.size = size
        self.announced = announced


class ClientDisconnected(Exception):
    """The client went away before the whole body arrived."""


async def read_body(
    receive: Receive, headers: Iterable[tuple[bytes, bytes]], max_body: int
) -> bytes:
    """Read the whole request body, never more than ``max_body`` bytes of it.

    A Content-Length over the limit raises :class:`BodyTooLarge` before anything is read; a
    body without one (chunked) or longer than it said is counted as it arrives and refused as
    soon as the count passes the limit. A malformed Content-Length is left to the server,
    which frames the request (the count still bounds the read). Raises
    :class:`ClientDisconnected` when the client leaves first.
    """
    for name, value in headers:
        if name == b"content-length":
            try:
                announced = int(value)
            except ValueError:
                continue
            if announced > max_body:
                raise BodyTooLarge(max_body, announced, announced=True)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_body:
                raise BodyTooLarge(max_body, size, announced=False)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]  # the usual case: no copy
    return b"".join(chunks)


async def send_json(
    send: Send, status: int, obj: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with ``status`` and ``obj`` encoded as JSON, plus any extra ``headers``."""
    body = dumps(obj)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
