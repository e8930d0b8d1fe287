"""The stand-in's API: the routes of Plane's REST API v1 the service uses, in Plane's shapes.

Under ``/api/v1/workspaces/{slug}/``: ``projects/{project_id}/`` (the project), its
``states/`` (list, and create: 200, or 409 with the existing state's id for a name the project
has), its ``work-items/`` (list, one item: GET and PATCH), an item's ``comments/`` and
``links/`` (each: list and create), and ``work-items/{IDENTIFIER}-{N}/`` (an item by its
readable id).
Project-level item routes answer under both path forms, ``work-items/`` and the older
``issues/``, unless the stand-in is made with fewer (`path_forms`).

Each request is authenticated (`X-API-Key`: 401 without, 403 wrong), counted against the
per-key rate limit, and may meet an injected failure (`plane_standin.controls`) before it is
routed. Lists use Plane's cursor pagination; unknown workspaces, projects and items are 404
with ``{"error": ...}``; a path no route matches is Django's HTML 404. Standard library only.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plane_standin.world import PRIORITIES, STATE_GROUPS, now_iso

PATH_FORMS = ("work-items", "issues")
MAX_PER_PAGE = 100

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
_ITEM = _PROJECT + _FORM + r"(?P<item>[^/]+)/"
_ROUTES: list[tuple[str, re.Pattern[str], tuple[str, ...]]] = [
    ("project", re.compile(_PROJECT + r"$"), ("GET",)),
    ("states", re.compile(_PROJECT + r"states/$"), ("GET", "POST")),
    ("items", re.compile(_PROJECT + _FORM + r"$"), ("GET",)),
    ("item", re.compile(_ITEM + r"$"), ("GET", "PATCH")),
    ("comments", re.compile(_ITEM + r"comments/$"), ("GET", "POST")),
    ("links", re.compile(_ITEM + r"links/$"), ("GET", "POST")),
    ("readable", re.compile(_WS + _FORM + r"(?P<ident>[^/]+)-(?P<seq>\d+)/$"), ("GET",)),
]


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


class Api:
    """Answers one API request. A part of `PlaneStandIn`: it reads and changes the world
    (`plane_standin.world`) and asks the controls (`plane_standin.controls`) for the rate
    limit and injected failures, all under the stand-in's one lock."""

    _lock: threading.RLock
    api_key: str
    path_forms: tuple[str, ...]
    bot_user_id: str
    _workspaces: dict[str, str]
    _projects: dict[str, dict[str, Any]]
    _states: dict[str, dict[str, Any]]
    _items: dict[str, dict[str, Any]]
    _comments: dict[str, list[dict[str, Any]]]

    def _answer(
        self, method: str, headers: Mapping[str, str], path: str, query: dict[str, str], body: bytes
    ) -> _Response:
        key = headers.get("X-API-Key")
        if not key:
            return _json(401, {"detail": "Authentication credentials were not provided."})
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            return _json(403, {"detail": "Given API token is not valid"})

        with self._lock:  # one decision: a refused request takes no injected failure
            allowed, rate_headers = self._throttle(key)
            if not allowed:
                refused = _json(429, {"error_code": 5900, "error_message": "RATE_LIMIT_EXCEEDED"})
                refused.headers = rate_headers
                return refused
            injected = self._injected_failure()
        if injected is not None:
            response = _json(injected, {"error": "injected failure"})
        else:
            try:
                response = self._route(method, path, query, body)
            except _Refusal as refusal:
                response = refusal.response
        response.headers = {**(response.headers or {}), **rate_headers}
        return response

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
                return self._dispatch(name, method, params, query, body)
        return _Response(404, _DJANGO_NOT_FOUND, content_type="text/html; charset=utf-8")

    def _dispatch(
        self, name: str, method: str, params: dict[str, str], query: dict[str, str], body: bytes
    ) -> _Response:
        if name == "readable":
            return self._get_readable(params["slug"], params["ident"], params["seq"], query)
        project = self._find_project(params["slug"], params["project"])
        if name == "project":
            return _json(200, _only_fields(self._api_project(project), query))
        if name == "states" and method == "POST":
            return self._create_state(project, body)
        if name == "states":
            return _json(200, self._paginate(project["states"], query))
        if name == "items":
            items = [
                self._api_item(i)
                for i in self._items.values()
                if i["project"] == project["id"] and not i["archived_at"]
            ]
            return _json(200, self._paginate(_ordered(items, query), query))
        item = self._find_work_item(project, params["item"])
        if name == "item" and method == "GET":
            if item["archived_at"]:  # Plane answers 404 for an archived item's GET
                raise _Refusal(404, {"error": "Work item not found"})
            return _json(200, _only_fields(self._api_item(item), query))
        if name == "item":
            return self._patch(item, body)
        if name == "links":
            if method == "GET":
                return _json(200, self._paginate(self.links(item["id"]), query))
            return self._link(item, body)
        if method == "GET":
            return _json(200, self._paginate(self._comments[item["id"]], query))
        return self._comment(item, body)

    def _find_project(self, slug: str, project_id: str) -> dict[str, Any]:
        if slug not in self._workspaces:
            raise _Refusal(404, {"error": "Workspace not found"})
        project = self._projects.get(project_id)
        if project is None or project["workspace_slug"] != slug:
            raise _Refusal(404, {"error": "Project not found"})
        return project

    def _find_work_item(self, project: dict[str, Any], work_item_id: str) -> dict[str, Any]:
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
            item["updated_at"] = now_iso()
            item["updated_by"] = self.bot_user_id
            # Plane v1.3 sends one delivery per changed field, each with the item as it is now.
            self._queue_webhooks("issue", "updated", self._webhook_item(item), activities)
        return _json(200, self._api_item(item))

    def _create_state(self, project: dict[str, Any], body: bytes) -> _Response:
        """Plane's `StateAPIEndpoint.post`: a name the project has (case-insensitively, as its
        unique constraint) answers 409 with that state's id; a new state answers 200."""
        data = _json_object(body)
        name, group, color = data.get("name"), data.get("group"), data.get("color")
        errors = {}
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            errors["name"] = ["This field is required."]
        if group not in STATE_GROUPS or group == "triage":
            errors["group"] = [f'"{group}" is not a valid choice.']
        if not isinstance(color, str) or not color.strip():
            errors["color"] = ["This field is required."]
        if errors:
            raise _Refusal(400, errors)
        for state in project["states"]:
            if state["name"].casefold() == name.strip().casefold():
                raise _Refusal(
                    409,
                    {
                        "error": "State with the same name already exists in the project",
                        "id": state["id"],
                    },
                )
        state_id = self.add_state(project["workspace_slug"], project["id"], name.strip(), group)
        self._states[state_id]["color"] = color
        return _json(200, dict(self._states[state_id]))

    def _comment(self, item: dict[str, Any], body: bytes) -> _Response:
        html = _json_object(body).get("comment_html")
        if not isinstance(html, str) or not html.strip():
            raise _Refusal(400, {"error": "comment_html is required"})
        now = now_iso()
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

    def _link(self, item: dict[str, Any], body: bytes) -> _Response:
        """Plane's link serializer: a valid http(s) URL, an optional title, one URL per item.
        Plane sends no webhook for a link (its activity is no work item change)."""
        data = _json_object(body)
        url, title = data.get("url"), data.get("title")
        if not _http_url(url):
            raise _Refusal(400, {"url": ["Enter a valid URL."]})
        if title is not None and not isinstance(title, str):
            raise _Refusal(400, {"title": ["Not a valid string."]})
        if title is not None and len(title) > 255:
            raise _Refusal(400, {"title": ["Ensure this field has no more than 255 characters."]})
        try:
            link = self.add_link(item["id"], url, title)
        except ValueError as refused:
            raise _Refusal(400, {"error": str(refused)}) from None
        return _json(201, link)

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


def _http_url(value: Any) -> bool:
    """What Django's URLValidator (http and https only) accepts, roughly: a scheme, a host."""
    if not isinstance(value, str) or not value or len(value) > 2048:
        return False
    if any(c.isspace() for c in value):
        return False
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


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
