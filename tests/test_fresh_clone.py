"""The fresh-clone path of docs/operations.md, walked against the Plane stand-in.

Its commands are read from the section itself and run as written (`PROJECT_ID` filled in;
`createsuperuser` without a terminal is left out), against a new SQLite file and a Plane
whose project has only Plane's own statuses. Then Stageboard runs with the webhook set, a
person moves a card to To Analyse, and the CI token drives the task but cannot approve.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.db import connection

from plane_standin.server import PlaneStandIn
from tests.processes import ROOT, child_env, free_port, service, wait_for

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs its own processes on the embedded SQLite default"
)

OPERATIONS = Path(ROOT) / "docs" / "operations.md"
SECRET = "plane_wh_" + "5" * 32


def documented_commands() -> list[list[str]]:
    text = OPERATIONS.read_text()
    section = text[text.index("## From a fresh clone") :]
    section = section[: section.index("\n## ", 1)]
    return [
        shlex.split(line.strip().removeprefix(".venv/bin/python "))
        for line in section.splitlines()
        if line.strip().startswith(".venv/bin/python manage.py")
    ]


def test_the_fresh_clone_path_reaches_a_real_plane(tmp_path):
    commands = documented_commands()
    assert [c[1] for c in commands] == [
        "migrate", "setup_schedules", "plane_project", "plane_states", "pipeline_token",
        "createsuperuser",
    ]  # fmt: skip
    plane = PlaneStandIn(api_key="plane_api_real").start()
    try:
        project = plane.add_project("acme", identifier="SHOP")  # Plane's own statuses only
        item = plane.add_work_item("acme", project, "Pay by card", state="Todo")
        port = free_port()
        env = child_env(
            tmp_path,
            DJANGO_SECRET_KEY="fresh-clone-test-secret-key",
            PLANE_API_URL=plane.url,
            PLANE_API_KEY="plane_api_real",
            PLANE_WORKSPACE_SLUG="acme",
            PLANE_WEB_URL=plane.url,
            PLANE_BOT_USER_ID=plane.bot_user_id,
            PLANE_WEBHOOK_SECRET=SECRET,
        )
        outputs = {}
        for command in commands:
            if command[1] == "createsuperuser":
                continue  # asks at a terminal
            command = [project if part == "PROJECT_ID" else part for part in command]
            done = subprocess.run(
                [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
            outputs[command[1]] = done.stdout
        names = {state["name"] for state in plane.states(project)}
        assert {"To Analyse", "Analysis", "Awaiting Deploy", "Blocked"} <= names
        token = outputs["pipeline_token"].strip()
        assert re.fullmatch(r"[0-9a-f]{40}", token), outputs["pipeline_token"]

        plane.register_webhook(f"http://127.0.0.1:{port}/webhooks/plane/", SECRET)
        with service(env, port) as base:
            plane.set_state(item, "To Analyse")  # a person moves the card
            api = requests.Session()
            api.headers["Authorization"] = f"Token {token}"

            def started() -> bool:
                return api.get(f"{base}/api/tasks/{item}/", timeout=5).status_code == 200

            wait_for(started, 30, "the task to start")
            wait_for(
                lambda: (
                    plane.work_item(item)["state"]
                    == next(s["id"] for s in plane.states(project) if s["name"] == "Analysis")
                ),
                30,
                "the card to show Analysis",
            )
            for stage in ("development", "code_review", "deploy"):
                moved = api.post(f"{base}/api/tasks/{item}/advance/", json={"stage": stage})
                assert moved.status_code == 200, moved.text
            api.post(f"{base}/api/tasks/{item}/deploy/request-approval/", json={})
            refused = api.post(f"{base}/api/tasks/{item}/deploy/approve/", json={})
            assert refused.status_code == 403  # nobody approves their own deploy
    finally:
        plane.stop()
