#!/usr/bin/env python3
"""Benchmark: what a reconciler sweep costs in Plane calls, database queries and time.

Builds PROJECTS projects of ITEMS work items each in the Plane stand-in, every item with a
task whose board row shows its truth (the steady state), a few drifted ones, then measures
on one fresh database:

- the baseline: reading every page of every project's list with the bare client (no
  decisions, no database work), the least a full sweep can cost;
- a full sweep (every page, decisions in bulk, the drifted items repaired);
- a quiet incremental sweep (nothing changed since: one page a project).

By default the states are read and the path form is set beforehand (the steady state);
`--cold` measures a first full sweep with the default settings instead: no states cached,
PLANE_API_PATHS=auto with nothing found out yet (the bare list is told it, as the least).

Time is reported as a ratio to the baseline of the same run; calls and queries are counts.
A budget large enough for one run to finish is set, so the figures are per sweep.

    .venv/bin/python tests/benchmarks/reconcile_sweep.py [--items 1000] [--projects 1]
        [--drifted 10] [--cold] [--database-url postgres://...] [--json]
"""

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated  # noqa: E402  (after the path is set)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="work items per project")
    parser.add_argument("--projects", type=int, default=1)
    parser.add_argument("--drifted", type=int, default=10, help="items a person moved")
    parser.add_argument("--database-url", default="", help="PostgreSQL; default: SQLite")
    parser.add_argument(
        "--cold", action="store_true", help="a first sweep: no states, the path form unknown"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args()

    isolated.use(
        isolated.environment(
            args.database_url,
            PLANE_RATE_LIMIT_PER_MINUTE="1000000",
            PLANE_API_PATHS="auto" if args.cold else "work-items",
        )
    )
    from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES, PlaneStandIn

    standin = PlaneStandIn(api_key="plane_api_bench", rate_limit=1_000_000).start()
    os.environ.update(PLANE_API_URL=standin.url, PLANE_API_KEY="plane_api_bench")

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from pipeline.models import Task
    from plane_integration.client import PlaneClient
    from plane_integration.models import BoardStatus, PlaneProject
    from plane_integration.reconcile import reconcile

    call_command("migrate", verbosity=0)
    if connection.vendor == "postgresql":  # a reused database: start from nothing
        call_command("flush", interactive=False, verbosity=0)
    projects = []
    for p in range(args.projects):
        project_id = standin.add_project(f"ws{p}", states=DEFAULT_STATES + PIPELINE_STATES)
        PlaneProject.objects.create(project_id=project_id, workspace_slug=f"ws{p}", repo="b")
        projects.append(project_id)
        analysis = standin.state_id(project_id, "Analysis")
        items = [
            standin.add_work_item(f"ws{p}", project_id, f"{n}", state="Analysis")
            for n in range(args.items)
        ]
        tasks = Task.objects.bulk_create(
            [Task(work_item_id=i, project_id=project_id, stage="analysis") for i in items],
            batch_size=500,
        )
        now = timezone.now()
        BoardStatus.objects.bulk_create(
            [
                BoardStatus(
                    task=t,
                    desired_key="analysis",
                    desired_version=1,
                    synced_version=1,
                    desired_at=now,
                    shown_state_id=analysis,
                    shown_key="analysis",
                )
                for t in tasks
            ],
            batch_size=500,
        )
    for project_id in [] if args.cold else projects:  # as any earlier sweep would have
        reconcile(full=False, project_id=project_id)  # read the states once
    for task in Task.objects.order_by("?")[: args.drifted]:  # people moved these cards
        standin.set_state(str(task.work_item_id), "Code Review")
    # The quiet incremental sweep later reads from this full sweep's start: age the items.
    hour_ago = timezone.now() - timedelta(hours=1)
    for item in list(standin._items):
        standin.touch_work_item(item, hour_ago)

    # The least: the path form told, not found out (with --cold nothing is cached yet).
    client = PlaneClient(
        base_url=standin.url,
        api_key="plane_api_bench",
        path_form="work-items",
        rate_limit=1_000_000,
    )
    standin.reset_log()
    started = time.perf_counter()
    for p, project_id in enumerate(projects):
        assert client.list_work_items(f"ws{p}", project_id, ("id", "state", "updated_at")).ok
    baseline = time.perf_counter() - started
    baseline_calls = len(standin.requests)
    figures = {"items": args.items * args.projects, "projects": args.projects, "cold": args.cold}
    figures["baseline_calls"], figures["baseline_seconds"] = baseline_calls, round(baseline, 3)
    for kind, full in (("full", True), ("incremental", False)):
        standin.reset_log()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            run = reconcile(full=full)
            took = time.perf_counter() - started
        assert run.complete, run.note
        figures[kind] = {
            "plane_calls": run.plane_calls,
            "queries": len(queries),
            "queries_per_page": round(len(queries) / max(1, run.plane_calls), 1),
            "repairs": run.repair_count,
            "seconds": round(took, 3),
            "x_baseline": round(took / baseline, 2),
        }
    standin.stop()

    print(
        f"database: {connection.vendor}; {figures['items']} items in {args.projects} projects"
        + ("; cold: a first sweep" if args.cold else "")
    )
    print("| sweep | Plane calls | DB queries | per call | repairs | time | x baseline |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| baseline: the bare list | {baseline_calls} | 0 | - | - | {baseline:.2f} s | 1.00 |")
    for kind in ("full", "incremental"):
        f = figures[kind]
        print(
            f"| {kind} | {f['plane_calls']} | {f['queries']} | {f['queries_per_page']} "
            f"| {f['repairs']} | {f['seconds']:.2f} s | {f['x_baseline']:.2f} |"
        )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
