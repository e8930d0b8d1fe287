"""The stand-in's web pages: a board a person can use, and the demo's fake production.

Plane's own web app is where people move cards; the stand-in's board is the demo's version
of it. A move made here goes through `PlaneStandIn.set_state` and comes to Stageboard as a
signed webhook with a human actor and `field: state_id`, exactly as the web app's moves do.
Creating a card sends Plane's "created" delivery; deleting one sends nothing (Plane's
community edition sends no webhook for a deletion: the reconciler has to notice).

Pages (no API key: they stand for a signed-in person's browser):

- ``GET /board/`` (``?project=ID``, ``?refresh=0`` to stop the 5 s reload): columns per state,
  each card with its readable id (``DEMO-3``) and its links (a pull request's) under it
- ``POST /board/move`` ``item``, ``state`` (id or name); ``POST /board/create`` ``name``,
  ``state``; ``POST /board/delete`` ``item``: each answers 303 back to the board
- ``GET /board.json``: the same as data, for scripts (``python dev.py demo``)
- ``GET /{workspace}/projects/{project}/issues/{id}``: Plane's web address of a work item,
  redirected to its card on the board (so ``PLANE_WEB_URL`` can point at the stand-in)
- ``GET /demo/health``: the demo's "production" health check, 200 or 503;
  ``POST /demo/health`` ``fail=1|0`` breaks or mends it; ``POST /demo/rollback`` is the
  demo's rollback hook: it mends production and counts the rollback.
- ``GET /demo/metrics``: the demo's "production" metrics as JSON (``p99_seconds``, which
  the demo repo's analysis check reads): slow while production is broken.

Standard library only, like the server; it imports nothing of the stand-in (the server
imports it, and passes itself in).
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from typing import Any, Protocol


class StandIn(Protocol):
    """What the pages need of the stand-in (`plane_standin.server.PlaneStandIn` is one).

    Said here rather than imported: the server imports this module, never the other way."""

    bot_user_id: str
    demo_health_failing: bool
    demo_rollbacks: int

    def projects(self) -> list[dict]: ...
    def project(self, project_id: str) -> dict: ...
    def states(self, project_id: str) -> list[dict]: ...
    def work_items(self, project_id: str) -> list[dict]: ...
    def links(self, work_item_id: str) -> list[dict]: ...
    def set_state(self, work_item_id: str, state: str) -> None: ...
    def create_work_item_as_person(self, project_id: str, name: str, state: str) -> str: ...
    def delete_work_item(self, work_item_id: str) -> None: ...


WEB_ITEM = re.compile(r"^/(?P<slug>[^/]+)/projects/(?P<project>[^/]+)/issues/(?P<item>[^/]+)/?$")


class Page:
    def __init__(self, status: int, body: bytes, content_type: str, headers=None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def handles(path: str) -> bool:
    return (
        path in ("/board", "/board/", "/board.json")
        or path.startswith(("/board/", "/demo/"))
        or WEB_ITEM.match(path) is not None
    )


def answer(standin: StandIn, method: str, path: str, query: dict, body: bytes) -> Page:
    form = {**query, **dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))}
    try:
        return _route(standin, method, path, form)
    except KeyError as missing:
        return _text(404, f"not found: {missing}")
    except ValueError as bad:
        return _text(400, str(bad))


DEMO_P99, DEMO_P99_BROKEN = 0.12, 0.9


def _route(standin: StandIn, method: str, path: str, form: dict) -> Page:
    if path == "/demo/health":
        if method == "POST":
            standin.demo_health_failing = form.get("fail", "1") not in ("0", "false", "")
        failing = standin.demo_health_failing
        payload = {"status": "failing" if failing else "ok", "rollbacks": standin.demo_rollbacks}
        return _json(503 if failing else 200, payload)
    if path == "/demo/metrics":
        # A broken deploy is a slow one too: the p99 check sees it before the health probe's
        # run of failures reaches its threshold.
        p99 = DEMO_P99_BROKEN if standin.demo_health_failing else DEMO_P99
        return _json(200, {"p99_seconds": p99, "rollbacks": standin.demo_rollbacks})
    if path == "/demo/rollback" and method == "POST":
        standin.demo_rollbacks += 1
        standin.demo_health_failing = False  # the rollback put the last good version back
        return _json(200, {"rolled_back": True, "rollbacks": standin.demo_rollbacks})
    web = WEB_ITEM.match(path)
    if web:
        return _redirect(f"/board/?project={web['project']}#item-{web['item']}")
    project = form.get("project") or _first_project(standin)
    if path == "/board.json":
        return _json(200, _board_data(standin, project))
    if method == "GET" and path in ("/board", "/board/"):
        return Page(200, _board_html(standin, project, form).encode(), "text/html; charset=utf-8")
    if method != "POST":
        return _text(405, "use POST")
    if path == "/board/move":
        standin.set_state(form["item"], form["state"])
    elif path == "/board/create":
        standin.create_work_item_as_person(project, form.get("name") or "New card", form["state"])
    elif path == "/board/delete":
        standin.delete_work_item(form["item"])
    else:
        raise KeyError(path)
    refresh = "&refresh=0" if form.get("refresh") == "0" else ""
    return _redirect(f"/board/?project={project}{refresh}")


def _first_project(standin: StandIn) -> str:
    projects = standin.projects()
    if not projects:
        raise KeyError("no project")
    return projects[0]["id"]


def _board_data(standin: StandIn, project_id: str) -> dict[str, Any]:
    project = standin.project(project_id)
    # As Plane's board orders its columns: by group (backlog first), then by sequence.
    groups = ("backlog", "unstarted", "started", "completed", "cancelled", "triage")
    states = sorted(
        standin.states(project_id), key=lambda s: (groups.index(s["group"]), s["sequence"])
    )
    items = standin.work_items(project_id)
    return {
        "project": {k: project[k] for k in ("id", "identifier", "workspace_slug")},
        "states": [{k: s[k] for k in ("id", "name", "group", "color")} for s in states],
        "work_items": [
            {
                "id": i["id"],
                "name": i["name"],
                "key": f"{project['identifier']}-{i['sequence_id']}",
                "state": i["state"],
                "state_name": next(s["name"] for s in states if s["id"] == i["state"]),
                "updated_by": i["updated_by"],
                "links": [
                    {"url": link["url"], "title": link["title"]} for link in standin.links(i["id"])
                ],
            }
            for i in items
        ],
        "demo_health": "failing" if standin.demo_health_failing else "ok",
        "demo_rollbacks": standin.demo_rollbacks,
    }


def _board_html(standin: StandIn, project_id: str, form: dict) -> str:
    data = _board_data(standin, project_id)
    e = html.escape
    keep = "0" if form.get("refresh") == "0" else ""
    hidden = f'<input type="hidden" name="project" value="{e(project_id)}">'
    if keep:
        hidden += '<input type="hidden" name="refresh" value="0">'

    def state_options(selected: str | None) -> str:
        return "".join(
            f'<option value="{e(s["id"])}"{" selected" if s["id"] == selected else ""}>'
            f"{e(s['name'])}</option>"
            for s in data["states"]
        )

    columns = []
    for state in data["states"]:
        cards = []
        for item in (i for i in data["work_items"] if i["state"] == state["id"]):
            by = "Stageboard" if item["updated_by"] == standin.bot_user_id else "a person"
            moved = f"<small>last moved by {by}</small>" if item["updated_by"] else ""
            links = "".join(
                f'<li><a href="{e(link["url"])}" rel="noreferrer">'
                f"{e(link['title'] or link['url'])}</a></li>"
                for link in item["links"]
            )
            links = f'<ul class="links">{links}</ul>' if links else ""
            cards.append(
                f'<div class="card" id="item-{e(item["id"])}" data-name="{e(item["name"])}">'
                f"<b>{e(item['key'])}</b> {e(item['name'])}<br>{moved}"
                f'<form method="post" action="/board/move">{hidden}'
                f'<input type="hidden" name="item" value="{e(item["id"])}">'
                f'<select name="state" aria-label="move to">{state_options(item["state"])}</select>'
                f'<button type="submit" class="move">Move</button></form>'
                f'<form method="post" action="/board/delete">{hidden}'
                f'<input type="hidden" name="item" value="{e(item["id"])}">'
                f'<button type="submit" class="delete">Delete</button></form>{links}</div>'
            )
        columns.append(
            f'<section class="column" data-state="{e(state["name"])}" '
            f'style="border-top:4px solid {e(state["color"])}">'
            f"<h2>{e(state['name'])} <small>({len(cards)})</small></h2>{''.join(cards)}</section>"
        )
    health = data["demo_health"]
    reload_js = (
        ""
        if keep
        else "<script>setTimeout(function(){var a=document.activeElement;"
        "if(!a||a.tagName!=='SELECT'&&a.tagName!=='INPUT')location.reload()},5000)</script>"
    )
    title = f"Plane stand-in: {e(data['project']['identifier'])}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; background: #f6f7f9; color: #1f2937; }}
header {{ display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }}
.board {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr));
          gap: 10px; align-items: start; margin-top: 12px; }}
.column {{ background: #eceef2; border-radius: 6px; padding: 8px; min-height: 60px; }}
.column h2 {{ font-size: 14px; margin: 2px 0 8px; }}
.card {{ background: #fff; border-radius: 5px; padding: 7px; margin-bottom: 8px;
        box-shadow: 0 1px 2px rgba(0,0,0,.12); font-size: 13px; }}
.card form {{ display: inline; }} .card select {{ max-width: 120px; font-size: 12px; }}
.card small {{ color: #6b7280; }}
.card .links {{ margin: 4px 0 0; padding-left: 16px; font-size: 11px; }}
.card .links a {{ color: #4b5563; word-break: break-all; }}
.ok {{ color: #15803d; }} .failing {{ color: #b91c1c; font-weight: bold; }}
</style></head><body>
<header><h1>{e(data["project"]["workspace_slug"])} / {e(data["project"]["identifier"])}</h1>
<span>A stand-in for Plane: moves made here reach Stageboard as a person's webhooks.</span>
<span>Demo production: <b class="{health}" id="demo-health">{health}</b>
({data["demo_rollbacks"]} rollback(s))</span></header>
<form method="post" action="/board/create">{hidden}
<input name="name" placeholder="New card title" aria-label="title">
<select name="state" aria-label="in state">{state_options(None)}</select>
<button type="submit" id="create">Create card</button></form>
<div class="board">{"".join(columns)}</div>
{reload_js}
</body></html>
"""


def _json(status: int, payload: Any) -> Page:
    return Page(status, json.dumps(payload).encode(), "application/json")


def _text(status: int, text: str) -> Page:
    return Page(status, text.encode(), "text/plain; charset=utf-8")


def _redirect(location: str) -> Page:
    return Page(303, b"", "text/plain", {"Location": location})
