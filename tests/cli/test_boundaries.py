"""The commands sit on top of the library: no library package imports them, and the dialer
does not import the sandbox (only the demo command puts the two together)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import audian_async

PACKAGE = Path(audian_async.__file__).parent


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, as an absolute dotted name (lazy imports included)."""
    package = path.relative_to(PACKAGE.parent).parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join((*base, *(node.module.split(".") if node.module else ())))
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def offenders(paths: Iterable[Path], forbidden: str) -> list[str]:
    """``file: module`` for each import of ``forbidden`` (or below it) in ``paths``."""
    return [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in sorted(paths)
        for module in imported_modules(path)
        if module == forbidden or module.startswith(forbidden + ".")
    ]


def test_the_scan_sees_relative_and_lazy_imports() -> None:
    # The demo command imports the dialer relatively and the sandbox inside a function.
    demo = [PACKAGE / "cli" / "demo.py"]
    assert offenders(demo, "audian_async.dialer") != []
    assert offenders(demo, "audian_async.sandbox") != []


def test_no_library_module_imports_the_commands() -> None:
    # ``python -m audian_async`` is the command itself, not library code.
    entry_points = {PACKAGE / "cli", PACKAGE / "__main__.py"}
    library = [p for p in PACKAGE.rglob("*.py") if not entry_points & {p, *p.parents}]
    assert offenders(library, "audian_async.cli") == []


@pytest.mark.parametrize("forbidden", ["audian_async.sandbox", "audian_async.cli"])
def test_the_dialer_imports_neither_the_sandbox_nor_the_commands(forbidden: str) -> None:
    assert offenders((PACKAGE / "dialer").rglob("*.py"), forbidden) == []
