#!/usr/bin/env python3
"""Benchmark: does the board tell the truth when everything goes wrong at once?

A seeded random schedule of pipeline API calls, monitor windows (healthy, failing, hanging
and silent probes), stale and duplicate callers, echoes, people moving cards, lost,
duplicated and reordered webhooks, deleted work items, a Plane outage (500s, then
timeouts) and a burst over Plane's rate limit, then one full reconciler sweep and the sync
until nothing is due (`tests/simulation/board_truth.py`). A fresh SQLite file in a
temporary directory holds the data; the Plane stand-in runs in-process on loopback, its
rate window scaled down with Stageboard's to match.

    .venv/bin/python tests/benchmarks/board_truth.py --seed 1 --tasks 100 --events 2000
        [--guard off] [--json]

Exit status 1 when a goal is missed: with the guard on, flaps 0, board 100 % right,
no lost update, no 429; with `--guard off`, the figures are printed and only the board's
end state is checked (flaps are expected: the guard is what prevents them).
"""

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated  # noqa: E402  (after the path is set)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--guard", choices=("on", "off"), default="on")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args()

    from plane_standin.server import PlaneStandIn
    from tests.simulation import board_truth

    standin = PlaneStandIn(
        api_key=board_truth.PLANE_KEY,
        rate_limit=board_truth.RATE_LIMIT,
        rate_window=board_truth.RATE_WINDOW,
    ).start()
    isolated.use(isolated.environment(**board_truth.environment(standin.url)))
    os.environ["LOG_LEVEL"] = "CRITICAL"  # outages log by design; the figures tell

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    figures = board_truth.Simulation(
        standin, seed=args.seed, tasks=args.tasks, events=args.events, guard=args.guard == "on"
    ).run()
    standin.stop()

    print(f"board-truth simulation, guard {args.guard}:")
    for key, value in json.loads(figures.json()).items():
        print(f"  {key}: {value}")
    for key, value in figures.detail.items():
        print(f"    {key}: {value}")
    if args.json:
        print(figures.json())
    missed = figures.board_equals_truth_pct < 100 or figures.lost_updates or figures.rate_limited
    if args.guard == "on":
        missed = missed or figures.flaps
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
