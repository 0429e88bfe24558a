"""Test helper: a real redis-server on a free loopback port, started and stopped by the tests.

On a fresh machine of ours (Debian, as root) a missing redis-server is installed from
Debian's package; anywhere else the tests fail naming what to install. They are never
skipped.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .debian import debian_program
from .loopback import free_port

STARTUP_TIMEOUT = 20.0


def redis_server_binary() -> str:
    """The path of redis-server, installing Debian's package when it is missing and we can."""
    return debian_program("redis-server", "redis-server", needed_by="the Redis tests")


class RedisServer:
    """A throwaway redis-server on a fixed loopback port, which a test may stop and start
    again (Redis lost mid-run, then back)."""

    def __init__(self, workdir: str, *, durable: bool = False) -> None:
        self.durable = durable
        """Whether every write is on disk before it is acknowledged (so a restart keeps it)."""
        self.binary = redis_server_binary()
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.durable else "no",
                "--appendfsync", "always",
                "--dir", self.workdir,
                "--loglevel", "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        _wait_ready(process)
        # Keep reading its log, so a full pipe never stalls the server.
        threading.Thread(target=_drain, args=(process,), daemon=True).start()
        self.process = process

    def stop(self, *, kill: bool = False) -> None:
        """Stop it (``kill``: at once, as a crash would), losing its data."""
        process, self.process = self.process, None
        if process is None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def redis_process(*, durable: bool = False) -> Iterator[RedisServer]:
    """A :class:`RedisServer`, started; stopped on exit."""
    with tempfile.TemporaryDirectory() as workdir:
        server = RedisServer(workdir, durable=durable)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server on 127.0.0.1; yield its URL; stop it on exit."""
    with redis_process() as server:
        yield server.url


def _wait_ready(process: subprocess.Popen[bytes]) -> None:
    """Read the server's log until it says it accepts connections (or fail with its log)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    log = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        # Unbuffered reads, each waiting only the time left: a server that stalls silently
        # fails too, and no line can sit unseen in a buffer.
        while (left := deadline - time.monotonic()) > 0 and selector.select(left):
            chunk = os.read(fd, 65_536)
            if not chunk:  # it exited
                break
            log += chunk
            if b"Ready to accept connections" in log:
                return
    process.kill()
    tail = log.decode("utf-8", "replace").splitlines()[-20:]
    pytest.fail("redis-server did not start:\n" + "\n".join(tail))


def _drain(process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    with process.stdout:
        while os.read(fd, 65_536):
            pass
