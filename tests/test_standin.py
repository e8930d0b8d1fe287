"""The Plane stand-in, exercised over real HTTP on loopback as a client would see it."""

import hashlib
import hmac
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from plane_standin.server import (
    DEFAULT_STATES,
    DEMO_PROJECT_ID,
    DEMO_WORK_ITEM_IDS,
    PIPELINE_STATES,
    PlaneStandIn,
    seed_demo,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "plane_api_test"
SECRET = "plane_wh_5c7cc737b9ca4addbff1d5c57c88340f"
# The keys, in order, of `data` in a real Plane v1.3.1 issue delivery (the captured fixtures).
FIXTURE_DATA_KEYS = [
    "id", "labels", "assignees", "state", "description", "created_at", "updated_at",
    "deleted_at", "point", "name", "description_json", "description_html",
    "description_stripped", "description_binary", "priority", "start_date", "target_date",
    "sequence_id", "sort_order", "completed_at", "archived_at", "is_draft", "external_source",
    "external_id", "created_by", "updated_by", "project", "workspace", "parent",
    "estimate_point", "type",
]  # fmt: skip


@dataclass
class World:
    plane: PlaneStandIn
    http: requests.Session
    project_id: str
    items: list[str]

    def project_url(self, *parts: str) -> str:
        path = "/".join(("api/v1/workspaces/ws/projects", self.project_id, *parts))
        return f"{self.plane.url}/{path}/"


def session(key: str | None = KEY) -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # no proxy between us and loopback
    if key is not None:
        http.headers["X-API-Key"] = key
    return http


def make_world(**options) -> World:
    plane = PlaneStandIn(api_key=KEY, rate_limit=1000, **options).start()
    project_id = plane.add_project("ws", identifier="PROJ")
    items = [plane.add_work_item("ws", project_id, f"item {n}") for n in range(1, 4)]
    return World(plane, session(), project_id, items)


@pytest.fixture
def world():
    world = make_world()
    yield world
    world.plane.stop()


@dataclass
class Delivery:
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return dict(self.headers)[name]


@pytest.fixture
def receiver():
    """A webhook receiver on loopback that keeps every delivery, byte for byte."""
    received: queue.Queue[Delivery] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(Delivery(self.path, list(self.headers.items()), body))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/plane/"
    server.received = received
    yield server
    server.shutdown()
    server.server_close()


def next_delivery(receiver, timeout: float = 5.0) -> Delivery:
    return receiver.received.get(timeout=timeout)


def assert_signed(delivery: Delivery, secret: str = SECRET) -> dict:
    expected = hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    signature = delivery.header("X-Plane-Signature")
    assert len(signature) == 64 and signature == signature.lower()
    assert hmac.compare_digest(signature, expected)
    return json.loads(delivery.body)


# --------------------------------------------------------------------------------------- auth


def test_a_missing_key_is_401_and_a_wrong_one_403_and_both_are_recorded(world):
    url = world.project_url("states")

    missing = session(key=None).get(url)
    wrong = session(key="plane_api_wrong").get(url)

    assert missing.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert wrong.status_code == 403
    assert "detail" in wrong.json()
    assert [(r.method, r.status) for r in world.plane.requests] == [("GET", 401), ("GET", 403)]


# ------------------------------------------------------------------------------------- states


def test_states_are_listed_with_plane_fields_and_the_backlog_as_default(world):
    response = world.http.get(world.project_url("states"))

    assert response.status_code == 200
    states = response.json()["results"]
    assert [(s["name"], s["group"]) for s in states] == DEFAULT_STATES
    assert set(states[0]) == {
        "id", "name", "group", "color", "sequence", "default", "description", "project",
        "workspace",
    }  # fmt: skip
    assert [s["default"] for s in states] == [True, False, False, False, False]
    assert world.plane.state_id(world.project_id, "in progress") == states[2]["id"]


def test_a_state_is_created_with_200_and_a_name_that_exists_answers_409_with_its_id(world):
    url = world.project_url("states")
    made = world.http.post(
        url, json={"name": "Code Review", "group": "started", "color": "#8B5CF6"}
    )
    assert made.status_code == 200
    state = made.json()
    assert (state["name"], state["group"], state["color"]) == ("Code Review", "started", "#8B5CF6")
    listed = world.http.get(url).json()["results"]
    assert [s["id"] for s in listed if s["name"] == "Code Review"] == [state["id"]]

    again = world.http.post(url, json={"name": "code review", "group": "started", "color": "#000"})
    assert again.status_code == 409
    assert again.json()["id"] == state["id"]
    assert len(world.http.get(url).json()["results"]) == len(listed)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"group": "started", "color": "#000"}, "name"),
        ({"name": "X", "group": "doing", "color": "#000"}, "group"),
        ({"name": "X", "group": "started"}, "color"),
    ],
)
def test_creating_a_state_without_a_valid_field_is_a_400_naming_it(world, body, field):
    response = world.http.post(world.project_url("states"), json=body)
    assert response.status_code == 400
    assert field in response.json()


def test_states_pagination_follows_next_cursor_and_ignores_page(world):
    world.plane.add_state("ws", world.project_id, "Blocked", "started")
    url = world.project_url("states")
    names, pages, cursor = [], 0, None
    while True:
        params = {"per_page": 2, "page": 7}  # `page` must change nothing
        if cursor:
            params["cursor"] = cursor
        body = world.http.get(url, params=params).json()
        pages += 1
        assert body["count"] == len(body["results"]) <= 2
        assert (body["total_count"], body["total_results"], body["total_pages"]) == (6, 6, 3)
        assert body["prev_page_results"] is (pages > 1)
        names += [s["name"] for s in body["results"]]
        if not body["next_page_results"]:
            break
        cursor = body["next_cursor"]
        assert pages < 10, "pagination never ends"

    assert pages == 3
    assert names == [name for name, _ in DEFAULT_STATES] + ["Blocked"]


def test_a_malformed_cursor_is_400(world):
    response = world.http.get(world.project_url("states"), params={"cursor": "nonsense"})

    assert response.status_code == 400


# --------------------------------------------------------------------------------- work items


@pytest.mark.parametrize("form", ["work-items", "issues"])
def test_get_and_patch_a_work_item_on_both_path_forms(world, form):
    item_id = world.items[0]
    done = world.plane.state_id(world.project_id, "Done")
    url = world.project_url(form, item_id)

    before = world.http.get(url)
    patched = world.http.patch(url, json={"state": done, "name": "renamed", "priority": "high"})

    assert before.status_code == 200
    assert before.json()["state"] == world.plane.state_id(world.project_id, "Backlog")
    assert before.json()["sequence_id"] == 1
    assert before.json()["created_at"].endswith("Z")
    assert patched.status_code == 200
    body = patched.json()
    assert (body["state"], body["name"], body["priority"]) == (done, "renamed", "high")
    assert body["updated_at"] > before.json()["updated_at"]
    assert world.plane.work_item(item_id)["state"] == done


def test_a_patch_that_changes_nothing_keeps_updated_at(world):
    url = world.project_url("work-items", world.items[0])
    before = world.http.get(url).json()

    after = world.http.patch(url, json={"state": before["state"], "unknown": 1}).json()

    assert after["updated_at"] == before["updated_at"]


def test_an_unrouted_path_form_is_djangos_404_but_an_unknown_item_is_plane_s(world):
    with PlaneStandIn(api_key=KEY, path_forms=("issues",)) as old_plane:
        project_id = old_plane.add_project("ws")
        item_id = old_plane.add_work_item("ws", project_id)
        base = f"{old_plane.url}/api/v1/workspaces/ws/projects/{project_id}"

        new_form = world.http.get(f"{base}/work-items/{item_id}/")
        old_form = world.http.get(f"{base}/issues/{item_id}/")
        unknown = world.http.get(f"{base}/issues/00000000-0000-4000-8000-000000000000/")

    assert new_form.status_code == 404
    assert "application/json" not in new_form.headers["Content-Type"]
    assert old_form.status_code == 200 and old_form.json()["id"] == item_id
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_unknown_workspace_or_project_is_404(world):
    item = world.items[0]
    other = f"{world.plane.url}/api/v1/workspaces/nope/projects/{world.project_id}/states/"

    assert world.http.get(other).status_code == 404
    assert (
        world.http.get(world.project_url("work-items", item).replace("/ws/", "/x/")).status_code
        == 404
    )
    assert world.http.get(world.project_url("nonsense")).status_code == 404
    wrong_project = world.project_url("work-items", item).replace(world.project_id, item)
    response = world.http.get(wrong_project)
    assert response.status_code == 404 and "error" in response.json()


def test_patch_with_another_projects_state_is_400_and_changes_nothing(world):
    other = world.plane.add_project("ws", identifier="OTHER")
    foreign_done = world.plane.state_id(other, "Done")
    item_id = world.items[0]
    before = world.plane.work_item(item_id)

    response = world.http.patch(
        world.project_url("work-items", item_id), json={"state": foreign_done, "name": "x"}
    )

    assert response.status_code == 400
    assert "error" in response.json()
    assert world.plane.work_item(item_id) == before


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"priority": "extreme"}'])
def test_a_bad_patch_body_is_400(world, body):
    response = world.http.patch(
        world.project_url("work-items", world.items[0]),
        data=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400


def test_the_list_returns_only_the_requested_fields_in_created_order(world):
    response = world.http.get(world.project_url("work-items"), params={"fields": "id,state"})

    results = response.json()["results"]
    assert [r["id"] for r in results] == world.items
    assert all(set(r) == {"id", "state"} for r in results)
    only_state = world.http.get(world.project_url("work-items"), params={"fields": "state"})
    assert set(only_state.json()["results"][0]) == {"id", "state"}


def test_the_list_orders_by_updated_at_newest_first_across_pages(world):
    from datetime import UTC, datetime, timedelta

    base = datetime(2026, 1, 1, tzinfo=UTC)
    for n, item in enumerate(world.items):
        world.plane.touch_work_item(item, base + timedelta(minutes=n))
    url = world.project_url("work-items")
    params = {"fields": "id,updated_at", "order_by": "-updated_at", "per_page": 2}

    first = world.http.get(url, params=params).json()
    second = world.http.get(url, params={**params, "cursor": first["next_cursor"]}).json()

    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == list(reversed(world.items))[:4]
    newest = len(world.items) - 1
    assert first["results"][0]["updated_at"] == f"2026-01-01T00:0{newest}:00.000000Z"
    unknown = world.http.get(url, params={"order_by": "nonsense"})
    assert unknown.status_code == 400


def test_an_archived_item_leaves_the_list_and_get_but_takes_a_patch(world):
    item = world.items[0]
    world.plane.archive_work_item(item)

    listed = world.http.get(world.project_url("work-items")).json()["results"]
    got = world.http.get(world.project_url("work-items", item))
    done = world.plane.state_id(world.project_id, "Done")
    patched = world.http.patch(world.project_url("work-items", item), json={"state": done})

    assert item not in [r["id"] for r in listed]
    assert got.status_code == 404
    assert patched.status_code == 200 and world.plane.work_item(item)["state"] == done


def test_a_work_item_is_found_by_its_readable_id(world):
    base = f"{world.plane.url}/api/v1/workspaces/ws/work-items"

    found = world.http.get(f"{base}/PROJ-2/")
    missing = world.http.get(f"{base}/PROJ-99/")

    assert found.status_code == 200 and found.json()["id"] == world.items[1]
    assert missing.status_code == 404


def test_a_deleted_work_item_answers_404(world):
    world.plane.delete_work_item(world.items[0])

    response = world.http.get(world.project_url("work-items", world.items[0]))

    assert response.status_code == 404


def test_comments_are_created_with_201_and_a_blank_one_is_400(world):
    item_id = world.items[0]
    url = world.project_url("work-items", item_id, "comments")

    created = world.http.post(url, json={"comment_html": "<p>deployed</p>"})
    blank = world.http.post(url, json={"comment_html": "  "})
    missing = world.http.post(url, json={})

    assert created.status_code == 201
    comment = created.json()
    assert (comment["comment_html"], comment["issue"]) == ("<p>deployed</p>", item_id)
    assert comment["actor"] == world.plane.bot_user_id
    assert (blank.status_code, missing.status_code) == (400, 400)
    assert [c["comment_html"] for c in world.plane.comments(item_id)] == ["<p>deployed</p>"]


def test_calls_filters_the_log_by_method_and_path(world):
    world.http.get(world.project_url("states"))
    world.http.patch(world.project_url("issues", world.items[0]), json={})

    patches = world.plane.calls("patch", contains="/issues/")

    assert [(r.method, r.status, r.body) for r in patches] == [("PATCH", 200, b"{}")]
    assert patches[0].headers["X-API-Key"] == KEY
    world.plane.reset_log()
    assert world.plane.requests == []


# ------------------------------------------------------------------------------ rate limiting


def test_the_rate_limit_is_a_sliding_window_per_key(world):
    world.plane.set_rate_limit(5, 1.0)
    url = world.project_url("states")
    assert session(key=None).get(url).status_code == 401  # not counted

    allowed = [world.http.get(url) for _ in range(5)]
    unauthenticated = session(key=None).get(url)
    refused = world.http.get(url)

    assert [r.status_code for r in allowed] == [200] * 5
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in allowed] == [4, 3, 2, 1, 0]
    assert all(int(r.headers["X-RateLimit-Reset"]) >= int(time.time()) for r in allowed)
    assert unauthenticated.status_code == 401
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert not [h for h in refused.headers if h.lower().startswith("x-ratelimit")]
    assert refused.json() == {"error_code": 5900, "error_message": "RATE_LIMIT_EXCEEDED"}

    last_allowed = world.plane.calls(contains="/states/")[5].at
    time.sleep(max(0.0, last_allowed + 1.05 - time.monotonic()))
    again = world.http.get(url)
    assert again.status_code == 200
    assert again.headers["X-RateLimit-Remaining"] == "4"  # the window is empty again


# ---------------------------------------------------------------------------- fault injection


def test_fail_next_answers_the_next_requests_with_that_status(world):
    world.plane.fail_next(2)
    url = world.project_url("work-items", world.items[0])

    statuses = [world.http.get(url).status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert [r.status for r in world.plane.requests] == [500, 500, 200]


def test_fail_next_applies_after_auth(world):
    world.plane.fail_next(1, status=502)
    url = world.project_url("states")

    assert session(key=None).get(url).status_code == 401
    failed = world.http.get(url)
    assert failed.status_code == 502 and failed.json() == {"error": "injected failure"}
    assert world.http.get(url).status_code == 200


def test_fail_for_fails_every_request_for_a_while(world):
    world.plane.fail_for(0.2, status=503)
    url = world.project_url("states")

    during = [world.http.get(url).status_code for _ in range(2)]
    time.sleep(0.25)

    assert during == [503, 503]
    assert world.http.get(url).status_code == 200


def test_delay_for_makes_a_short_read_timeout_expire_but_the_change_happens(world):
    done = world.plane.state_id(world.project_id, "Done")
    world.plane.delay_for(0.3, delay=0.6)
    url = world.project_url("work-items", world.items[0])

    with pytest.raises(requests.exceptions.ReadTimeout):
        world.http.patch(url, json={"state": done}, timeout=(1.0, 0.2))

    assert world.plane.work_item(world.items[0])["state"] == done
    time.sleep(0.15)  # past the delay window
    assert world.http.get(url, timeout=(1.0, 0.2)).status_code == 200


def test_hang_next_holds_the_answer_of_one_matching_request_after_applying_it(world):
    done = world.plane.state_id(world.project_id, "Done")
    world.plane.hang_next("patch", world.items[0], seconds=30)
    url = world.project_url("work-items", world.items[0])

    assert world.http.get(url, timeout=(1.0, 0.5)).status_code == 200  # not a PATCH
    with pytest.raises(requests.exceptions.ReadTimeout):
        world.http.patch(url, json={"state": done}, timeout=(1.0, 0.2))

    assert world.plane.work_item(world.items[0])["state"] == done
    assert world.http.patch(url, json={"state": done}, timeout=(1.0, 0.5)).status_code == 200


# ----------------------------------------------------------------------------------- webhooks


def test_a_state_patch_through_the_api_sends_a_signed_state_delivery(world, receiver):
    webhook_id = world.plane.register_webhook(receiver.url, SECRET)
    item_id = world.items[0]
    backlog = world.plane.state_id(world.project_id, "Backlog")
    done = world.plane.state_id(world.project_id, "Done")

    world.http.patch(world.project_url("work-items", item_id), json={"state": done})

    delivery = next_delivery(receiver)
    body = assert_signed(delivery)
    names = [name for name, _ in delivery.headers]
    for name in ("Content-Type", "User-Agent", "X-Plane-Event", "X-Plane-Delivery"):
        assert name in names
    assert delivery.path == "/hooks/plane/"
    assert delivery.header("Content-Type") == "application/json"
    assert delivery.header("User-Agent") == "Autopilot"
    assert delivery.header("X-Plane-Event") == "issue"
    assert list(body) == ["event", "action", "webhook_id", "workspace_id", "data", "activity"]
    assert json.dumps(body).encode() == delivery.body  # plain json.dumps, as Plane sends
    assert (body["event"], body["action"], body["webhook_id"]) == ("issue", "updated", webhook_id)
    assert body["workspace_id"] == world.plane.add_workspace("ws")
    activity = body["activity"]
    assert (activity["field"], activity["old_value"], activity["new_value"]) == (
        "state",
        backlog,
        done,
    )
    assert activity["actor"]["id"] == world.plane.bot_user_id
    assert list(body["data"]) == FIXTURE_DATA_KEYS
    assert body["data"]["state"] == {
        "id": done,
        "name": "Done",
        "color": "#46A758",
        "group": "completed",
    }
    assert body["data"]["completed_at"] is not None
    assert world.plane.flush_webhooks()
    assert world.plane.webhook_log == [(202, delivery.header("X-Plane-Delivery"), delivery.body)]


def test_a_change_in_the_web_app_reports_state_id_and_a_human_actor(world, receiver):
    world.plane.register_webhook(receiver.url, SECRET)
    todo = world.plane.state_id(world.project_id, "Todo")

    world.plane.set_state(world.items[1], "todo")

    body = assert_signed(next_delivery(receiver))
    assert body["activity"]["field"] == "state_id"
    assert body["activity"]["new_value"] == todo
    assert body["activity"]["actor"]["id"] != world.plane.bot_user_id
    assert body["data"]["state"]["id"] == todo
    assert world.plane.calls() == []  # a person in the web app makes no API request


def test_a_patch_of_two_fields_sends_one_delivery_per_field(world, receiver):
    world.plane.register_webhook(receiver.url, SECRET)
    done = world.plane.state_id(world.project_id, "Done")

    world.http.patch(
        world.project_url("issues", world.items[0]), json={"state": done, "priority": "high"}
    )

    first, second = next_delivery(receiver), next_delivery(receiver)
    bodies = [assert_signed(first), assert_signed(second)]
    assert [b["activity"]["field"] for b in bodies] == ["state", "priority"]
    assert bodies[1]["activity"]["old_value"] == "none"
    assert all(b["data"]["priority"] == "high" for b in bodies)  # data is the item as it is now
    assert first.header("X-Plane-Delivery") != second.header("X-Plane-Delivery")
    assert world.plane.flush_webhooks()
    assert receiver.received.empty()


def test_a_comment_through_the_api_sends_an_issue_comment_delivery(world, receiver):
    world.plane.register_webhook(receiver.url, SECRET)
    url = world.project_url("work-items", world.items[2], "comments")

    world.http.post(url, json={"comment_html": "<p>hi</p>"})

    delivery = next_delivery(receiver)
    body = assert_signed(delivery)
    assert delivery.header("X-Plane-Event") == "issue_comment"
    assert (body["event"], body["action"]) == ("issue_comment", "created")
    assert body["data"]["issue"] == world.items[2]
    assert body["activity"]["field"] is None


def test_a_delivery_that_cannot_connect_is_logged_and_the_api_still_answers(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    world.plane.register_webhook(dead, SECRET)

    response = world.http.patch(
        world.project_url("work-items", world.items[0]), json={"priority": "low"}
    )

    assert response.status_code == 200
    assert world.plane.flush_webhooks()
    [(status, delivery, body)] = world.plane.webhook_log
    assert status is None and json.loads(body)["activity"]["field"] == "priority"


def test_send_webhook_answers_the_status_and_a_fresh_delivery_id_each_time(world, receiver):
    data = world.plane.work_item_webhook_data(world.items[0])

    first = world.plane.send_webhook("issue", "updated", data, url=receiver.url, secret="s3cret")
    second = world.plane.send_webhook("issue", "updated", data, url=receiver.url, secret="s3cret")

    assert (first[0], second[0]) == (202, 202)
    assert first[1] != second[1]
    received = next_delivery(receiver)
    assert received.header("X-Plane-Delivery") == first[1]
    assert received.body == first[2]
    body = assert_signed(received, secret="s3cret")
    assert list(body["data"]) == FIXTURE_DATA_KEYS
    assert body["activity"]["actor"]["id"] == world.plane.bot_user_id


def test_send_webhook_needs_a_url_when_none_is_registered(world):
    with pytest.raises(ValueError):
        world.plane.send_webhook("issue", "updated", {})


# ------------------------------------------------------------------------------ demo and CLI


def test_seed_demo_uses_the_documented_ids():
    plane = PlaneStandIn()

    demo = seed_demo(plane)

    assert demo == {
        "workspace": "demo",
        "project_id": DEMO_PROJECT_ID,
        "work_items": list(DEMO_WORK_ITEM_IDS),
    }
    assert DEMO_PROJECT_ID == "0de00000-0000-4000-8000-000000000001"
    assert DEMO_WORK_ITEM_IDS[0] == "0de00000-0000-4000-8000-0000000000a1"
    assert [s["name"] for s in plane.states(DEMO_PROJECT_ID)] == [
        name for name, _ in DEFAULT_STATES + PIPELINE_STATES
    ]
    todo = plane.state_id(DEMO_PROJECT_ID, "Todo")
    items = [plane.work_item(i) for i in demo["work_items"]]
    assert [(i["name"], i["state"], i["sequence_id"]) for i in items] == [
        (f"Demo item {n}", todo, n) for n in range(1, 6)
    ]


def test_the_cli_serves_the_demo_and_stops_on_sigint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "plane_standin", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/workspaces/demo/work-items/DEMO-1/"
        http = session(key="plane_api_standin")
        deadline = time.monotonic() + 10
        while True:
            try:
                response = http.get(url, timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the stand-in never answered"
                time.sleep(0.05)
        assert response.status_code == 200
        assert response.json()["id"] == DEMO_WORK_ITEM_IDS[0]

        process.send_signal(signal.SIGINT)
        stdout, _stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}" in stdout
    assert DEMO_PROJECT_ID in stdout and DEMO_WORK_ITEM_IDS[4] in stdout
