"""What importing each part of the package costs a process: time, modules and heap.

Each case runs in a fresh interpreter (``python -c``), best of ``--repeats``: the wall time of
its import statements, the modules it added to ``sys.modules`` and the objects it added to
the garbage collector's heap (what every full collection walks for the rest of the process's
life). The baselines, measured in the same run: importing ``httpx`` alone, and importing
the whole package (every part a user can reach).

    python benchmarks/import_cost.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = {
    "httpx alone (baseline)": "import httpx",
    "the whole package": (
        "import audian_async as au, audian_async.webhooks, audian_async.sandbox\n"
        "au.AsyncAudian, au.Dialer"
    ),
    "audian_async.webhooks": "import audian_async.webhooks",
    "the client (au.AsyncAudian)": "import audian_async as au\nau.AsyncAudian",
    "the dialer (au.Dialer)": "import audian_async as au\nau.Dialer",
}

PROBE = """
import gc, sys, time
before_modules, before_objects = len(sys.modules), len(gc.get_objects())
start = time.perf_counter()
{code}
elapsed = time.perf_counter() - start
import json
print(json.dumps({{"ms": elapsed * 1e3, "modules": len(sys.modules) - before_modules,
                  "objects": len(gc.get_objects()) - before_objects}}))
"""


def measure(code: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5, help="runs per case (best kept)")
    args = parser.parse_args(argv)

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
    for _ in range(args.repeats):  # interleaved, so that machine noise spreads over all cases
        for name, code in CASES.items():
            runs[name].append(measure(code))
    best = {name: min(r, key=lambda f: f["ms"]) for name, r in runs.items()}
    whole = best["the whole package"]
    print(f"Import cost, fresh interpreter each, best of {args.repeats}")
    header = f"{'import':<30} {'ms':>7} {'modules':>8} {'objects':>8} {'ms vs whole':>12}"
    print(header)
    print("-" * len(header))
    for name, figures in best.items():
        ratio = figures["ms"] / whole["ms"]
        print(
            f"{name:<30} {figures['ms']:>7.0f} {figures['modules']:>8.0f}"
            f" {figures['objects']:>8,.0f} {ratio:>11.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
