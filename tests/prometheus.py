"""A real Prometheus for the tests, scraping a small exporter of the test's own every second.

Debian's `prometheus` package gives the binary (CI installs it when missing); without it
the tests that need it skip and say why.
"""

import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def available() -> bool:
    return Path(BINARY).is_file()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Exporter:
    """Serves `/metrics` in Prometheus's text format: gauges the test sets as it goes."""

    def __init__(self):
        self.values: dict[str, float] = {}  # 'name{labels}' -> value
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = "".join(f"{k} {v}\n" for k, v in sorted(exporter.values.items()))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, storage: Path, exporter: Exporter):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = storage / "prometheus.yml"
        # Subqueries (the baselines) step at the evaluation interval: one second, like the
        # scrapes, so a test's few seconds of history hold enough points.
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: test\n    static_configs:\n"
            f"      - targets: ['{exporter.target}']\n"
        )
        self.log = (storage / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                BINARY,
                f"--config.file={config}",
                f"--storage.tsdb.path={storage / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready()

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("prometheus was not ready within 30 s")

    def value(self, query: str) -> float | None:
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5)
        result = answer.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, query: str, expected: float, seconds: float = 15) -> None:
        """Until Prometheus has scraped the exporter's value for `query`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.value(query) == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{query} never became {expected} (is {self.value(query)})")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
