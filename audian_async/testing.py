"""pytest fixtures that run the Audian sandbox for your own test suite.

The plugin is registered automatically (a ``pytest11`` entry point) when ``audian-async`` is
installed; ``pytest_plugins = ["audian_async.testing"]`` in a root ``conftest.py`` works too
when entry points are disabled. Nothing heavy is imported until a fixture is used, so the
plugin costs nothing to suites that do not use it (and needs the ``sandbox`` extra only then).

* ``audian_sandbox``: an async fixture (anyio's pytest plugin, so asyncio and trio) yielding a
  running :class:`~audian_async.sandbox.Sandbox` with a ready ``sb.client``::

      @pytest.mark.anyio
      async def test_busy(audian_sandbox):
          call = await audian_sandbox.client.calls.create(
              from_="+14155552671", to="+14155550101")
          done = await audian_sandbox.wait_for_status(call.call_id)
          assert done.reason == "busy"

* ``audian_sandbox_server``: a plain (synchronous) fixture yielding a running sandbox without
  a client, for any event loop or pytest-asyncio: build ``AsyncAudian(sb.api_key,
  base_url=sb.base_url)`` inside the test.
* ``audian_sandbox_options``: override it to pass options to both, e.g.::

      @pytest.fixture
      def audian_sandbox_options():
          return {"speed": 100, "max_concurrent": 5, "webhook_urls": [...]}

Every fixture is function-scoped: each test gets a fresh sandbox (magic-number attempt
counts, calls and deliveries start empty), started on a free loopback port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .sandbox import Sandbox

__all__ = ["DEFAULT_OPTIONS", "audian_sandbox", "audian_sandbox_options", "audian_sandbox_server"]

DEFAULT_OPTIONS: dict[str, Any] = {"speed": 50.0}
"""Options used when ``audian_sandbox_options`` is not overridden: fast simulated time."""


@pytest.fixture
def audian_sandbox_options() -> dict[str, Any]:
    """Keyword arguments for the sandbox fixtures' :class:`Sandbox` (override to change)."""
    return dict(DEFAULT_OPTIONS)


@pytest.fixture
async def audian_sandbox(audian_sandbox_options: dict[str, Any]) -> AsyncIterator[Sandbox]:
    """A running sandbox with a ready ``client``, stopped after the test (asyncio or trio)."""
    from .sandbox import Sandbox

    async with Sandbox(**audian_sandbox_options) as sandbox:
        yield sandbox


@pytest.fixture
def audian_sandbox_server(audian_sandbox_options: dict[str, Any]) -> Iterator[Sandbox]:
    """A running sandbox for synchronous fixtures and any event loop (no ``client``)."""
    from .sandbox import Sandbox

    sandbox = Sandbox(**audian_sandbox_options)
    sandbox.start()
    try:
        yield sandbox
    finally:
        sandbox.stop()
