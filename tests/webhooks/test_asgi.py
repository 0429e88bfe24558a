"""The shared ASGI helpers in audian_async._asgi: bounded body reads and JSON replies."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from audian_async._asgi import (
    BodyTooLarge,
    ClientDisconnected,
    Message,
    Receive,
    read_body,
    send_json,
)

pytestmark = pytest.mark.anyio


def _receiver(messages: Iterable[Message]) -> tuple[Receive, list[Message]]:
    """A receive callable over ``messages``; the list returned holds what was consumed."""
    pending = list(messages)
    consumed: list[Message] = []

    async def receive() -> Message:
        message = pending.pop(0)
        consumed.append(message)
        return message

    return receive, consumed


def _chunks(*parts: bytes) -> list[Message]:
    return [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]


async def test_single_chunk_is_returned_as_is() -> None:
    body = b'{"a": 1}'
    receive, _ = _receiver(_chunks(body))
    assert await read_body(receive, [(b"content-length", b"8")], 8) is body


async def test_chunks_are_joined_and_empty_ones_skipped() -> None:
    receive, _ = _receiver(_chunks(b"ab", b"", b"cd", b""))
    assert await read_body(receive, [], 4) == b"abcd"


async def test_empty_body() -> None:
    receive, _ = _receiver([{"type": "http.request"}])
    assert await read_body(receive, [], 10) == b""


async def test_announced_length_over_the_limit_reads_nothing() -> None:
    receive, consumed = _receiver(_chunks(b"x" * 11))
    with pytest.raises(BodyTooLarge) as info:
        await read_body(receive, [(b"content-length", b"11")], 10)
    assert consumed == []
    assert (info.value.limit, info.value.size, info.value.announced) == (10, 11, True)
    assert "10 bytes" in str(info.value)


async def test_counted_length_over_the_limit_stops_reading() -> None:
    receive, consumed = _receiver(_chunks(b"x" * 6, b"x" * 6, b"x" * 6))
    with pytest.raises(BodyTooLarge) as info:
        await read_body(receive, [], 10)  # chunked: no Content-Length
    assert len(consumed) == 2  # the third chunk is never read
    assert (info.value.size, info.value.announced) == (12, False)


async def test_body_longer_than_announced_is_still_counted() -> None:
    receive, _ = _receiver(_chunks(b"x" * 8, b"x" * 8))
    with pytest.raises(BodyTooLarge):
        await read_body(receive, [(b"content-length", b"5")], 10)


@pytest.mark.parametrize("value", [b"abc", b"\xb2", b"9" * 5000, b""])
async def test_malformed_content_length_is_left_to_the_count(value: bytes) -> None:
    receive, _ = _receiver(_chunks(b"ok"))
    assert await read_body(receive, [(b"content-length", value)], 10) == b"ok"
    receive, _ = _receiver(_chunks(b"x" * 11))
    with pytest.raises(BodyTooLarge):
        await read_body(receive, [(b"content-length", value)], 10)


async def test_disconnect_before_the_end() -> None:
    receive, _ = _receiver([*_chunks(b"ab", b"cd")[:1], {"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnected):
        await read_body(receive, [], 10)


async def test_send_json() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await send_json(send, 405, {"error": "method_not_allowed"}, headers=[(b"allow", b"POST")])
    start, body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 405
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"allow"] == b"POST"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert body["type"] == "http.response.body"
    assert json.loads(body["body"]) == {"error": "method_not_allowed"}
