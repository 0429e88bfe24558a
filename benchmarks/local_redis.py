"""A redis-server of a benchmark's own on a free loopback port, stopped when done."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from loopback import free_port


@contextmanager
def local_redis() -> Iterator[tuple[str, int]]:
    """Start ``redis-server`` (no persistence) on 127.0.0.1; yield its URL and port."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("this benchmark needs redis-server (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("redis-server did not start")
                time.sleep(0.05)  # a process being started: nothing to wait on but its port
        yield f"redis://127.0.0.1:{port}/0", port
    finally:
        server.terminate()
        server.wait(10)
