#!/usr/bin/env python3
"""Benchmark: webhook ingest as shipped against its true floor, with the q cluster running,
and the memory of web and cluster.

The floor is a separate, minimal Django application (`floor_app.py`: no apps, no
middleware, no ORM) that checks the body's HMAC and INSERTs it once, under gunicorn gthread
2 workers x 4 threads, on its own fresh database (a SQLite file in WAL mode, or the same
PostgreSQL database). Stageboard runs as shipped: `gunicorn pipeline.wsgi` with the
project's own gunicorn.conf.py and nothing overridden, plus `manage.py qcluster` with its
defaults, on a fresh database (PostgreSQL: its schema dropped first), after a warm-up whose
deliveries were worked off. wrk (Debian's `wrk`) sends unique signed Plane-like bodies
(`signed_bodies.lua`) from 16 keep-alive connections for `--seconds`, to the floor and to
`POST /webhooks/plane/` in turn, `--rounds` times. After each Stageboard round every 2xx
answer is counted against the deliveries stored (`lost`) and the cluster's working off of
what is still pending is timed (`backlog_seconds`). Memory is RSS and PSS
(/proc/PID/smaps_rollup, shared pages counted once) of the web processes and the cluster's,
at rest after the warm-up (before the floor starts, so no page is shared with it) and at the
end of the load.

    .venv/bin/python tests/benchmarks/webhook_ingest.py --db sqlite
    createdb -h 127.0.0.1 -U postgres ingest_bench   # once
    .venv/bin/python tests/benchmarks/webhook_ingest.py --db postgres \\
        --database-url postgres://postgres@127.0.0.1:5432/ingest_bench
    ... --profile /tmp/ingest.txt   # py-spy samples of web (and .cluster) during the rounds

`--source github` sends GitHub's signed pull request deliveries to `POST /webhooks/github/`
instead (each a real `pull_request` payload with its own number and delivery id, from a
repository linked to no repo, so the cluster records each as ignored): the Git hosts' ingest
against the same floor.

The last line printed is JSON: medians over the rounds (`stageboard_rps`, `baseline_rps`,
`ratio` (each round's ratio to the floor of the same round), p50 and p99 of both), the sums
`errors` and `lost`, the longest `backlog_seconds`, CPU seconds per 1,000 deliveries, the
spread of each round, and the memory in MB. It exits 1 when a goal of correctness failed:
an error, a lost delivery, one left unprocessed, or a backlog older than 15 s.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
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
LUA = Path(__file__).with_name("signed_bodies.lua")
THREADS = 2  # wrk's threads: one a core of a two-core machine
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


def write_bodies(work: list[tuple[bytes, dict]], path: Path) -> None:
    """One request a line for signed_bodies.lua: header name, value ... and the body, by tabs."""
    with path.open("wb") as out:
        for body, headers in work:
            if b"\t" in body or b"\n" in body:
                raise SystemExit("a body has a raw tab or newline: it cannot go on one line")
            fields = [f"{name}\t{value}".encode() for name, value in headers.items()]
            out.write(b"\t".join([*fields, body]) + b"\n")


def load(url: str, work: list, seconds: int, connections: int) -> dict:
    """wrk with THREADS threads and `connections` keep-alive connections for `seconds`,
    each body of `work` sent at most once; what wrk counted."""
    bodies_file = Path(os.environ["STAGEBOARD_VAR_DIR"]) / "bodies.tsv"
    write_bodies(work, bodies_file)
    env = {**os.environ, "BODIES": str(bodies_file), "THREADS": str(THREADS)}
    command = [
        "wrk", f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
        "-s", str(LUA), url,
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    counted = json.loads(line[4:])
    if counted["requests"] >= len(work) // THREADS * THREADS:
        print("warning: ran out of bodies before the time was up; raise --rate", file=sys.stderr)
    socket_errors = counted["connect"] + counted["read"] + counted["write"] + counted["timeout"]
    return {
        "rps": counted["requests"] / (counted["duration_us"] / 1e6),
        "p50_ms": counted["p50_us"] / 1000,
        "p99_ms": counted["p99_us"] / 1000,
        "accepted": counted["requests"] - counted["non_2xx_or_3xx"],
        "errors": counted["non_2xx_or_3xx"] + socket_errors,
    }


def wait_listening(port: int, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


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
    each = []
    processes = tree(pid)
    for p in processes:
        mine = 0
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    mine = int(line.split()[1])
        except OSError:
            continue
        pss += mine
        each.append(round(mine / 1024, 1))
    return {
        "processes": len(processes),
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "pss_mb_each": each,
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


def per_1000(runs: list[dict], cpu: str) -> float:
    return round(1000 * statistics.median(r[cpu] / max(1, r["accepted"]) for r in runs), 3)


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def floor_table(command: str, env: dict) -> int:
    """Run floor_app's create_table() or count() in its own process (it configures Django
    its own way); the count, or 0."""
    script = f"from tests.benchmarks import floor_app; print(floor_app.{command}() or 0)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def fresh_postgres(url: str) -> None:
    """Drop everything in the benchmark's database: Stageboard starts on a fresh one."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def start_gunicorn(args: list[str], env: dict, port: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn), *args], cwd=ROOT, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        start_new_session=True,  # its own group: none of its processes outlives the run
    )  # fmt: skip
    wait_listening(port, process)
    return process


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/ingest_bench")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=6000, help="most requests a second expected")
    parser.add_argument("--profile", help="py-spy samples: web to FILE, cluster to FILE.cluster")
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
    isolated.use(env)
    if url:
        fresh_postgres(url)
    floor_env = {
        **env,
        "FLOOR_DATABASE": url or str(Path(env["STAGEBOARD_VAR_DIR"]) / "floor.sqlite3"),
        "FLOOR_SECRET": SECRET,
    }
    floor_table("create_table", floor_env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from plane_integration.models import PlaneProject, PlaneState

    call_command("migrate", verbosity=0)
    call_command("setup_schedules", verbosity=0)
    hook_path = "/webhooks/github/" if args.source == "github" else "/webhooks/plane/"
    project = PlaneProject.objects.create(project_id=PROJECT, workspace_slug="bench", repo="shop")
    for n, (state_id, name, group) in enumerate(STATES):
        PlaneState.objects.create(
            project=project, state_id=state_id, name=name, group=group, sequence=n
        )
    PlaneProject.objects.filter(pk=project.pk).update(states_refreshed_at=timezone.now())
    connection.close()

    port, floor_port = free_port(), free_port()
    # Stageboard as shipped: its gunicorn.conf.py, nothing overridden, and the cluster's defaults.
    web = start_gunicorn(["pipeline.wsgi"], env, port)
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    stageboard_url = f"http://127.0.0.1:{port}{hook_path}"
    floor_url = f"http://127.0.0.1:{floor_port}/webhooks/plane/"
    floor = None
    profilers = []
    rounds = []
    try:
        load(stageboard_url, bodies(5000, args.source), 1, 4)  # warm-up
        wait_drained(120, args.source)
        time.sleep(3)
        # At rest before the floor starts: no page Stageboard maps (libpython, psycopg's
        # libraries) is shared with the floor's processes, which would lower its PSS.
        at_rest = snapshot(web, cluster)
        floor = start_gunicorn(
            ["tests.benchmarks.floor_app:application", "-k", "gthread", "-w", "2",
             "--threads", "4", "-c", "/dev/null", "-b", f"127.0.0.1:{floor_port}",
             "--log-level", "warning"],
            floor_env, floor_port,
        )  # fmt: skip
        load(floor_url, bodies(5000, args.source), 1, 4)  # warm-up
        if args.profile:
            for pid, suffix in ((web.pid, ""), (cluster.pid, ".cluster")):
                # --gil: only samples holding the GIL, i.e. where a process's time goes.
                profilers.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                     "--gil", "--format", "raw", "--rate", "200", "-o", args.profile + suffix,
                     "--pid", str(pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip
        at_end = None
        for n in range(args.rounds):
            work = bodies(args.rate * args.seconds, args.source)
            before = floor_table("count", floor_env)
            cpu = cpu_seconds(floor.pid)
            base = load(floor_url, work, args.seconds, args.connections)
            base["web_cpu"] = cpu_seconds(floor.pid) - cpu
            base["lost"] = max(0, base["accepted"] - (floor_table("count", floor_env) - before))
            time.sleep(1)
            work = bodies(args.rate * args.seconds, args.source)
            rows, state = stored(args.source)
            before = rows.count()
            cpu = cpu_seconds(web.pid), cpu_seconds(cluster.pid)
            hook = load(stageboard_url, work, args.seconds, args.connections)
            hook["web_cpu"] = cpu_seconds(web.pid) - cpu[0]
            hook["cluster_cpu"] = cpu_seconds(cluster.pid) - cpu[1]
            if n == args.rounds - 1:
                at_end = snapshot(web, cluster)
            hook["lost"] = max(0, hook["accepted"] - (rows.count() - before))
            backlog, took = wait_drained(600, args.source)
            hook["backlog"] = backlog
            hook["drain_seconds"] = took
            rounds.append({"floor": base, "stageboard": hook, "ratio": hook["rps"] / base["rps"]})
            say(
                f"round {n + 1}: floor {base['rps']:.0f}/s p99 {base['p99_ms']:.1f} ms "
                f"(CPU {base['web_cpu']:.1f} s) | stageboard {hook['rps']:.0f}/s "
                f"p99 {hook['p99_ms']:.1f} ms ({hook['rps'] / base['rps']:.2f} x, "
                f"errors {hook['errors']}, lost {hook['lost']}) | backlog {backlog} worked off "
                f"in {took:.1f} s | CPU web {hook['web_cpu']:.1f} s, "
                f"cluster {hook['cluster_cpu']:.1f} s"
            )
            time.sleep(1)
        rows, state = stored(args.source)
        unfinished = rows.exclude(**{f"{state}__in": ("processed", "applied", "ignored")}).count()
    finally:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        stop([cluster, web, *([floor] if floor else [])])

    hooks = [r["stageboard"] for r in rounds]
    floors = [r["floor"] for r in rounds]
    result = {
        "db": args.db,
        "source": args.source,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "connections": args.connections,
        "stageboard_rps": round(statistics.median(h["rps"] for h in hooks), 1),
        "baseline_rps": round(statistics.median(f["rps"] for f in floors), 1),
        "ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "p50_ms": round(statistics.median(h["p50_ms"] for h in hooks), 1),
        "p99_ms": round(statistics.median(h["p99_ms"] for h in hooks), 1),
        "baseline_p50_ms": round(statistics.median(f["p50_ms"] for f in floors), 1),
        "baseline_p99_ms": round(statistics.median(f["p99_ms"] for f in floors), 1),
        "errors": sum(h["errors"] for h in hooks) + sum(f["errors"] for f in floors),
        "lost": sum(h["lost"] for h in hooks) + sum(f["lost"] for f in floors),
        "backlog_seconds": round(max(h["drain_seconds"] for h in hooks), 2),
        "not_processed": unfinished,
        "spread": {
            "stageboard_rps": spread([round(h["rps"]) for h in hooks]),
            "baseline_rps": spread([round(f["rps"]) for f in floors]),
            "ratio": spread([round(r["ratio"], 3) for r in rounds]),
            "p99_ms": spread([round(h["p99_ms"], 1) for h in hooks]),
            "baseline_p99_ms": spread([round(f["p99_ms"], 1) for f in floors]),
            "backlog": spread([h["backlog"] for h in hooks]),
        },
        "cpu_seconds_per_1000": {
            "floor": per_1000(floors, "web_cpu"),
            "web": per_1000(hooks, "web_cpu"),
            "cluster": per_1000(hooks, "cluster_cpu"),
        },
        "memory": {"at_rest": at_rest, "end_of_load": at_end},
    }
    print(json.dumps(result))
    failed = result["errors"] or result["lost"] or unfinished or result["backlog_seconds"] > 15
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
