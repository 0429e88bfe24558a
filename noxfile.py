"""Developer tasks: ``nox -s tests lint typing docs bench demo``, as the README and CI run them."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typing", "docs"]
nox.options.default_venv_backend = "venv"


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The full suite; every async test runs on asyncio and on trio."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", "-m", "not slow", *session.posargs)


@nox.session(python="3.11")
def slow(session: nox.Session) -> None:
    """Long property and fuzz runs (>= 10,000 examples)."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-q", "-m", "slow", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    """mypy --strict over the package and the public-API typing checks."""
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly: a broken link or reference fails it."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Every benchmark, printing figures and ratios against in-run baselines."""
    session.install("-e", ".[bench]")
    for script in (
        "client_create",
        "client_queueing",
        "import_cost",
        "webhooks_bench",
        "sandbox_capacity",
        "sandbox_journal",
        "dialer_campaign",
        "dialer_redis",  # these two need redis-server on PATH
        "redis_round_trip",
    ):
        session.run("python", f"benchmarks/{script}.py", *session.posargs)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The demo campaign against an embedded sandbox."""
    session.install("-e", ".[cli]")
    session.run("audian-async", "demo")
