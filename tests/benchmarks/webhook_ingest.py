#!/usr/bin/env python3
"""Benchmark: webhook ingest against its floor, with the q cluster running, and memory.

One run serves Stageboard with gunicorn (gunicorn.conf.py's defaults, or --workers/--threads)
beside a running q cluster (`manage.py qcluster`, the default configuration, schedules set
up), and sends unique, signed, Plane-like bodies from 16 keep-alive connections for `--seconds`, in
interleaved rounds: first to the floor (`/floor/`: signature check and one INSERT, the least
an ingest can do, behind the same middleware), then to `POST /webhooks/plane/`. After each
Stageboard round it counts every 2xx answer against the deliveries stored (`lost`) and times
the cluster working off what is still pending (`drain_per_second`). It reads RSS and PSS
(/proc/PID/smaps_rollup) of the web processes and of the q cluster at rest and at the end of
the load.

    .venv/bin/python tests/benchmarks/webhook_ingest.py --db sqlite --seconds 10 [--json]
    createdb -h 127.0.0.1 -U postgres ingest_bench   # once
    .venv/bin/python tests/benchmarks/webhook_ingest.py --db postgres --seconds 10 \\
        --database-url postgres://postgres@127.0.0.1:5432/ingest_bench

`--source github` sends GitHub's signed pull request deliveries to `POST /webhooks/github/`
instead (each a real `pull_request` payload with its own number and delivery id, from a
repository linked to no repo, so the cluster records each as ignored): the Git hosts' ingest
against the same floor.

The last line printed is JSON: the medians over the rounds (`stageboard_rps`,
`baseline_rps`, `ratio` (each round's ratio to the floor of the same round), `p50_ms`,
`p99_ms`, `baseline_p99_ms`), the sums `errors` and `lost`, `drain_per_second`, the spread
(min and max of each round), and the memory figures in MB.

`drain_per_second` is the backlog pending when the load ended divided by the time until none
was pending. When less than one second's deliveries were pending (the cluster kept up during
the load; it polls every 0.5 s) it is at least the rate at which deliveries were accepted,
which the cluster then matched; `backlog` and `drain_seconds` of each round are printed too.
"""

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated  # noqa: E402  (after the path is set)

SECRET = "plane_wh_" + "b" * 32
PROJECT = "be7c0000-0000-4000-8000-000000000001"
STATES = [  # the project's states: a started one, for the moves in the mix
    ("be7c0000-0000-4000-8000-0000000000a1", "Todo", "unstarted"),
    ("be7c0000-0000-4000-8000-0000000000a2", "In Progress", "started"),
]
MOVE_EVERY = 20  # one delivery in 20 is a state move (drift, decided singly), like Plane's mix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


GITHUB_SECRET = "gh-bench-secret"


def github_bodies(count: int) -> list[tuple[bytes, dict]]:
    """Unique signed GitHub `pull_request` deliveries (the octokit example, renumbered).
    The floor gets them too: it checks a Plane signature, so each carries one."""
    from plane_integration.webhook_payloads import signature
    from tests.git_fixtures import body, github_headers
    from tests.git_fixtures import load as fixture

    base = fixture("github", "pull_request.opened")
    signed = []
    for n in range(count):
        base["pull_request"]["number"] = n + 1
        base["pull_request"]["title"] = f"change {n} ({uuid.uuid4()})"
        raw = body(base)
        headers = github_headers(raw, GITHUB_SECRET, "pull_request", str(uuid.uuid4()))
        headers["X-Plane-Signature"] = signature(raw, SECRET)
        signed.append((raw, headers))
    return signed


def bodies(count: int, source: str = "plane") -> list[tuple[bytes, dict]]:
    """Unique signed Plane (community) bodies: field changes, and every MOVE_EVERY-th a move."""
    from plane_integration.webhook_payloads import signature

    if source == "github":
        return github_bodies(count)
    signed = []
    for n in range(count):
        move = n % MOVE_EVERY == 0
        body = json.dumps(
            {
                "event": "issue",
                "action": "updated",
                "webhook_id": str(uuid.uuid4()),
                "workspace_id": "be7c0000-0000-4000-8000-00000000000f",
                "data": {"id": str(uuid.uuid4()), "name": f"item {n}", "project": PROJECT},
                "activity": {
                    "field": "state" if move else "priority",
                    "old_value": STATES[0][0] if move else "low",
                    "new_value": STATES[1][0] if move else "high",
                    "actor": {"id": "a11ce000-0000-4000-8000-000000000001", "display_name": "a"},
                },
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Plane-Event": "issue",
            "X-Plane-Delivery": str(uuid.uuid4()),
            "X-Plane-Signature": signature(body, SECRET),
        }
        signed.append((body, headers))
    return signed


def load(port: int, path: str, work: list, seconds: float, concurrency: int) -> dict:
    """Send distinct bodies from `work` over `concurrency` keep-alive connections for
    `seconds`; each body at most once."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    take = itertools.count()
    stop_at = time.perf_counter() + seconds

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, codes = [], {}
        while time.perf_counter() < stop_at:
            n = next(take)
            if n >= len(work):
                break
            body, headers = work[n]
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = 0
            mine.append(time.perf_counter() - started)
            codes[status] = codes.get(status, 0) + 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for status, count in codes.items():
                statuses[status] = statuses.get(status, 0) + count

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    latencies.sort()
    if len(latencies) >= len(work) and took < seconds:
        print("warning: ran out of bodies before the time was up; raise --rate", file=sys.stderr)
    return {
        "rps": len(latencies) / took,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[max(0, int(len(latencies) * 0.99) - 1)],
        "statuses": statuses,
        "accepted": sum(c for s, c in statuses.items() if 200 <= s < 300),
        "errors": sum(c for s, c in statuses.items() if not 200 <= s < 300),
    }


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [pid], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def memory(pid: int) -> dict:
    """RSS and PSS in MB of `pid` and its descendants (shared pages counted once in PSS)."""
    rss = pss = 0
    processes = tree(pid)
    for p in processes:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {
        "processes": len(processes),
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` and its descendants so far."""
    ticks = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def snapshot(web: subprocess.Popen, cluster: subprocess.Popen) -> dict:
    w, c = memory(web.pid), memory(cluster.pid)
    return {"web": w, "cluster": c, "pss_mb": round(w["pss_mb"] + c["pss_mb"], 1)}


def stored(source: str):
    """The rows each accepted delivery of `source` becomes, and the field of their state."""
    if source == "github":
        from git_hosts.models import GitEvent

        return GitEvent.objects.all(), "outcome"
    from plane_integration.models import WebhookDelivery

    return WebhookDelivery.objects.all(), "state"


def wait_drained(timeout: float, source: str = "plane") -> tuple[int, float]:
    """(pending when called, seconds until none was pending)."""
    rows, state = stored(source)
    pending = rows.filter(**{state: "pending"})
    started = time.perf_counter()
    backlog = pending.count()
    while pending.exists():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"the cluster did not work off the backlog within {timeout} s")
        time.sleep(0.05)
    return backlog, time.perf_counter() - started


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ingest_bench")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument("--threads", type=int, help="threads a worker (default: gunicorn.conf.py)")
    parser.add_argument("--rate", type=int, default=4000, help="most requests a second expected")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    parser.add_argument(
        "--source", choices=["plane", "github"], default="plane", help="whose deliveries"
    )
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    url = args.database_url if args.db == "postgres" else ""
    env = isolated.environment(
        url, PLANE_WEBHOOK_SECRET=SECRET, GITHUB_WEBHOOK_SECRET=GITHUB_SECRET
    )
    env["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.bench_settings"
    isolated.use(env)
    import django

    django.setup()
    from django.core.management import call_command

    from plane_integration.models import PlaneProject, PlaneState, WebhookDelivery
    from tests.benchmarks.bench_urls import create_floor_table, floor_count

    call_command("migrate", verbosity=0)
    call_command("setup_schedules", verbosity=0)
    create_floor_table()
    WebhookDelivery.objects.all().delete()
    stored("github")[0].delete()
    hook_path = "/webhooks/github/" if args.source == "github" else "/webhooks/plane/"
    PlaneProject.objects.filter(project_id=PROJECT).delete()
    project = PlaneProject.objects.create(project_id=PROJECT, workspace_slug="bench", repo="shop")
    for n, (state_id, name, group) in enumerate(STATES):
        PlaneState.objects.create(
            project=project, state_id=state_id, name=name, group=group, sequence=n
        )
    from django.utils import timezone

    PlaneProject.objects.filter(pk=project.pk).update(states_refreshed_at=timezone.now())
    from django.db import connection

    connection.close()

    python = sys.executable
    port = free_port()
    gunicorn = Path(python).parent / "gunicorn"
    sizing = (["-w", str(args.workers)] if args.workers else []) + (
        ["--threads", str(args.threads)] if args.threads else []
    )
    web = subprocess.Popen(
        [str(gunicorn), "pipeline.wsgi", "-b", f"127.0.0.1:{port}", *sizing,
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    cluster = subprocess.Popen(
        [python, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: none of its processes outlives the run
    )
    rounds = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in ("/floor/", hook_path):  # warm both paths up
            load(port, path, bodies(200, args.source), 1, 4)
        wait_drained(120, args.source)
        time.sleep(3)
        at_rest = snapshot(web, cluster)
        at_end = None
        for n in range(args.rounds):
            work = bodies(int(args.rate * args.seconds), args.source)
            before = floor_count()
            cpu = cpu_seconds(web.pid), cpu_seconds(cluster.pid)
            floor = load(port, "/floor/", work, args.seconds, args.concurrency)
            floor["web_cpu"] = cpu_seconds(web.pid) - cpu[0]
            floor["cluster_cpu"] = cpu_seconds(cluster.pid) - cpu[1]
            floor["lost"] = floor["accepted"] - (floor_count() - before)
            time.sleep(1)
            work = bodies(int(args.rate * args.seconds), args.source)
            rows, state = stored(args.source)
            before = rows.count()
            cpu = cpu_seconds(web.pid), cpu_seconds(cluster.pid)
            hook = load(port, hook_path, work, args.seconds, args.concurrency)
            hook["web_cpu"] = cpu_seconds(web.pid) - cpu[0]
            hook["cluster_cpu"] = cpu_seconds(cluster.pid) - cpu[1]
            if n == args.rounds - 1:
                at_end = snapshot(web, cluster)
            hook["lost"] = hook["accepted"] - (rows.count() - before)
            backlog, took = wait_drained(600, args.source)
            hook["backlog"] = backlog
            hook["drain_seconds"] = took
            # A backlog of less than a second's deliveries is the cluster keeping up (it polls
            # every 0.5 s): its time to clear measures the poll, not the rate.
            kept_up = backlog <= hook["rps"]
            hook["drain_per_second"] = (
                max(hook["rps"], backlog / took) if kept_up else backlog / took
            )
            rounds.append({"floor": floor, "stageboard": hook, "ratio": hook["rps"] / floor["rps"]})
            say(
                f"round {n + 1}: floor {floor['rps']:.0f}/s p99 {floor['p99_ms']:.1f} ms "
                f"(CPU web {floor['web_cpu']:.1f} s, cluster {floor['cluster_cpu']:.1f} s) | "
                f"stageboard {hook['rps']:.0f}/s p99 {hook['p99_ms']:.1f} ms "
                f"({hook['rps'] / floor['rps']:.2f} x) | backlog {backlog} worked off in "
                f"{took:.1f} s | answers {hook['statuses']} | CPU web {hook['web_cpu']:.1f} s, "
                f"cluster {hook['cluster_cpu']:.1f} s"
            )
            time.sleep(1)
        rows, state = stored(args.source)
        unfinished = rows.exclude(**{f"{state}__in": ("processed", "applied", "ignored")}).count()
    finally:
        for process in (cluster, web):
            process.send_signal(signal.SIGTERM)
        for process in (cluster, web):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    hooks = [r["stageboard"] for r in rounds]
    floors = [r["floor"] for r in rounds]
    result = {
        "db": args.db,
        "source": args.source,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "connections": args.concurrency,
        "stageboard_rps": round(statistics.median(h["rps"] for h in hooks), 1),
        "baseline_rps": round(statistics.median(f["rps"] for f in floors), 1),
        "ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "p50_ms": round(statistics.median(h["p50_ms"] for h in hooks), 1),
        "p99_ms": round(statistics.median(h["p99_ms"] for h in hooks), 1),
        "baseline_p99_ms": round(statistics.median(f["p99_ms"] for f in floors), 1),
        "errors": sum(h["errors"] for h in hooks) + sum(f["errors"] for f in floors),
        "lost": sum(h["lost"] for h in hooks) + sum(f["lost"] for f in floors),
        "drain_per_second": round(statistics.median(h["drain_per_second"] for h in hooks), 1),
        "not_processed": unfinished,
        "spread": {
            "stageboard_rps": spread([round(h["rps"]) for h in hooks]),
            "baseline_rps": spread([round(f["rps"]) for f in floors]),
            "ratio": spread([round(r["ratio"], 3) for r in rounds]),
            "p99_ms": spread([round(h["p99_ms"], 1) for h in hooks]),
            "baseline_p99_ms": spread([round(f["p99_ms"], 1) for f in floors]),
            "drain_per_second": spread([round(h["drain_per_second"]) for h in hooks]),
            "backlog": spread([h["backlog"] for h in hooks]),
        },
        "memory": {"at_rest": at_rest, "end_of_load": at_end},
    }
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and unfinished == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
