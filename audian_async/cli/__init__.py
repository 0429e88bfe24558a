"""The ``audian-async`` command line: ``sandbox``, ``dial`` and ``demo``.

Each subcommand is a module of this package (``dial``, ``demo``...) that drives the library
from outside: library packages never import ``audian_async.cli``. A command's module is
imported only when it is chosen, so ``audian-async sandbox`` does not pay for the dialer's
imports and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> (module, help). Each module exposes add_arguments(parser) and run(args) -> int.
_COMMANDS = {
    "sandbox": ("audian_async.cli.sandbox", "run the local Audian API emulator"),
    "dial": ("audian_async.cli.dial", "dial every number of a CSV file as a campaign"),
    "demo": ("audian_async.cli.demo", "run a campaign against an embedded sandbox"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audian-async``; returns the process exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="audian-async", description="Audian outbound-calls SDK tools."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = args_in[0] if args_in else None
    for name, (module_name, help_text) in _COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(command)
            command.set_defaults(_run=module.run)
    args = parser.parse_args(args_in)
    code: int = args._run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
