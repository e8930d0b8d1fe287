"""The stand-in's board: a person's moves reach a receiver as Plane's web app sends them."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from plane_standin.server import BOT_USER_ID, HUMAN_USER_ID, PlaneStandIn, seed_demo

SECRET = "plane_wh_test"


@pytest.fixture
def receiver():
    got: list[tuple[dict, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/plane/", got
    server.shutdown()
    server.server_close()


@pytest.fixture
def board(receiver):
    url, got = receiver
    with PlaneStandIn() as plane:
        demo = seed_demo(plane)
        plane.register_webhook(url, SECRET)
        yield plane, demo, got


def test_the_board_page_shows_a_column_per_state_with_the_cards(board):
    plane, demo, _ = board
    page = requests.get(f"{plane.url}/board/", timeout=5).text
    for name in ("Todo", "To Analyse", "Monitoring after Deploy", "Cancelled"):
        assert f'data-state="{name}"' in page
    assert page.count('class="card"') == len(demo["work_items"])
    assert not plane.requests  # a person's page is not an API call


def test_moving_a_card_sends_a_signed_webhook_with_a_human_actor(board):
    plane, demo, got = board
    item = demo["work_items"][0]
    answer = requests.post(
        f"{plane.url}/board/move", {"item": item, "state": "To Analyse"}, timeout=5
    )
    assert answer.status_code == 200 and answer.url.startswith(f"{plane.url}/board/")
    assert plane.flush_webhooks()
    headers, body = got[-1]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Plane-Signature"] == expected
    payload = json.loads(body)
    assert payload["activity"]["field"] == "state_id"
    assert payload["activity"]["actor"]["id"] == HUMAN_USER_ID != BOT_USER_ID
    assert payload["activity"]["new_value"] == plane.state_id(demo["project_id"], "To Analyse")
    assert plane.work_item(item)["state"] == payload["activity"]["new_value"]


def test_creating_a_card_sends_created_and_deleting_sends_nothing(board):
    plane, demo, got = board
    requests.post(
        f"{plane.url}/board/create", {"name": "New idea", "state": "To Analyse"}, timeout=5
    )
    assert plane.flush_webhooks()
    payload = json.loads(got[-1][1])
    assert (payload["action"], payload["data"]["name"]) == ("created", "New idea")
    assert payload["data"]["state"]["name"] == "To Analyse"
    new = payload["data"]["id"]
    requests.post(f"{plane.url}/board/delete", {"item": new}, timeout=5)
    assert plane.flush_webhooks() and len(got) == 1
    data = requests.get(f"{plane.url}/board.json", timeout=5).json()
    assert new not in [i["id"] for i in data["work_items"]]


def test_plane_web_addresses_lead_to_the_card_and_the_health_can_be_broken(board):
    plane, demo, _ = board
    item = demo["work_items"][1]
    web = f"{plane.url}/demo/projects/{demo['project_id']}/issues/{item}"
    answer = requests.get(web, allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"].endswith(f"#item-{item}")
    assert requests.get(f"{plane.url}/demo/health", timeout=5).status_code == 200
    requests.post(f"{plane.url}/demo/health", {"fail": "1"}, timeout=5)
    assert requests.get(f"{plane.url}/demo/health", timeout=5).status_code == 503
    requests.post(f"{plane.url}/demo/rollback", timeout=5)
    assert requests.get(f"{plane.url}/demo/health", timeout=5).json() == {
        "status": "ok",
        "rollbacks": 1,
    }
