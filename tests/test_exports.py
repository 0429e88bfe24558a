"""The public surface is explicit, sorted and importable.

Each public package's ``__all__`` is exactly the public names of its namespace (as httpx's
``tests/test_exported_members.py`` pins its own): a name added without exporting it, or an
export that does not exist, fails here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import types

import pytest

PACKAGES = [
    "audian_async",
    "audian_async.cli",
    "audian_async.dialer",
    "audian_async.sandbox",
    "audian_async.testing",
    "audian_async.webhooks",
]
# Dunder names that are part of the surface on purpose.
EXPORTED_DUNDERS = {"audian_async": {"__version__"}}
# Public names a package defines without exporting them. Each one is a defect to fix in the
# package (export it or make it private); the entry goes with the fix, and a new one fails.
NOT_EXPORTED_YET: dict[str, set[str]] = {}


def _imported_from_outside(module: types.ModuleType) -> set[str]:
    """Names bound by the module's own top-level absolute imports (``typing.Any``...).

    Relative imports are how a package re-exports its private modules, so they count as
    its surface; an absolute import only borrows another library's name.
    """
    names: set[str] = set()
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.update(a.asname or a.name for a in node.names)
    return names


def _public_names(module: types.ModuleType) -> set[str]:
    """Names of the module's namespace meant for users: no underscore, no submodule."""
    borrowed = _imported_from_outside(module)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in borrowed
    } | EXPORTED_DUNDERS.get(module.__name__, set())


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_exactly_the_public_namespace(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported)
    # isort-style (ruff's RUF022 default): CONSTANTS first, then everything else in plain
    # string order.
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n))
    for attr in exported:
        assert hasattr(module, attr), attr
    unexported = _public_names(module) - set(exported)
    assert unexported == NOT_EXPORTED_YET.get(name, set())
    assert set(exported) <= _public_names(module) | NOT_EXPORTED_YET.get(name, set())


def test_every_public_package_is_pinned() -> None:
    # A new public module or subpackage must join PACKAGES, and so get its __all__ pinned.
    import audian_async

    public = {
        f"audian_async.{info.name}"
        for info in pkgutil.iter_modules(audian_async.__path__)
        if not info.name.startswith("_")
    }
    assert public | {"audian_async"} == set(PACKAGES)


def test_contract_names_exist() -> None:
    import audian_async as au
    from audian_async import webhooks

    for attr in [
        "AsyncAudian",
        "CallRequest",
        "Call",
        "BatchResult",
        "Recording",
        "CallControl",
        "PlayAudio",
        "RecordAudio",
        "Transfer",
        "Hangup",
        "GatherDtmf",
        "DtmfRoute",
        "AudianError",
        "ValidationError",
        "APIConnectionError",
        "APITimeoutError",
        "APIStatusError",
        "BadRequestError",
        "InvalidNumberError",
        "AuthenticationError",
        "PermissionDeniedError",
        "UnauthorizedCallerIdError",
        "NotFoundError",
        "RateLimitedError",
        "ServerError",
        "RetryPolicy",
        "Dialer",
        "CallOutcome",
        "CampaignReport",
    ]:
        assert hasattr(au, attr), attr
    for attr in [
        "EventRouter",
        "WebhookApp",
        "parse_event",
        "sign",
        "verify",
        "Event",
        "CallInitiated",
        "CallRinging",
        "CallAnswered",
        "CallCompleted",
        "CallFailed",
        "RecordingCompleted",
        "UnknownEvent",
        "WebhookError",
    ]:
        assert hasattr(webhooks, attr), attr
    # The dialer's names are the same objects from the top-level package and from its own.
    from audian_async import dialer

    for attr in ["Dialer", "RetryPolicy", "CallOutcome", "CampaignReport", "MemoryStore"]:
        assert getattr(au, attr) is getattr(dialer, attr), attr
    assert issubclass(au.ValidationError, ValueError)
    assert issubclass(au.APITimeoutError, au.APIConnectionError)
    assert issubclass(au.InvalidNumberError, au.BadRequestError)
    assert issubclass(au.UnauthorizedCallerIdError, au.PermissionDeniedError)
    assert webhooks.WebhookError is au.WebhookError


def test_the_lazy_exports_are_the_names_type_checkers_see() -> None:
    # The package loads its names on first use: the table it loads them from, the imports
    # type checkers and the API reference read (under TYPE_CHECKING) and __all__ must agree.
    import audian_async

    tree = ast.parse(inspect.getsource(audian_async))
    static: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                for alias in statement.names:
                    static[alias.asname or alias.name] = "." * statement.level + (
                        statement.module or ""
                    )
    assert static == audian_async._EXPORTS
    assert set(audian_async.__all__) == {*static, "__version__"}
    for name, module in static.items():
        defined = importlib.import_module(module, "audian_async")
        assert getattr(audian_async, name) is getattr(defined, name), name


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        # A webhook endpoint loads neither the HTTP client stack, the dialer nor the wire
        # converter (cattrs).
        (
            "import audian_async.webhooks",
            ["httpx", "cattrs", "audian_async._client", "audian_async.dialer"],
        ),
        ("import audian_async", ["httpx", "audian_async._client", "audian_async.dialer"]),
        # The client alone does not load the dialer (nor SQLite).
        ("import audian_async as au; au.AsyncAudian", ["audian_async.dialer", "sqlite3"]),
    ],
)
def test_each_part_loads_only_what_it_uses(code: str, absent: list[str]) -> None:
    import subprocess
    import sys

    check = f"{code}\nimport sys\nprint(sorted(m for m in {absent!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout
