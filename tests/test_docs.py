"""Every ```python block of the documentation runs, so no example in docs/ (or README.md) rots.

Each page is one program: its blocks run in order in one namespace, the way a reader types
them into ``python -m asyncio``, so a fragment may use what an earlier block of the same page
defined. Top-level ``await`` and ``async with`` are allowed. The page runs against a fresh
sandbox, found the way a user's code finds the real API: ``AUDIAN_BASE_URL``,
``AUDIAN_API_KEY`` and ``AUDIAN_WEBHOOK_SECRET`` are set in the environment, and the current
directory is a temporary one (the dialer's default SQLite file lands there). When a page
defines a module-level ``app`` (a ``WebhookApp``), the sandbox delivers its signed webhooks to
it, as Audian delivers to the endpoint a service serves; the sandbox also owns the caller IDs
in ``CALLER_IDS``. Pages run on asyncio and on trio.

A block is run unless an HTML comment on the line before its fence says otherwise; these
markers are rare and each one is explicit:

* ``<!-- docs-test: asyncio -->``: asyncio only (aiohttp, uvicorn).
* ``<!-- docs-test: redis -->``: needs Redis; ``redis://127.0.0.1:6379/0`` in the block is
  replaced by a throwaway redis-server of the tests (:mod:`tests.redis_server`).
* ``<!-- docs-test: pytest -->``: the block is a test module; pytest runs it on its own.
* ``<!-- docs-test: skip REASON -->``: not run, for the reason given.

A block made only of ``--8<-- "path"`` lines includes a file: that file must be one the suite
runs (``examples/``), and it is not run again here.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import attrs
import pytest

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
REDIS_PLACEHOLDER = "redis://127.0.0.1:6379/0"
# Caller IDs the pages' sandbox owns besides its default one, as `--caller-id` would add them.
CALLER_IDS = ["+12125550100"]
MARKERS = ("asyncio", "redis", "pytest", "skip")

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>\w+)(?P<reason>[^>]*?)\s*-->\s*$")
_INCLUDE = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')


@attrs.frozen
class Block:
    """One fenced ```python block of a page."""

    path: Path
    line: int  # 1-based line of the opening fence
    source: str
    marker: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        """``page.md:LINE``, relative to the repository when the page is in it."""
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{shown}:{self.line}"

    @property
    def includes(self) -> list[str]:
        """The files a snippet-include block pulls in (empty for ordinary code)."""
        lines = [line.strip() for line in self.source.splitlines() if line.strip()]
        found = [m.group("path") for line in lines if (m := _INCLUDE.match(line))]
        return found if found and len(found) == len(lines) else []


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of a Markdown file, in order, with the marker before each."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        language = opening.group("info").strip().split(" ")[0].lstrip("{.")
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][indent:])
            i += 1
        i += 1
        if language not in ("python", "py"):
            continue
        marker = _MARKER.match(lines[start - 1]) if start else None
        kind = marker.group("kind") if marker else None
        if kind is not None and kind not in MARKERS:
            raise ValueError(f"{path}:{start + 1}: unknown docs-test marker {kind!r}")
        blocks.append(
            Block(
                path,
                start + 1,
                "\n".join(body) + "\n",
                kind,
                marker.group("reason").strip() if marker else "",
            )
        )
    return blocks


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


PAGES_WITH_CODE = [p for p in [*PAGES, ROOT / "README.md"] if python_blocks(p)]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop a page's top-level ``await`` runs on."""
    name: str = request.param
    return name


class _Forward:
    """An ASGI app that hands each request to the page's ``app`` once the page defines it."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        app = self.namespace.get("app")
        if app is None:  # not defined yet: the sandbox redelivers later
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)


@asynccontextmanager
async def _receiver(namespace: dict[str, Any]) -> AsyncIterator[str]:
    """Serve the page's webhook ``app`` on the page's own loop; yields its URL."""
    from audian_async._serving import serve_webhooks

    async with serve_webhooks(_Forward(namespace)) as url:
        yield url


def _compile(block: Block, source: str) -> Any:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    return compile(source, block.where, "exec", flags=flags, dont_inherit=True)


def _run_block(block: Block, namespace: dict[str, Any], portal: Any, redis_url: str) -> None:
    source = block.source
    if block.marker == "redis":
        assert REDIS_PLACEHOLDER in source, f"{block.where}: no {REDIS_PLACEHOLDER} to replace"
        source = source.replace(REDIS_PLACEHOLDER, redis_url)
    code = _compile(block, source)

    async def run() -> None:
        result = eval(code, namespace)  # a coroutine when the block awaits at top level
        if result is not None:
            await result

    if code.co_flags & inspect.CO_COROUTINE:  # the block awaits at top level
        portal.call(run)
    else:
        # A synchronous block may start its own event loop (``anyio.run(main)``), which it
        # cannot do from inside the page's: it runs in this thread, outside any loop.
        exec(code, namespace)


def _run_pytest_blocks(blocks: list[Block], tmp_path: Path) -> None:
    """Run a page's test-module blocks with pytest, one module each, in one pytest run."""
    folder = tmp_path / "pytest_blocks"
    folder.mkdir()
    for block in blocks:
        (folder / f"test_block_line_{block.line}.py").write_text(block.source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        check=False,
    )
    where = ", ".join(block.where for block in blocks)
    assert result.returncode == 0, f"{where}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture
def redis_url_if_needed(request: pytest.FixtureRequest) -> Iterator[str]:
    """A throwaway redis-server's URL, started only for a page with a redis block."""
    path: Path = request.node.callspec.params["page"]
    if not any(b.marker == "redis" for b in python_blocks(path)):
        yield REDIS_PLACEHOLDER
        return
    from .redis_server import redis_server

    with redis_server() as url:
        yield url


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_page_runs(
    page: Path,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url_if_needed: str,
) -> None:
    from audian_async.sandbox import Sandbox, generate_webhook_secret

    blocks = python_blocks(page)
    runnable = [b for b in blocks if b.marker not in ("skip", "pytest") and not b.includes]
    runnable = [b for b in runnable if not (b.marker == "asyncio" and backend != "asyncio")]
    for block in blocks:
        if block.marker == "skip":
            assert block.reason, f"{block.where}: a skipped block says why"
    test_modules = [b for b in blocks if b.marker == "pytest"]
    if test_modules and backend == "asyncio":  # pytest picks its own event loops
        _run_pytest_blocks(test_modules, tmp_path)
    if not runnable:
        return
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AUDIAN_"):
            monkeypatch.delenv(name)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    secret = generate_webhook_secret()
    monkeypatch.setenv("AUDIAN_WEBHOOK_SECRET", secret)
    serves_webhooks = "WebhookApp(" in page.read_text(encoding="utf-8")
    with ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal(backend))
        urls = []
        if serves_webhooks:
            urls.append(
                stack.enter_context(portal.wrap_async_context_manager(_receiver(namespace)))
            )
        sandbox = Sandbox(speed=50, webhook_urls=urls, webhook_secret=secret, caller_ids=CALLER_IDS)
        sandbox.start()
        stack.callback(sandbox.stop)
        monkeypatch.setenv("AUDIAN_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("AUDIAN_API_KEY", sandbox.api_key)
        try:
            for block in runnable:
                try:
                    _run_block(block, namespace, portal, redis_url_if_needed)
                except BaseException as exc:
                    exc.add_note(f"in the docs block at {block.where}")
                    raise
        finally:
            portal.call(_close_clients, namespace)


async def _close_clients(namespace: dict[str, Any]) -> None:
    """Close the clients a page left open (a reader's session would just end)."""
    import audian_async as au

    for value in list(namespace.values()):
        if isinstance(value, au.AsyncAudian):
            await value.aclose()


def test_included_files_are_run_by_the_suite() -> None:
    """A page that includes an example shows a file the suite runs, never a stale copy."""
    tested = _tested_examples()
    for page in PAGES_WITH_CODE:
        for block in python_blocks(page):
            for included in block.includes:
                assert (ROOT / included).is_file(), f"{block.where}: {included} is missing"
                assert Path(included).name in tested, f"{block.where}: {included} is not run"


def _tested_examples() -> set[str]:
    from . import test_examples
    from .webhooks import test_examples as webhook_examples

    names = set(test_examples.SCENARIOS) | set(webhook_examples.EXPECTED)
    names |= set(getattr(test_examples, "SERVICES", ()))
    return names


def test_a_broken_block_fails_with_its_place(tmp_path: Path) -> None:
    """The collector catches a rotten snippet and says where it is."""
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip shown, not run -->\n"
        "```python\nraise SystemExit\n```\n\n```python\nassert x == 2\n```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(page)
    assert [b.line for b in blocks] == [3, 8, 12]
    assert blocks[1].marker == "skip"
    assert blocks[1].reason == "shown, not run"
    namespace: dict[str, Any] = {}
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        _run_block(blocks[0], namespace, portal, REDIS_PLACEHOLDER)
        with pytest.raises(AssertionError):
            _run_block(blocks[2], namespace, portal, REDIS_PLACEHOLDER)


def test_top_level_await_runs_on_the_page_loop() -> None:
    page_block = Block(ROOT / "x.md", 1, "import anyio\nawait anyio.sleep(0)\ndone = True\n")
    namespace: dict[str, Any] = {}
    with anyio.from_thread.start_blocking_portal("trio") as portal:
        _run_block(page_block, namespace, portal, REDIS_PLACEHOLDER)
    assert namespace["done"] is True


def test_unknown_markers_are_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-test: maybe -->\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown docs-test marker"):
        python_blocks(page)
