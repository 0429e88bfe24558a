"""What campaign controls cost the dialer: CPU per attempt with a calling window (judged in
each callee's own time zone) and a 100,000-number suppression list, next to the same
campaign without them, measured interleaved in the same process (target: within 10 %).

The campaign is the dialer benchmark's (``dialer_campaign.py``): 10,000 calls, one in
twenty busy and redialed, against an in-process stub client (no HTTP, no sandbox), so the
figure is the dialer's own. The window is open all day every day, so both runs place the
same calls; the suppression list holds none of the campaign's numbers, so every create is
checked against it and none is skipped.

    python benchmarks/dialer_controls.py            # 10,000 calls, 9 rounds
    python benchmarks/dialer_controls.py --quick    # smoke run (1,000 calls, 3 rounds)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import time as clock
from pathlib import Path

import anyio
from dialer_campaign import dialer_alone, print_table

from audian_async import CallingWindow

SUPPRESSED = 100_000


async def main_async(args: argparse.Namespace) -> None:
    count = 1_000 if args.quick else args.calls
    rounds = 3 if args.quick else args.rounds
    db_dir = Path(tempfile.mkdtemp())
    # Open from 00:00 to 23:59:59.999999 local time in the callee's zone, every day.
    window = CallingWindow(start=clock(0), end=clock(23, 59, 59, 999_999), days="mon-sun")
    suppress = [f"+1646{i:07d}" for i in range(SUPPRESSED)]  # none of them is dialed
    started = time.perf_counter()
    controls = {"window": window, "suppress": suppress}
    plain: list[float] = []
    controlled: list[float] = []
    await dialer_alone(count // 10, args.speed, db_dir)  # warm-up: imports, caches
    for _ in range(rounds):  # interleaved: the machine's drift hits both alike
        plain.append(await dialer_alone(count, args.speed, db_dir))
        controlled.append(await dialer_alone(count, args.speed, db_dir, **controls))
    wall = time.perf_counter() - started
    base, with_controls = statistics.median(plain), statistics.median(controlled)
    ratio = with_controls / base
    rows = [
        ("calls per run", f"{count:,}", f"{rounds} runs each, interleaved"),
        ("dialer CPU per attempt, no controls", f"{base * 1e6:.1f} us", "1.00x (baseline)"),
        (
            "with window + 100k suppression",
            f"{with_controls * 1e6:.1f} us",
            f"{ratio:.2f}x ({(ratio - 1) * 100:+.1f} %; target within +10 %)",
        ),
        ("spread, no controls", f"{min(plain) * 1e6:.1f}-{max(plain) * 1e6:.1f} us", ""),
        (
            "spread, with controls",
            f"{min(controlled) * 1e6:.1f}-{max(controlled) * 1e6:.1f} us",
            "",
        ),
        ("benchmark wall time", f"{wall:.1f} s", ""),
    ]
    print_table(f"dialer controls benchmark ({'quick' if args.quick else 'full'})", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (1,000 calls)")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--speed", type=float, default=500.0, help="time scale of redials")
    anyio.run(main_async, parser.parse_args())


if __name__ == "__main__":
    main()
