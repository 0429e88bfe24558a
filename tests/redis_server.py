"""Test helper: a real redis-server on a free loopback port, started and stopped by the tests.

On a fresh machine of ours (Debian, as root) a missing redis-server is installed from
Debian's package; anywhere else the tests fail naming what to install. They are never
skipped.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .loopback import free_port

STARTUP_TIMEOUT = 20.0


def redis_server_binary() -> str:
    """The path of redis-server, installing Debian's package when it is missing and we can."""
    found = shutil.which("redis-server")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
        found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "the Redis tests need a real redis-server: install Debian's package "
            "(apt-get install redis-server) or put redis-server on PATH"
        )
    return found


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server on 127.0.0.1; yield its URL; stop it on exit."""
    binary = redis_server_binary()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", workdir,
                "--loglevel", "notice",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_ready(process)
            # Keep reading its log, so a full pipe never stalls the server.
            threading.Thread(target=_drain, args=(process,), daemon=True).start()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
