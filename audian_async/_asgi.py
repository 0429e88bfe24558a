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
    "check_length",
    "read_body",
    "receive_body",
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
            check_length(value, max_body)
    return await receive_body(receive, max_body)


def check_length(content_length: bytes, max_body: int) -> None:
    """Raise :class:`BodyTooLarge` when a Content-Length value announces over ``max_body``.

    A malformed value is left to the server, which frames the request.
    """
    try:
        announced = int(content_length)
    except ValueError:
        return
    if announced > max_body:
        raise BodyTooLarge(max_body, announced, announced=True)


async def receive_body(receive: Receive, max_body: int) -> bytes:
    """Read the request body as it arrives, refusing it as soon as it passes ``max_body``."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnected
    chunk: bytes = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message, no copy
        if len(chunk) > max_body:
            raise BodyTooLarge(max_body, len(chunk), announced=False)
        return chunk
    chunks = [chunk]
    size = len(chunk)
    while True:
        if size > max_body:
            raise BodyTooLarge(max_body, size, announced=False)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)


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
