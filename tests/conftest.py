"""Shared test configuration: every async test runs on asyncio and on trio."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from .redis_server import redis_server


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per event loop."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real redis-server of the test module's own (see :mod:`tests.redis_server`)."""
    with redis_server() as url:
        yield url


@pytest.fixture
def ns() -> str:
    """A Redis namespace of this test's own: the server outlives one test."""
    return f"t{uuid.uuid4().hex[:12]}"
