#!/usr/bin/env python3
"""Benchmark: POST /webhooks/plane/ under concurrent load, next to a bare Django view.

Serves Stageboard with gunicorn (gthread workers) on loopback, sends N distinct, signed
Plane webhook bodies from C concurrent keep-alive connections, then the same number of
POSTs to a bare Django view behind the same middleware, and reports requests a second
and latency percentiles for both. Afterwards every delivery must be in the database.
Uses a fresh SQLite file, or PostgreSQL with --database-url.

    .venv/bin/python tests/benchmarks/webhook_throughput.py [--requests 3000]
        [--concurrency 16] [--workers 2] [--threads 4] [--database-url URL]
"""

import argparse
import http.client
import json
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bodies(count: int) -> list[tuple[bytes, str]]:
    from plane_integration.webhook_payloads import signature

    project = str(uuid.uuid4())
    signed = []
    for n in range(count):
        body = json.dumps(
            {
                "event": "issue",
                "action": "updated",
                "webhook_id": str(uuid.uuid4()),
                "workspace_id": str(uuid.uuid4()),
                "data": {"id": str(uuid.uuid4()), "name": f"item {n}", "project": project},
                "activity": {
                    "field": "priority",
                    "old_value": "low",
                    "new_value": "high",
                    "actor": {"id": str(uuid.uuid4()), "display_name": "alice"},
                },
            }
        ).encode()
        signed.append((body, signature(body, SECRET)))
    return signed


def load(port: int, path: str, work: list[tuple[bytes, str]], concurrency: int) -> dict:
    """Send every body once over `concurrency` keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    queue = list(reversed(work))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not queue:
                    break
                body, sig = queue.pop()
            headers = {
                "Content-Type": "application/json",
                "X-Plane-Event": "issue",
                "X-Plane-Delivery": str(uuid.uuid4()),
                "X-Plane-Signature": sig,
            }
            started = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / took,
        "p50": 1000 * statistics.median(latencies),
        "p99": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    env = isolated.environment(args.database_url, PLANE_WEBHOOK_SECRET=SECRET)
    env["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.bench_settings"
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "shell", "-v", "0", "-c",
         "from plane_integration.models import WebhookDelivery as W; W.objects.all().delete()"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    port = free_port()
    gunicorn = Path(python).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "pipeline.wsgi", "-b", f"127.0.0.1:{port}", "-k", "gthread",
         "-w", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        load(port, "/bare/", bodies(50), 4)  # warm up both paths
        warm = bodies(50)
        load(port, "/webhooks/plane/", warm, 4)
        work = bodies(args.requests)
        webhook = load(port, "/webhooks/plane/", work, args.concurrency)
        bare = load(port, "/bare/", work, args.concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = subprocess.run(
        [python, "manage.py", "shell", "-v", "0", "-c",
         "from plane_integration.models import WebhookDelivery as W; print(W.objects.count())"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    database = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    print(f"{args.requests} requests, {args.concurrency} connections, gunicorn "
          f"{args.workers} workers x {args.threads} threads, {database}")  # fmt: skip
    print("| endpoint | requests/s | p50 ms | p99 ms | answers |")
    print("| --- | --- | --- | --- | --- |")
    for name, result in (("POST /webhooks/plane/", webhook), ("bare Django view", bare)):
        print(
            f"| {name} | {result['rps']:.0f} | {result['p50']:.1f} | {result['p99']:.1f} "
            f"| {result['statuses']} |"
        )
    expected = args.requests + len(warm)
    print(f"deliveries stored: {stored} of {expected}")
    return 0 if stored == str(expected) else 1


if __name__ == "__main__":
    sys.exit(main())
