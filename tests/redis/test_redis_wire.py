"""The dialer's minimal RESP client: replies parsed, URLs read, errors kept apart."""

from __future__ import annotations

import pytest

from audian_async._resp_wire import (
    ReplyError,
    WireClient,
    address_of,
    encode,
    parse_reply,
    supported,
)

pytestmark = pytest.mark.anyio


def test_commands_are_arrays_of_bulk_strings() -> None:
    assert (
        encode(["SET", "k", 12, b"\xff"])
        == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$1\r\n\xff\r\n"
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"+OK\r\n", "OK"),
        (b":-3\r\n", -3),
        (b"$-1\r\n", None),
        (b"$4\r\nh\xc3\xa9y\r\n", "h\xe9y"),
        (b"*3\r\n$7\r\nclaimed\r\n:4\r\n*2\r\n:1\r\n$0\r\n\r\n", ["claimed", 4, [1, ""]]),
        (b"*-1\r\n", None),
    ],
)
def test_replies_of_every_type_are_parsed(raw: bytes, value: object) -> None:
    assert parse_reply(bytearray(raw), 0) == (value, len(raw))
    for cut in range(len(raw)):  # a reply split anywhere waits for the rest
        assert parse_reply(bytearray(raw[:cut]), 0) is None


def test_an_error_reply_is_a_value_not_a_crash_of_the_parser() -> None:
    parsed = parse_reply(bytearray(b"-NOSCRIPT No matching script\r\n"), 0)
    assert parsed is not None
    assert isinstance(parsed[0], ReplyError)
    assert str(parsed[0]).startswith("NOSCRIPT")


def test_urls_it_reads_and_those_left_to_coredis() -> None:
    a = address_of("redis://user:p%40ss@example.com:6380/2")
    assert a is not None
    assert (a.host, a.port, a.username, a.password, a.db, a.tls) == (
        "example.com", 6380, "user", "p@ss", 2, False,
    )  # fmt: skip
    b = address_of("unix:///run/redis.sock?db=3")
    assert b is not None
    assert (b.path, b.db) == ("/run/redis.sock", 3)
    assert supported("rediss://:secret@h/0")
    assert not supported("redis://h/0?ssl_cert_reqs=none")  # options only coredis knows


async def test_a_real_server_answers_and_an_error_reply_is_raised(redis_url: str) -> None:
    async with WireClient(redis_url, max_connections=2) as client:
        assert await client.call("SET", "wire:k", "v") == "OK"
        assert await client.call("GET", "wire:k") == "v"
        assert await client.call("DEL", "wire:k") == 1
        with pytest.raises(ReplyError, match="unknown command"):
            await client.call("NOSUCHCOMMAND")
        assert await client.call("PING") == "PONG"  # the connection is still in step


def test_a_new_connection_authenticates_and_selects_as_the_url_says() -> None:
    full = address_of("redis://user:p%40ss@h:6380/2")
    assert full is not None
    assert full.handshake() == [encode(["AUTH", "user", "p@ss"]), encode(["SELECT", 2])]
    password_only = address_of("redis://:secret@h/0")
    assert password_only is not None
    assert password_only.handshake() == [encode(["AUTH", "secret"])]
    plain = address_of("redis://h")
    assert plain is not None
    assert plain.handshake() == []


async def test_both_clients_use_the_urls_database_and_refuse_a_wrong_password(
    redis_url: str,
) -> None:
    from audian_async._resp_wire import resp_client

    in_db_3 = redis_url.rsplit("/", 1)[0] + "/3"
    client = resp_client(in_db_3)
    assert client is not None
    async with client:
        assert await client.call("SET", "wire:db3", "x") == "OK"
    async with WireClient(redis_url) as db0:
        assert await db0.call("EXISTS", "wire:db3") == 0  # written to database 3
    async with WireClient(in_db_3) as db3:
        assert await db3.call("GETDEL", "wire:db3") == "x"
    with_password = resp_client(redis_url.replace("redis://", "redis://:nope@"))
    assert with_password is not None
    with pytest.raises(ReplyError):  # this server has no password: AUTH is refused
        async with with_password:
            await with_password.call("PING")
