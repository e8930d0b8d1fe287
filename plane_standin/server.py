"""A small fake Plane server for tests and local demos.

It speaks the slice of Plane's REST API v1 the service uses (states, work items by uuid and by
readable id, comments), with Plane's authentication, cursor pagination and per-key rate limit, and
sends webhooks the way Plane v1.3 (community edition) does. Faults can be injected (failures,
delays) and every request is recorded, so tests can assert on what a client actually sent.

Standard library only, and nothing from the project: it must run anywhere, including as
``python -m plane_standin`` next to a demo.

Demo data (``seed_demo``, and the CLI) uses fixed ids so a README can name them:

- workspace slug ``demo`` (uuid ``workspace_uuid("demo")``), project ``DEMO_PROJECT_ID``
  (identifier ``DEMO``) with the default states plus the pipeline states,
- work items ``DEMO-1`` .. ``DEMO-5`` = ``DEMO_WORK_ITEM_IDS``, all in "Todo".

State uuids are derived from the project uuid and the state name (``state_uuid``), so they are
stable across runs too.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import queue
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from plane_standin import board

DEFAULT_STATES: list[tuple[str, str]] = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
    ("Cancelled", "cancelled"),
]
PIPELINE_STATES: list[tuple[str, str]] = [
    ("To Analyse", "unstarted"),
    ("Analysis", "started"),
    ("Code Review", "started"),
    ("Awaiting Deploy", "started"),
    ("Deploying", "started"),
    ("Monitoring after Deploy", "completed"),
    ("Blocked", "started"),
]

BOT_USER_ID = "b0700000-0000-4000-8000-000000000001"
HUMAN_USER_ID = "0a11ce00-0000-4000-8000-000000000002"

DEMO_WORKSPACE = "demo"
DEMO_PROJECT_ID = "0de00000-0000-4000-8000-000000000001"
DEMO_WORK_ITEM_IDS: tuple[str, ...] = tuple(
    f"0de00000-0000-4000-8000-0000000000a{n}" for n in range(1, 6)
)

PATH_FORMS = ("work-items", "issues")
PRIORITIES = ("urgent", "high", "medium", "low", "none")
STATE_GROUPS = ("backlog", "unstarted", "started", "completed", "cancelled", "triage")
MAX_PER_PAGE = 100
# Plane waits 30 s; a stand-in in a test suite should give up sooner on a dead receiver.
WEBHOOK_TIMEOUT = 10.0

# Plane's colours for its default states; other states get their group's colour.
_GROUP_COLORS = {
    "backlog": "#60646C",
    "unstarted": "#60646C",
    "started": "#F59E0B",
    "completed": "#46A758",
    "cancelled": "#9AA4BC",
    "triage": "#4E5355",
}
_ID_NAMESPACE = uuid.UUID("6f1d0c3e-7a51-4d1c-9d5e-0b7e5a3c2f10")

_BOT_ACTOR = {
    "first_name": "Sync",
    "last_name": "Bot",
    "email": "sync-bot@example.com",
    "avatar": "",
    "avatar_url": None,
    "display_name": "sync-bot",
}
_HUMAN_ACTOR = {
    "id": HUMAN_USER_ID,
    "first_name": "Alice",
    "last_name": "Human",
    "email": "alice@example.com",
    "avatar": "",
    "avatar_url": None,
    "display_name": "alice",
}

# What Django answers (DEBUG off) for a URL no route matches: not JSON, on purpose, so clients
# that assume every 404 is Plane's own JSON get caught.
_DJANGO_NOT_FOUND = (
    b'<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    b"  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)

_WS = r"^/api/v1/workspaces/(?P<slug>[^/]+)/"
_PROJECT = _WS + r"projects/(?P<project>[^/]+)/"
_FORM = r"(?P<form>work-items|issues)/"
_ROUTES: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("states", re.compile(_PROJECT + r"states/$"), ("GET",)),
    ("items", re.compile(_PROJECT + _FORM + r"$"), ("GET",)),
    ("item", re.compile(_PROJECT + _FORM + r"(?P<item>[^/]+)/$"), ("GET", "PATCH")),
    ("comments", re.compile(_PROJECT + _FORM + r"(?P<item>[^/]+)/comments/$"), ("GET", "POST")),
    ("readable", re.compile(_WS + _FORM + r"(?P<ident>[^/]+)-(?P<seq>\d+)/$"), ("GET",)),
]


def workspace_uuid(slug: str) -> str:
    """The uuid the stand-in gives a workspace: derived from its slug, so stable across runs."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"workspace:{slug}"))


def state_uuid(project_id: str, name: str) -> str:
    """The uuid the stand-in gives a state: derived from its project and (case-folded) name."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"state:{project_id}:{name.casefold()}"))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _strip_tags(html: str) -> str:
    return re.sub(r"<[^>]*>", "", html).strip()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int  # 0 while the request is still being handled
    at: float  # time.monotonic() when the request arrived


@dataclass
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


def _json(status: int, payload: Any) -> _Response:
    return _Response(status, json.dumps(payload).encode())


class _Refusal(Exception):
    """Raised inside request handling to answer at once with an error response."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status, payload)
        self.response = _json(status, payload)


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


class PlaneStandIn:
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

        self._lock = threading.RLock()
        self._workspaces: dict[str, str] = {}  # slug -> uuid
        self._projects: dict[str, dict[str, Any]] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._items: dict[str, dict[str, Any]] = {}  # insertion order is creation order
        self._comments: dict[str, list[dict[str, Any]]] = {}

        self._log: list[RecordedRequest] = []
        self._rate_limit = rate_limit
        self._rate_window = rate_window
        self._hits: dict[str, deque[float]] = {}
        self._fail_remaining = 0
        self._fail_next_status = 500
        self._fail_until = 0.0
        self._fail_for_status = 500
        self._delay_until = 0.0
        self._delay = 0.0
        self._hang: tuple[str, str, float] | None = None

        self._webhooks: list[dict[str, str]] = []
        self._adhoc_webhook_id = str(uuid.uuid4())
        self._webhook_log: list[tuple[int | None, str, bytes]] = []
        self._outbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        # Ignore proxy settings from the environment: receivers are usually on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        # The demo's "production" (plane_standin.board): its health check and rollback hook.
        self.demo_health_failing = False
        self.demo_rollbacks = 0

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
        self._outbox.put(None)
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

    # ---------------------------------------------------------------------------------- data

    def add_workspace(self, slug: str) -> str:
        with self._lock:
            return self._workspaces.setdefault(slug, workspace_uuid(slug))

    def add_project(
        self,
        workspace: str,
        *,
        project_id: str | None = None,
        identifier: str = "PROJ",
        states: list[tuple[str, str]] | None = None,
    ) -> str:
        project_id = project_id or str(uuid.uuid4())
        states = DEFAULT_STATES if states is None else states
        if not states:
            raise ValueError("a project needs at least one state")
        # Checked up front so a bad list leaves no half-made project behind.
        names = [name.casefold() for name, _group in states]
        if len(set(names)) != len(names):
            raise ValueError("state names must be unique (case-insensitively)")
        bad_groups = {group for _name, group in states} - set(STATE_GROUPS)
        if bad_groups:
            raise ValueError(f"unknown state groups: {sorted(bad_groups)}")
        with self._lock:
            if project_id in self._projects:
                raise ValueError(f"project {project_id} exists already")
            if any(
                p["workspace_slug"] == workspace and p["identifier"].upper() == identifier.upper()
                for p in self._projects.values()
            ):
                raise ValueError(f"identifier {identifier} is taken in workspace {workspace}")
            workspace_id = self.add_workspace(workspace)
            self._projects[project_id] = {
                "id": project_id,
                "identifier": identifier,
                "workspace_slug": workspace,
                "workspace": workspace_id,
                "states": [],
                "next_sequence": 1,
            }
            for name, group in states:
                self.add_state(workspace, project_id, name, group)
            project_states = self._projects[project_id]["states"]
            default = next(
                (s for s in project_states if s["group"] == "backlog"), project_states[0]
            )
            default["default"] = True
        return project_id

    def add_state(self, workspace: str, project_id: str, name: str, group: str) -> str:
        if group not in STATE_GROUPS:
            raise ValueError(f"unknown state group {group!r}")
        with self._lock:
            project = self._project(workspace, project_id)
            if any(s["name"].casefold() == name.casefold() for s in project["states"]):
                raise ValueError(f"state {name!r} exists already in project {project_id}")
            state_id = state_uuid(project_id, name)
            state = {
                "id": state_id,
                "name": name,
                "group": group,
                "color": _GROUP_COLORS[group],
                "sequence": 15000 + 10000 * len(project["states"]),
                "default": False,
                "description": "",
                "project": project_id,
                "workspace": project["workspace"],
            }
            project["states"].append(state)
            self._states[state_id] = state
            return state_id

    def states(self, project_id: str) -> list[dict]:
        with self._lock:
            return [dict(s) for s in self._projects[project_id]["states"]]

    def projects(self) -> list[dict]:
        with self._lock:
            return [dict(p, states=None) for p in self._projects.values()]

    def project(self, project_id: str) -> dict:
        with self._lock:
            return dict(self._projects[project_id], states=None)

    def work_items(self, project_id: str) -> list[dict]:
        """The project's work items (archived ones left out), in creation order."""
        with self._lock:
            return [
                dict(i)
                for i in self._items.values()
                if i["project"] == project_id and not i["archived_at"]
            ]

    def state_id(self, project_id: str, name: str) -> str:
        with self._lock:
            for state in self._projects[project_id]["states"]:
                if state["name"].casefold() == name.casefold():
                    return state["id"]
        raise KeyError(f"no state {name!r} in project {project_id}")

    def add_work_item(
        self,
        workspace: str,
        project_id: str,
        name: str = "Work item",
        *,
        state: str | None = None,
        work_item_id: str | None = None,
    ) -> str:
        work_item_id = work_item_id or str(uuid.uuid4())
        with self._lock:
            project = self._project(workspace, project_id)
            if work_item_id in self._items:
                raise ValueError(f"work item {work_item_id} exists already")
            if state is None:
                state_id = next(s["id"] for s in project["states"] if s["default"])
            else:
                state_id = self._resolve_state(project_id, state)
            sequence = project["next_sequence"]
            project["next_sequence"] += 1
            now = _now_iso()
            self._items[work_item_id] = {
                "id": work_item_id,
                "name": name,
                "state": state_id,
                "priority": "none",
                "sequence_id": sequence,
                "sort_order": 65535.0 + 10000 * (sequence - 1),
                "project": project_id,
                "workspace": project["workspace"],
                "description_html": "<p></p>",
                "created_at": now,
                "updated_at": now,
                "completed_at": now if self._states[state_id]["group"] == "completed" else None,
                "created_by": self.bot_user_id,
                "updated_by": None,
                "archived_at": None,
            }
            self._comments[work_item_id] = []
        return work_item_id

    def work_item(self, work_item_id: str) -> dict:
        with self._lock:
            return self._api_item(self._items[work_item_id])

    def set_state(self, work_item_id: str, state: str) -> None:
        """Move a work item as a person in Plane's web app would (no API request involved)."""
        with self._lock:
            item = self._items[work_item_id]
            new = self._resolve_state(item["project"], state)
            old = item["state"]
            if new == old:
                return
            self._apply_state(item, new)
            item["updated_at"] = _now_iso()
            item["updated_by"] = HUMAN_USER_ID
            # The web app reports a state change as "state_id", the API as "state".
            activity = self._activity("state_id", old, new, _HUMAN_ACTOR)
            self._queue_webhooks("issue", "updated", self._webhook_item(item), [activity])

    def create_work_item_as_person(self, project_id: str, name: str, state: str) -> str:
        """Create a card as a person in the web app: Plane sends a "created" delivery."""
        with self._lock:
            workspace = self._projects[project_id]["workspace_slug"]
            work_item_id = self.add_work_item(workspace, project_id, name, state=state)
            item = self._items[work_item_id]
            item["created_by"] = item["updated_by"] = HUMAN_USER_ID
            activity = self._activity(None, None, None, _HUMAN_ACTOR)
            self._queue_webhooks("issue", "created", self._webhook_item(item), [activity])
        return work_item_id

    def delete_work_item(self, work_item_id: str) -> None:
        # Plane's community edition sends no webhook for a deletion, so neither does this.
        with self._lock:
            del self._items[work_item_id]
            self._comments.pop(work_item_id, None)

    def archive_work_item(self, work_item_id: str) -> None:
        """Archive an item as Plane does: gone from the list and from GET (404), yet a PATCH
        of it still succeeds. No webhook, like a deletion."""
        with self._lock:
            self._items[work_item_id]["archived_at"] = _now_iso()

    def touch_work_item(self, work_item_id: str, updated_at: datetime) -> None:
        """Set when the item last changed (tests age items to model a quiet board)."""
        with self._lock:
            self._items[work_item_id]["updated_at"] = updated_at.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )

    def comments(self, work_item_id: str) -> list[dict]:
        with self._lock:
            return [dict(c) for c in self._comments[work_item_id]]

    # --------------------------------------------------------------------------- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [replace(r, query=dict(r.query), headers=dict(r.headers)) for r in self._log]

    def requests_since(self, start: int) -> list[RecordedRequest]:
        """The recorded requests from the `start`-th on (cheap to poll: no full copy)."""
        with self._lock:
            return [
                replace(r, query=dict(r.query), headers=dict(r.headers)) for r in self._log[start:]
            ]

    def calls(self, method: str | None = None, contains: str = "") -> list[RecordedRequest]:
        """Recorded requests with that method (any case) whose path contains `contains`."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and contains in r.path
        ]

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ----------------------------------------------------------------------- fault injection

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_remaining = count
            self._fail_next_status = status

    def fail_for(self, seconds: float, status: int = 500) -> None:
        with self._lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_for_status = status

    def delay_for(self, seconds: float, delay: float) -> None:
        """Requests arriving in the next `seconds` are answered `delay` seconds late.

        The request is fully processed first (a PATCH is applied, its webhooks are sent) and
        only the answer is late: that is the timeout a client must survive, where it cannot
        know whether its change happened.
        """
        with self._lock:
            self._delay_until = time.monotonic() + seconds
            self._delay = delay

    def hang_next(self, method: str, contains: str, seconds: float) -> None:
        """The next `method` request whose path contains `contains` is applied and then
        answered `seconds` late, as in `delay_for`: the one request a client is caught in
        (killed or timed out while waiting), the others answered at once."""
        with self._lock:
            self._hang = (method.upper(), contains, seconds)

    def set_rate_limit(self, limit: int, window: float) -> None:
        """Change the limit (0 or less: unlimited) and start every key with an empty window."""
        with self._lock:
            self._rate_limit = limit
            self._rate_window = window
            self._hits.clear()

    # ------------------------------------------------------------------------------ webhooks

    def register_webhook(self, url: str, secret: str) -> str:
        webhook_id = str(uuid.uuid4())
        with self._lock:
            self._webhooks.append({"id": webhook_id, "url": url, "secret": secret})
        return webhook_id

    def send_webhook(
        self,
        event: str,
        action: str,
        data: dict,
        activity: dict | None = None,
        *,
        url: str | None = None,
        secret: str | None = None,
    ) -> tuple[int, str, bytes]:
        """Send one delivery now; `activity` None means Plane's empty one (as for a creation).

        `url` and `secret` default to the last registered webhook's.
        """
        with self._lock:
            default = self._webhooks[-1] if self._webhooks else {}
        url = url if url is not None else default.get("url")
        secret = secret if secret is not None else default.get("secret")
        if url is None or secret is None:
            raise ValueError("no webhook registered: pass url and secret")
        webhook_id = default.get("id", self._adhoc_webhook_id)
        if activity is None:
            activity = self._activity(None, None, None, self._bot_actor())
        delivery, body, headers = self._build_delivery(
            webhook_id, secret, event, action, data, activity
        )
        return self._post(url, body, headers), delivery, body

    def work_item_webhook_data(self, work_item_id: str) -> dict:
        with self._lock:
            return self._webhook_item(self._items[work_item_id])

    @property
    def webhook_log(self) -> list[tuple[int | None, str, bytes]]:
        with self._lock:
            return list(self._webhook_log)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued automatic delivery was attempted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # ------------------------------------------------------------------------ representation

    def _project(self, workspace: str, project_id: str) -> dict[str, Any]:
        project = self._projects.get(project_id)
        if project is None or project["workspace_slug"] != workspace:
            raise KeyError(f"no project {project_id} in workspace {workspace}")
        return project

    def _resolve_state(self, project_id: str, state: str) -> str:
        if state in self._states and self._states[state]["project"] == project_id:
            return state
        return self.state_id(project_id, state)

    def _apply_state(self, item: dict[str, Any], state_id: str) -> None:
        item["state"] = state_id
        completed = self._states[state_id]["group"] == "completed"
        item["completed_at"] = (item["completed_at"] or _now_iso()) if completed else None

    def _api_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["id"],
            "name": item["name"],
            "state": item["state"],
            "priority": item["priority"],
            "sequence_id": item["sequence_id"],
            "project": item["project"],
            "workspace": item["workspace"],
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "labels": [],
            "assignees": [],
            "description_html": item["description_html"],
            "created_by": item["created_by"],
            "updated_by": item["updated_by"],
        }

    def _webhook_item(self, item: dict[str, Any]) -> dict[str, Any]:
        # Same keys in the same order as the `data` of a real Plane v1.3.1 issue delivery.
        state = self._states[item["state"]]
        return {
            "id": item["id"],
            "labels": [],
            "assignees": [],
            "state": {
                "id": state["id"],
                "name": state["name"],
                "color": state["color"],
                "group": state["group"],
            },
            "description": {},
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "deleted_at": None,
            "point": None,
            "name": item["name"],
            "description_json": {},
            "description_html": item["description_html"],
            "description_stripped": _strip_tags(item["description_html"]),
            "description_binary": None,
            "priority": item["priority"],
            "start_date": None,
            "target_date": None,
            "sequence_id": item["sequence_id"],
            "sort_order": item["sort_order"],
            "completed_at": item["completed_at"],
            "archived_at": item["archived_at"],
            "is_draft": False,
            "external_source": None,
            "external_id": None,
            "created_by": item["created_by"],
            "updated_by": item["updated_by"],
            "project": item["project"],
            "workspace": item["workspace"],
            "parent": None,
            "estimate_point": None,
            "type": None,
        }

    def _bot_actor(self) -> dict[str, Any]:
        return {"id": self.bot_user_id, **_BOT_ACTOR}

    @staticmethod
    def _activity(field: str | None, old: Any, new: Any, actor: dict[str, Any]) -> dict[str, Any]:
        # Key order as Plane sends it (new before old).
        return {
            "field": field,
            "new_value": new,
            "old_value": old,
            "actor": dict(actor),
            "old_identifier": None,
            "new_identifier": None,
        }

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
        with self._lock:
            self._log.append(record)
            delay = self._delay if arrived < self._delay_until else 0.0
            if self._hang and self._hang[0] == handler.command and self._hang[1] in path:
                delay, self._hang = self._hang[2], None

        if length < 0:
            response = _json(400, {"error": "Invalid Content-Length"})
        else:
            try:
                response = self._answer(handler, path, query, body)
            except Exception:
                # A bug in the stand-in must show up as loudly as a real server's 500.
                traceback.print_exc()
                response = _json(500, {"error": "stand-in internal error"})

        with self._lock:
            record.status = response.status
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

    def _answer(
        self, handler: _Handler, path: str, query: dict[str, str], body: bytes
    ) -> _Response:
        key = handler.headers.get("X-API-Key")
        if not key:
            return _json(401, {"detail": "Authentication credentials were not provided."})
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return _json(403, {"detail": "Given API token is not valid"})

        with self._lock:
            allowed, rate_headers = self._throttle(key)
            if not allowed:
                refused = _json(429, {"error_code": 5900, "error_message": "RATE_LIMIT_EXCEEDED"})
                refused.headers = rate_headers
                return refused
            injected = None
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                injected = self._fail_next_status
            elif time.monotonic() < self._fail_until:
                injected = self._fail_for_status

        if injected is not None:
            response = _json(injected, {"error": "injected failure"})
        else:
            try:
                response = self._route(handler.command, path, query, body)
            except _Refusal as refusal:
                response = refusal.response
        response.headers = {**(response.headers or {}), **rate_headers}
        return response

    def _throttle(self, key: str) -> tuple[bool, dict[str, str]]:
        """DRF's SimpleRateThrottle (which Plane uses): a sliding log of allowed requests."""
        if self._rate_limit <= 0:
            return True, {}
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._rate_window:
            hits.popleft()
        if len(hits) >= self._rate_limit:
            wait = hits[0] + self._rate_window - now
            return False, {"Retry-After": str(max(1, math.ceil(wait)))}
        hits.append(now)
        reset_in = hits[0] + self._rate_window - now
        return True, {
            "X-RateLimit-Remaining": str(self._rate_limit - len(hits)),
            "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in)),
        }

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> _Response:
        for name, pattern, methods in _ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            params = match.groupdict()
            # Django never routes a path form this Plane version lacks: its 404, not Plane's.
            if "form" in params and params["form"] not in self.path_forms:
                continue
            if method not in methods:
                response = _json(405, {"detail": f'Method "{method}" not allowed.'})
                response.headers = {"Allow": ", ".join(methods)}
                return response
            with self._lock:
                if name == "readable":
                    return self._get_readable(params["slug"], params["ident"], params["seq"], query)
                project = self._api_project(params["slug"], params["project"])
                if name == "states":
                    return _json(200, self._paginate(project["states"], query))
                if name == "items":
                    items = [
                        self._api_item(i)
                        for i in self._items.values()
                        if i["project"] == project["id"] and not i["archived_at"]
                    ]
                    return _json(200, self._paginate(_ordered(items, query), query))
                item = self._api_work_item(project, params["item"])
                if name == "item" and method == "GET":
                    if item["archived_at"]:  # Plane answers 404 for an archived item's GET
                        raise _Refusal(404, {"error": "Work item not found"})
                    return _json(200, _only_fields(self._api_item(item), query))
                if name == "item":
                    return self._patch(item, body)
                if method == "GET":
                    return _json(200, self._paginate(self._comments[item["id"]], query))
                return self._comment(item, body)
        return _Response(404, _DJANGO_NOT_FOUND, content_type="text/html; charset=utf-8")

    def _api_project(self, slug: str, project_id: str) -> dict[str, Any]:
        if slug not in self._workspaces:
            raise _Refusal(404, {"error": "Workspace not found"})
        project = self._projects.get(project_id)
        if project is None or project["workspace_slug"] != slug:
            raise _Refusal(404, {"error": "Project not found"})
        return project

    def _api_work_item(self, project: dict[str, Any], work_item_id: str) -> dict[str, Any]:
        item = self._items.get(work_item_id)
        if item is None or item["project"] != project["id"]:
            raise _Refusal(404, {"error": "Work item not found"})
        return item

    def _get_readable(self, slug: str, ident: str, seq: str, query: dict[str, str]) -> _Response:
        if slug not in self._workspaces:
            raise _Refusal(404, {"error": "Workspace not found"})
        for item in self._items.values():
            project = self._projects[item["project"]]
            if (
                project["workspace_slug"] == slug
                and project["identifier"].upper() == ident.upper()
                and item["sequence_id"] == int(seq)
            ):
                return _json(200, _only_fields(self._api_item(item), query))
        raise _Refusal(404, {"error": "Work item not found"})

    def _patch(self, item: dict[str, Any], body: bytes) -> _Response:
        data = _json_object(body)
        # Validate everything before changing anything: a refused PATCH changes nothing.
        accepted: dict[str, Any] = {}
        for key, value in data.items():
            if key == "state":
                state = self._states.get(value) if isinstance(value, str) else None
                if state is None or state["project"] != item["project"]:
                    raise _Refusal(
                        400, {"error": "State is not valid: not a state of this project"}
                    )
            elif key == "name":
                if not isinstance(value, str) or not value.strip() or len(value) > 255:
                    raise _Refusal(400, {"error": "name must be 1 to 255 characters"})
            elif key == "priority":
                if value not in PRIORITIES:
                    raise _Refusal(400, {"error": f"priority must be one of {list(PRIORITIES)}"})
            else:
                continue  # like Plane's serializer: unknown and read-only fields are ignored
            accepted[key] = value

        activities = []
        for key, value in accepted.items():
            old = item[key]
            if old == value:
                continue
            if key == "state":
                self._apply_state(item, value)
            else:
                item[key] = value
            activities.append(self._activity(key, old, value, self._bot_actor()))
        if activities:
            item["updated_at"] = _now_iso()
            item["updated_by"] = self.bot_user_id
            # Plane v1.3 sends one delivery per changed field, each with the item as it is now.
            self._queue_webhooks("issue", "updated", self._webhook_item(item), activities)
        return _json(200, self._api_item(item))

    def _comment(self, item: dict[str, Any], body: bytes) -> _Response:
        html = _json_object(body).get("comment_html")
        if not isinstance(html, str) or not html.strip():
            raise _Refusal(400, {"error": "comment_html is required"})
        now = _now_iso()
        comment = {
            "id": str(uuid.uuid4()),
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "comment_html": html,
            "attachments": [],
            "access": "INTERNAL",
            "external_source": None,
            "external_id": None,
            "edited_at": None,
            "created_by": self.bot_user_id,
            "updated_by": None,
            "project": item["project"],
            "workspace": item["workspace"],
            "description": str(uuid.uuid4()),
            "issue": item["id"],
            "actor": self.bot_user_id,
            "parent": None,
        }
        self._comments[item["id"]].append(comment)
        activity = self._activity(None, None, None, self._bot_actor())
        self._queue_webhooks("issue_comment", "created", dict(comment), [activity])
        return _json(201, comment)

    def _paginate(self, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        """Plane's cursor pagination. Cursor "V:P:X" is page P (from 0) of pages of V rows."""
        try:
            per_page = int(query.get("per_page", MAX_PER_PAGE))
        except ValueError:
            raise _Refusal(400, {"error": "per_page must be an integer"}) from None
        if per_page < 1:
            raise _Refusal(400, {"error": "per_page must be positive"})
        size, page = min(per_page, MAX_PER_PAGE), 0
        if query.get("cursor"):
            try:
                value, page, _is_prev = (int(part) for part in query["cursor"].split(":"))
            except ValueError:
                raise _Refusal(400, {"error": "Invalid cursor"}) from None
            if value < 1 or page < 0:
                raise _Refusal(400, {"error": "Invalid cursor"})
            # Like Plane, the cursor's page size wins, so a client that follows next_cursor
            # without repeating per_page still walks the same pages.
            size = min(value, MAX_PER_PAGE)
        start = page * size
        results = [_only_fields(dict(row), query) for row in rows[start : start + size]]
        total = len(rows)
        return {
            "grouped_by": None,
            "sub_grouped_by": None,
            "total_count": total,
            "next_cursor": f"{size}:{page + 1}:0",
            "prev_cursor": f"{size}:{page - 1}:1",
            "next_page_results": start + size < total,
            "prev_page_results": page > 0,
            "count": len(results),
            "total_pages": math.ceil(total / size),
            "total_results": total,
            "extra_stats": None,
            "results": results,
        }

    # ----------------------------------------------------------------------------- delivery

    def _queue_webhooks(
        self, event: str, action: str, data: dict[str, Any], activities: list[dict[str, Any]]
    ) -> None:
        with self._lock:
            for webhook in self._webhooks:
                for activity in activities:
                    self._pending += 1
                    self._outbox.put((webhook, event, action, data, activity))

    def _send_loop(self) -> None:
        # One sender thread: deliveries leave in the order the changes happened, and a slow
        # receiver never holds up an API answer.
        while (job := self._outbox.get()) is not None:
            webhook, event, action, data, activity = job
            delivery, body, headers = self._build_delivery(
                webhook["id"], webhook["secret"], event, action, data, activity
            )
            status: int | None
            try:
                status = self._post(webhook["url"], body, headers)
            except Exception:
                status = None  # Plane would retry later; the stand-in just records the failure
            with self._idle:
                self._webhook_log.append((status, delivery, body))
                self._pending -= 1
                self._idle.notify_all()

    def _build_delivery(
        self,
        webhook_id: str,
        secret: str,
        event: str,
        action: str,
        data: dict[str, Any],
        activity: dict[str, Any],
    ) -> tuple[str, bytes, dict[str, str]]:
        payload = {
            "event": event,
            "action": action,
            "webhook_id": webhook_id,
            "workspace_id": data.get("workspace"),
            "data": data,
            "activity": activity,
        }
        # Plane signs exactly what it sends: plain json.dumps, default separators.
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Autopilot",
            "X-Plane-Delivery": delivery,
            "X-Plane-Event": event,
            "X-Plane-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        return delivery, body, headers

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=WEBHOOK_TIMEOUT) as answer:
                answer.read()
                return answer.status
        except urllib.error.HTTPError as error:
            # Any HTTP answer counts as delivered for Plane, 4xx and 5xx included.
            error.close()
            return error.code


def _ordered(rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """Plane's `order_by=field` or `-field` (descending); creation order by default."""
    order_by = query.get("order_by", "").strip()
    field = order_by.lstrip("-")
    if not field or not rows:
        return rows
    if field not in rows[0]:
        raise _Refusal(400, {"error": f"Cannot order by {field!r}"})

    # Like a database ORDER BY: ties keep no promised order, so the id breaks them here.
    def key(row: dict[str, Any]) -> tuple:
        value = row[field]
        return (value is None, "" if value is None else value, row["id"])

    ordered = sorted(rows, key=key)
    return ordered[::-1] if order_by.startswith("-") else ordered


def _only_fields(row: dict[str, Any], query: dict[str, str]) -> dict[str, Any]:
    wanted = {f.strip() for f in query.get("fields", "").split(",") if f.strip()}
    if not wanted:
        return row
    return {k: v for k, v in row.items() if k in wanted or k == "id"}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise _Refusal(400, {"error": "Malformed JSON"}) from None
    if not isinstance(data, dict):
        raise _Refusal(400, {"error": "Expected a JSON object"})
    return data


def seed_demo(standin: PlaneStandIn) -> dict:
    """Workspace "demo", project DEMO (default + pipeline states), DEMO-1..5 in "Todo"."""
    project_id = standin.add_project(
        DEMO_WORKSPACE,
        project_id=DEMO_PROJECT_ID,
        identifier="DEMO",
        states=DEFAULT_STATES + PIPELINE_STATES,
    )
    work_items = [
        standin.add_work_item(
            DEMO_WORKSPACE, project_id, f"Demo item {n}", state="Todo", work_item_id=item_id
        )
        for n, item_id in enumerate(DEMO_WORK_ITEM_IDS, start=1)
    ]
    return {"workspace": DEMO_WORKSPACE, "project_id": project_id, "work_items": work_items}


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
    args = parser.parse_args(argv)
    if (args.webhook_url is None) != (args.webhook_secret is None):
        parser.error("--webhook-url and --webhook-secret go together")

    standin = PlaneStandIn(
        api_key=args.api_key, rate_limit=args.rate_limit, host=args.host, port=args.port
    )
    standin.log_requests = True
    demo = seed_demo(standin)
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
        item = standin.work_item(item_id)
        print(f"  work item:   {item_id} DEMO-{item['sequence_id']} {item['name']}")
    print(f"  webhook:     {args.webhook_url or '(none)'}")
    print(f"  board:       {standin.url}/board/  (move, create and delete cards as a person)")
    print(f"  demo health: {standin.url}/demo/health  (POST fail=1 breaks it)")
    print("Stop with Ctrl+C.", flush=True)

    # Waiting in short slices keeps the main thread responsive to signals.
    while not stopping.wait(0.2):
        pass
    standin.stop()
    print("Plane stand-in stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
