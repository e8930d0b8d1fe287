"""Loopback servers the board-truth simulation scripts: where Plane's webhooks land, and
the health endpoint the post-deploy monitor probes.

Standard library only, port 0 (the system picks a free port), daemon threads.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format, *args) -> None:
        pass

    def answer(self, status: int, body: bytes = b"{}") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError:
            pass  # the prober gave up waiting: that is what a silent service looks like


class _Loopback:
    handler: type[_Quiet]

    def start(self):
        self._server = _Server(("127.0.0.1", 0), self.handler)
        self._server.owner = self
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class _RelayHandler(_Quiet):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k: v for k, v in self.headers.items() if k.lower().startswith("x-plane-")}
        self.server.owner.hold(headers, body)
        self.answer(200)


class WebhookRelay(_Loopback):
    """Takes Plane's deliveries and holds them, so the simulation decides which arrive,
    how often and in what order (Plane itself gives up on some and retries others)."""

    handler = _RelayHandler

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[tuple[dict[str, str], bytes]] = []

    def hold(self, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self._held.append((headers, body))

    def take(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            held, self._held = self._held, []
        return held


class _HealthHandler(_Quiet):
    def do_GET(self) -> None:
        self.server.owner.count(self.path.strip("/"))
        mode = self.server.owner.modes.get(self.path.strip("/"), "healthy")
        if mode == "healthy":
            self.answer(200, b'{"status": "ok"}')
        elif mode == "failing":
            self.answer(503, b'{"status": "down"}')
        else:  # silent: takes the connection and never answers within the probe's timeout
            time.sleep(self.server.owner.silence)
            self.answer(200)


class HealthEndpoint(_Loopback):
    """`/<repo>` answers as `modes[repo]` says: healthy (200), failing (503) or silent."""

    handler = _HealthHandler

    def __init__(self, silence: float) -> None:
        self.modes: dict[str, str] = {}
        self.silence = silence
        self.hits: dict[str, int] = {}  # probes received per repo
        self._lock = threading.Lock()

    def count(self, repo: str) -> None:
        with self._lock:
            self.hits[repo] = self.hits.get(repo, 0) + 1
