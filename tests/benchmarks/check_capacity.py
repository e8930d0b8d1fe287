#!/usr/bin/env python3
"""Benchmark: a tick over N active windows whose repo has C analysis checks.

Opens N active windows (a fresh SQLite file, or PostgreSQL with --database-url) whose repo
has a health endpoint and C HTTP checks, all on loopback and answering after a simulated
50 ms, then times one tick over all of them (claim, probe and read every check in parallel,
record the measurements, judge) as a run does: pass after pass while windows are due.

    .venv/bin/python tests/benchmarks/check_capacity.py [--windows 1000] [--checks 20]
        [--latency 0.05] [--rounds 2] [--database-url URL]
"""

import argparse
import multiprocessing
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated, windows  # noqa: E402  (after the path is set)


def serve(latency: float, port) -> None:
    """The endpoints, in a process of their own: a real provider does not share our GIL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b'{"value": 3}')

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


def endpoints(latency: float) -> tuple[multiprocessing.Process, int]:
    port = multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=serve, args=(latency, port), daemon=True)
    process.start()
    while not port.value:
        time.sleep(0.01)
    return process, port.value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    isolated.use(isolated.environment(args.database_url, ORCH_POST_DEPLOY_REPOS="bench"))

    import django

    django.setup()
    from django.core.management import call_command

    from monitoring.models import Check, CheckMeasurement, MonitoredRepo, MonitorWindow, Probe
    from pipeline.models import Task

    call_command("migrate", verbosity=0)
    MonitorWindow.objects.all().delete()
    Task.objects.filter(repo="bench").delete()
    server, port = endpoints(args.latency)
    health = f"http://127.0.0.1:{port}/health"
    repo, _ = MonitoredRepo.objects.update_or_create(name="bench", defaults={"health_url": health})
    Check.objects.filter(repo=repo).delete()
    Check.objects.bulk_create(
        Check(
            repo=repo,
            name=f"c{i}",
            provider="http",
            url=f"{health}?check={i}",
            json_path="$.value",
            condition="max",
            threshold=10,
            failure_limit=1000,
        )
        for i in range(args.checks)
    )
    windows.open_windows(args.windows)
    timings, passes = windows.time_ticks(args.windows, args.rounds)
    server.terminate()
    best, worst = min(timings), max(timings)
    probes = Probe.objects.count()
    measured = CheckMeasurement.objects.count()
    expected = args.windows * args.rounds * args.checks
    database = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    latency = f"{1000 * args.latency:.0f} ms"
    print(
        f"{args.windows} windows x {args.checks} checks, endpoints answering in {latency}, "
        f"{database}"
    )
    print(
        f"| one tick over all windows, {passes} passes | {best:.2f} s best, {worst:.2f} s worst |"
    )
    print(f"| probes recorded | {probes} (expected {args.windows * args.rounds}) |")
    print(f"| check measurements recorded | {measured} (expected {expected}) |")
    return 0 if probes == args.windows * args.rounds and measured == expected else 1


if __name__ == "__main__":
    sys.exit(main())
