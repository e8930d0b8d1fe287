#!/usr/bin/env python3
"""Benchmark: a burst of stage changes and the Plane calls it costs.

Drives N stage changes over M work items through the real stage engine (each change
records its desired board status after commit, as in production), then runs the board
sync until nothing is left to send, against the Plane stand-in on loopback with Plane's
default limit of 60 requests a minute. Reports PATCHes, other calls, 429s, the busiest
minute and the elapsed times. A fresh SQLite file in a temporary directory holds the data.

    .venv/bin/python tests/benchmarks/board_burst.py [--items 100] [--changes 1000]
        [--rate-limit 60] [--window 60]
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated  # noqa: E402  (after the path is set)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--rate-limit", type=int, default=60, help="requests a window")
    parser.add_argument("--window", type=float, default=60.0, help="seconds")
    args = parser.parse_args()

    isolated.use(
        isolated.environment(
            PLANE_RATE_LIMIT_PER_MINUTE=str(args.rate_limit),
            PLANE_RATE_WINDOW_SECONDS=str(args.window),
        )
    )

    from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES, PlaneStandIn

    standin = PlaneStandIn(
        api_key="plane_api_bench", rate_limit=args.rate_limit, rate_window=args.window
    )
    standin.start()
    os.environ.update(PLANE_API_URL=standin.url, PLANE_API_KEY="plane_api_bench")

    import django

    django.setup()
    from django.core.management import call_command

    from pipeline import engine
    from pipeline.models import Task
    from plane_integration.models import BoardStatus, PlaneProject
    from plane_integration.sync import sync_board

    call_command("migrate", verbosity=0)
    project_id = standin.add_project("bench", states=DEFAULT_STATES + PIPELINE_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="bench", repo="bench")
    tasks = []
    for n in range(args.items):
        item = standin.add_work_item("bench", project_id, f"item {n}", state="Todo")
        tasks.append(
            Task.objects.create(work_item_id=item, project_id=project_id, stage="development")
        )

    cycle = ("code_review", "development")
    started = time.monotonic()
    for n in range(args.changes):
        task = tasks[n % args.items]
        engine.advance_stage(task, cycle[(n // args.items) % 2], caller="bench")
    changes_took = time.monotonic() - started

    started = time.monotonic()
    while BoardStatus.objects.filter(next_attempt_at__isnull=False).exists():
        sync_board(max_seconds=3 * args.window)
    sync_took = time.monotonic() - started
    standin.stop()

    requests = standin.requests
    arrivals = sorted(r.at for r in requests)
    busiest = max(
        (sum(1 for t in arrivals if start <= t < start + args.window) for start in arrivals),
        default=0,
    )
    expected = {"development": "In Progress", "code_review": "Code Review"}
    wrong = [
        t.work_item_id
        for t in Task.objects.all()
        if standin.work_item(str(t.work_item_id))["state"]
        != standin.state_id(project_id, expected[t.stage])
    ]
    print(f"| work items | {args.items} |")
    each = 1000 * changes_took / args.changes
    print(f"| stage changes | {args.changes} ({changes_took:.2f} s, {each:.2f} ms each) |")
    print(f"| PATCHes | {len(standin.calls('PATCH'))} |")
    print(f"| other Plane calls | {len(requests) - len(standin.calls('PATCH'))} |")
    print(f"| 429 answers | {sum(r.status == 429 for r in requests)} |")
    print(f"| busiest {args.window:g} s window | {busiest} requests (limit {args.rate_limit}) |")
    print(f"| sync until the board was right | {sync_took:.1f} s |")
    print(f"| work items showing the wrong status | {len(wrong)} |")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
