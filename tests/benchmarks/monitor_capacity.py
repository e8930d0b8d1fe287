#!/usr/bin/env python3
"""Benchmark: how many active post-deploy windows one tick interval can serve.

Opens N active windows (a fresh SQLite file, or PostgreSQL with --database-url) whose
repo's health endpoint, on loopback, answers after a simulated 100 ms, then times one
tick pass over all of them (claim, probe in parallel, record, judge). Repeats a few times
and reports the windows one 60 s interval could hold at that rate. A pass claims at most
what its threads could probe if every endpoint hung; the timing covers all passes.

    .venv/bin/python tests/benchmarks/monitor_capacity.py [--windows 1000] [--latency 0.1]
        [--rounds 3] [--database-url URL]
"""

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks import isolated, windows  # noqa: E402  (after the path is set)


def health_endpoint(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    isolated.use(isolated.environment(args.database_url, ORCH_POST_DEPLOY_REPOS="bench"))

    import django

    django.setup()
    from django.core.management import call_command

    from monitoring.models import MonitoredRepo, MonitorWindow, Probe
    from pipeline.models import Task

    call_command("migrate", verbosity=0)
    MonitorWindow.objects.all().delete()
    Task.objects.filter(repo="bench").delete()
    server = health_endpoint(args.latency)
    health = f"http://127.0.0.1:{server.server_address[1]}/health"
    MonitoredRepo.objects.update_or_create(name="bench", defaults={"health_url": health})
    windows.open_windows(args.windows)
    timings, passes = windows.time_ticks(args.windows, args.rounds)
    server.shutdown()
    best, worst = min(timings), max(timings)
    probes = Probe.objects.count()
    database = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    latency = f"{1000 * args.latency:.0f} ms"
    print(f"{args.windows} windows, health endpoint answering in {latency}, {database}")
    print(
        f"| one tick over all windows, {passes} passes | {best:.2f} s best, {worst:.2f} s worst |"
    )
    print(f"| windows a 60 s interval holds at that rate | {int(args.windows * 60 / worst)} |")
    print(f"| probes recorded | {probes} (expected {args.windows * args.rounds}) |")
    return 0 if probes == args.windows * args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
