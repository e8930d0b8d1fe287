"""The demo's story (`python3 dev.py demo`) plays unattended against a real demo setup.

Real processes on a fresh SQLite file, set up as `dev.py up` sets up its demo: the web
server, a q cluster, and the Plane stand-in with its demo project, board and fake
production. The story runs as its own process, as `dev.py demo` runs it.
"""

import json
import subprocess
import sys
import urllib.request

import pytest
import requests
from django.db import connection

import dev
from plane_standin.server import PlaneStandIn, seed_demo
from tests.processes import ROOT, child_env, free_port, service

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs its own processes on the embedded SQLite default"
)


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    plane = PlaneStandIn(api_key=dev.STANDIN_KEY, bot_user_id=dev.STANDIN_BOT_USER).start()
    seed_demo(plane)
    plane.register_webhook(f"http://127.0.0.1:{port}/webhooks/plane/", dev.STANDIN_WEBHOOK_SECRET)
    env = child_env(
        tmp_path,
        DJANGO_SECRET_KEY="demo-story-test-secret-key",
        DJANGO_DEBUG="true",
        Q_WORKERS="2",
    )
    env.update(dev.demo_settings())
    # The stand-in of this test, and probes quicker than the demo's: the story runs in seconds.
    env.update(PLANE_API_URL=plane.url, PLANE_WEB_URL=plane.url, ORCH_POST_DEPLOY_TICK_SECONDS="1")

    def manage(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip

    manage("migrate", "--noinput")
    manage("plane_project", "add", dev.DEMO_PROJECT, "--repo", "demo", "--workspace", "demo")
    manage("plane_states", dev.DEMO_PROJECT)  # as dev.py up does
    manage(
        "repo", "set", "demo", "--health-url", f"{plane.url}/demo/health",
        "--rollback-url", f"{plane.url}/demo/rollback",
    )  # fmt: skip
    manage(*dev.DEMO_CHECK, f"{plane.url}/demo/metrics", *dev.DEMO_CHECK_LIMIT)
    token = manage("ensure_demo_admin").split("TOKEN=")[1].split()[0]
    with service(env, port) as base:
        yield {"base": base, "plane": plane, "token": token, "env": env}
    plane.stop()


def test_the_demo_story_plays_to_its_end(demo):
    plane = demo["plane"]
    story = subprocess.run(
        [
            sys.executable, "-m", "plane_standin.story", "--unattended", "--timeout", "60",
            "--stageboard", demo["base"], "--plane", plane.url, "--token", demo["token"],
        ],
        cwd=ROOT, env=demo["env"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if story.returncode:
        deliveries = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from plane_integration.models import WebhookDelivery as W; "
             "print([(w.event, w.action, w.state, w.reason) for w in W.objects.all()])"],
            cwd=ROOT, env=demo["env"], capture_output=True, text=True,
        ).stdout  # fmt: skip
        sent = [status for status, _, _ in plane.webhook_log]
        pytest.fail(f"{story.stdout}{story.stderr}\nsent: {sent}\nstored: {deliveries}")
    out = story.stdout
    for told in (
        "started its task",
        "Awaiting Deploy",
        "DEGRADED",
        "CONVERGE_DONE",
        "found it gone",
    ):
        assert told in out, told

    # The end state, read from both sides.
    headers = {"Authorization": f"Token {demo['token']}"}
    tasks = requests.get(f"{demo['base']}/api/tasks/", headers=headers, timeout=5).json()["results"]
    by_stage = sorted(t["stage"] for t in tasks)
    assert by_stage == ["cancelled", "done"]
    done = next(t for t in tasks if t["stage"] == "done")
    detail = requests.get(
        f"{demo['base']}/api/tasks/{done['work_item_id']}/", headers=headers, timeout=5
    ).json()
    assert detail["window"]["verdict"] == "DEGRADED" and detail["window"]["action"] == "rollback"
    assert detail["window"]["verdict_reason"].startswith("p99: 0.9 > 0.5 in 2 of")
    board = json.loads(urllib.request.urlopen(f"{plane.url}/board.json").read())
    card = next(i for i in board["work_items"] if i["id"] == done["work_item_id"])
    assert card["state_name"] == "Blocked"
    assert board["demo_rollbacks"] == 1 and board["demo_health"] == "ok"
    assert all(
        i["name"].startswith("Demo item") or i["id"] == done["work_item_id"]
        for i in board["work_items"]
    )  # fmt: skip  (the deleted card is gone)
