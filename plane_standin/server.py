"""A small fake Plane server for tests and local demos.

It speaks the slice of Plane's REST API v1 the service uses (the project, states, work items by
uuid and by readable id, comments, links), with Plane's authentication, cursor pagination and
per-key rate limit, and sends webhooks the way Plane v1.3 (community edition) does. Faults can
be injected (failures, delays) and every request is recorded, so tests can assert on what a
client actually sent.

`PlaneStandIn` is put together from three parts, each in the module named for what it does:

- `plane_standin.world`: what Plane stores and the methods that set it up and change it as a
  person would (and `seed_demo`, the demo's fixed data),
- `plane_standin.api`: the HTTP routes that answer Plane's REST API shapes,
- `plane_standin.controls`: fault injection, the request log and webhook sending,

and this module serves them over HTTP, with the person's pages of `plane_standin.board` next
to the API. Every name tests and callers import from here stays importable from here.

Standard library only, and nothing from the project: it must run anywhere, including as
``python -m plane_standin`` next to a demo.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from plane_standin import board
from plane_standin.api import MAX_PER_PAGE, PATH_FORMS, Api, _json
from plane_standin.controls import WEBHOOK_TIMEOUT, Controls, RecordedRequest
from plane_standin.world import (
    BOT_USER_ID,
    DEFAULT_STATES,
    DEMO_PROJECT_ID,
    DEMO_WORK_ITEM_IDS,
    DEMO_WORKSPACE,
    HUMAN_USER_ID,
    PIPELINE_STATES,
    PRIORITIES,
    STATE_GROUPS,
    World,
    seed_demo,
    state_uuid,
    workspace_uuid,
)

__all__ = [
    "BOT_USER_ID",
    "DEFAULT_STATES",
    "DEMO_PROJECT_ID",
    "DEMO_WORKSPACE",
    "DEMO_WORK_ITEM_IDS",
    "HUMAN_USER_ID",
    "MAX_PER_PAGE",
    "PATH_FORMS",
    "PIPELINE_STATES",
    "PRIORITIES",
    "STATE_GROUPS",
    "WEBHOOK_TIMEOUT",
    "PlaneStandIn",
    "RecordedRequest",
    "main",
    "seed_demo",
    "state_uuid",
    "workspace_uuid",
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections under a burst of parallel clients.
    request_queue_size = 128
    standin: PlaneStandIn

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts are a feature here) are expected, not errors.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0 closes each connection after its answer: no idle keep-alive threads to outlive
    # stop(), and no client reusing a connection the server is about to drop.
    protocol_version = "HTTP/1.0"
    server_version = "PlaneStandIn/1.0"

    def do_GET(self) -> None:
        self.server.standin._handle(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.standin.log_requests:
            super().log_message(format, *args)


class PlaneStandIn(Api, Controls, World):
    """A fake Plane server. Data methods are thread-safe and return copies."""

    def __init__(
        self,
        *,
        api_key: str = "plane_api_standin",
        rate_limit: int = 60,
        rate_window: float = 60.0,
        path_forms: tuple[str, ...] = PATH_FORMS,
        bot_user_id: str = BOT_USER_ID,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = set(path_forms) - set(PATH_FORMS)
        if unknown:
            raise ValueError(f"unknown path forms: {sorted(unknown)}")
        self.api_key = api_key
        self.path_forms = tuple(path_forms)
        self.bot_user_id = bot_user_id
        self.host = host
        self.port = port
        self.log_requests = False  # the CLI turns this on to print an access log

        # One lock for the world, the controls and the API: a request sees one moment.
        self._lock = threading.RLock()
        self._init_world()
        self._init_controls(rate_limit=rate_limit, rate_window=rate_window)

        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> PlaneStandIn:
        if self._server is not None:
            raise RuntimeError("the stand-in is already started")
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self._server = server
        self._threads = [
            # A short poll interval makes stop() quick: shutdown() waits for the next poll.
            threading.Thread(
                target=server.serve_forever, args=(0.05,), name="plane-standin", daemon=True
            ),
            threading.Thread(target=self._send_loop, name="plane-standin-webhooks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self._stop_sending()
        for thread in self._threads:
            # A delivery to a receiver that hangs must not hang the test suite with it.
            thread.join(timeout=2.0)
        self._threads = []

    def __enter__(self) -> PlaneStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    # ---------------------------------------------------------------------------------- HTTP

    def _handle(self, handler: _Handler) -> None:
        arrived = time.monotonic()
        split = urllib.parse.urlsplit(handler.path)
        path = urllib.parse.unquote(split.path)
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            length = int(handler.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        body = handler.rfile.read(length) if length > 0 else b""
        if board.handles(path):
            # A person's pages, not the API: no key, no rate limit, not in the request log.
            self._send(handler, board.answer(self, handler.command, path, query, body))
            return
        record = RecordedRequest(
            method=handler.command,
            path=path,
            query=query,
            headers=dict(handler.headers.items()),
            body=body,
            status=0,
            at=arrived,
        )
        delay = self._record_arrival(record)

        if length < 0:
            response = _json(400, {"error": "Invalid Content-Length"})
        else:
            try:
                response = self._answer(handler.command, handler.headers, path, query, body)
            except Exception:
                # A bug in the stand-in must show up as loudly as a real server's 500.
                traceback.print_exc()
                response = _json(500, {"error": "stand-in internal error"})

        self._record_answer(record, response.status)
        if delay:
            time.sleep(delay)
        self._send(handler, response)

    @staticmethod
    def _send(handler: _Handler, response: Any) -> None:
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for name, value in (response.headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.body)
        except ConnectionError:
            pass  # the client gave up waiting (see delay_for)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plane_standin",
        description="Serve a fake Plane API with demo data until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--api-key", default="plane_api_standin")
    parser.add_argument("--rate-limit", type=int, default=60, help="requests a minute (0: off)")
    parser.add_argument("--webhook-url", help="where to send webhooks (with its trailing slash)")
    parser.add_argument("--webhook-secret", help="the webhook's signing secret")
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="keep the board in this JSON file: read at start (else the demo data), written "
        "as it changes and at the stop",
    )
    args = parser.parse_args(argv)
    if (args.webhook_url is None) != (args.webhook_secret is None):
        parser.error("--webhook-url and --webhook-secret go together")

    standin = PlaneStandIn(
        api_key=args.api_key, rate_limit=args.rate_limit, host=args.host, port=args.port
    )
    standin.log_requests = True
    demo = seed_demo(standin)
    state_file = Path(args.state) if args.state else None
    if state_file is not None and state_file.exists():
        try:
            standin.restore(json.loads(state_file.read_text()))
            print(f"board restored from {state_file}")
        except (ValueError, KeyError) as error:
            print(f"cannot read {state_file} ({error!r}): starting from the demo data")
            seed_demo(standin)
    if args.webhook_url:
        standin.register_webhook(args.webhook_url, args.webhook_secret)
    # Handlers go in before the server answers, so whoever sees it answer may signal it.
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        standin.start()
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    project_id = demo["project_id"]
    print(f"Plane stand-in at {standin.url}")
    print(f"  API key:     {standin.api_key}")
    print(f"  bot user:    {standin.bot_user_id}")
    print(f"  workspace:   {demo['workspace']} ({workspace_uuid(demo['workspace'])})")
    print(f"  project:     {project_id} (DEMO)")
    for state in standin.states(project_id):
        print(f"  state:       {state['id']} {state['name']} ({state['group']})")
    for item_id in demo["work_items"]:
        if item_id not in standin._items:  # deleted on the board of an earlier run
            continue
        item = standin.work_item(item_id)
        print(f"  work item:   {item_id} DEMO-{item['sequence_id']} {item['name']}")
    print(f"  webhook:     {args.webhook_url or '(none)'}")
    print(f"  board:       {standin.url}/board/  (move, create and delete cards as a person)")
    print(f"  demo health: {standin.url}/demo/health  (POST fail=1 breaks it)")
    print("Stop with Ctrl+C.", flush=True)

    # Waiting in short slices keeps the main thread responsive to signals; the board is saved
    # at most every second while it changes.
    saved, last_save = None, 0.0
    while not stopping.wait(0.2):
        if state_file is not None and time.monotonic() - last_save >= 1:
            saved, last_save = save_state(standin, state_file, saved), time.monotonic()
    standin.stop()
    if state_file is not None:
        save_state(standin, state_file, saved)
    print("Plane stand-in stopped.", flush=True)
    return 0


def save_state(standin: PlaneStandIn, path: Path, last: str | None) -> str:
    """Write the board to `path` when it changed since `last` (atomically: a file beside it,
    then a rename). Returns what is in the file."""
    text = json.dumps(standin.snapshot(), sort_keys=True)
    if text != last:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".tmp")
        partial.write_text(text)
        partial.replace(path)
    return text


if __name__ == "__main__":
    sys.exit(main())
