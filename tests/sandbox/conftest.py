"""Helpers for the sandbox tests: a tiny webhook receiver that runs on asyncio and trio."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from audian_async._json import loads

OWNED = "+14155552671"


class Receiver:
    """Records every webhook request; ``respond`` picks each reply's status (default 200).

    ``respond`` may also return raw bytes, sent as the whole reply (to test malformed ones).
    ``connections`` counts the TCP connections accepted.
    """

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.respond: Callable[[dict[str, str], bytes], int | bytes] = lambda headers, body: 200
        self.connections = 0

    def events(self) -> list[dict[str, object]]:
        return [loads(body) for _, body in self.requests]

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        buffer = b""
        self.connections += 1
        async with stream:
            while True:
                try:
                    while b"\r\n\r\n" not in buffer:
                        buffer += await stream.receive()
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    lines = head.decode().split("\r\n")
                    headers = {}
                    for line in lines[1:]:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                    length = int(headers.get("content-length", "0"))
                    while len(buffer) < length:
                        buffer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                body, buffer = buffer[:length], buffer[length:]
                self.requests.append((headers, body))
                reply = self.respond(headers, body)
                if isinstance(reply, bytes):
                    await stream.send(reply)
                elif reply in (204, 304):
                    await stream.send(f"HTTP/1.1 {reply} X\r\n\r\n".encode())
                else:
                    await stream.send(f"HTTP/1.1 {reply} X\r\ncontent-length: 2\r\n\r\nok".encode())


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free loopback port, stopped after the test."""
    receiver = Receiver()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        port = listener.extra(SocketAttribute.local_port)
        receiver.url = f"http://127.0.0.1:{port}/hooks"
        tg.start_soon(listener.serve, receiver.handle)
        yield receiver
        tg.cancel_scope.cancel()
