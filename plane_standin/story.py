"""The demo's story, played against a running demo (`python3 dev.py up`, then `dev.py demo`).

Each step acts as the people and programs around Stageboard would (a person on the board,
the pipeline through the API, production's health check, a stale CI job), waits until
Stageboard has answered, and says what happened and where to look:

1. a new card moved to To Analyse on the board starts a task;
2. a pull request on GitHub names the card: opened, it moves the task to code review and
   its link appears on the card; merged, it moves the task to a deploy that waits for
   approval (signed GitHub deliveries, as GitHub sends them);
3. approved by you: the story stops until you press Approve on the dashboard (with
   `--unattended` it approves by itself), deployed (GitHub's deployment statuses), done:
   the monitor watches the demo's production (the stand-in's /demo/health);
4. production breaks: DEGRADED, the rollback hook runs, the card shows Blocked;
5. a stale caller tries to show Deploying on the finished task: the guard converges it;
6. a second card is started, then deleted on the board (Plane sends no webhook for that):
   a full reconciler sweep finds it gone and cancels its task.

Standard library only: it talks HTTP to both servers and runs `manage.py` for the two
things no HTTP API offers (the stale caller, a sweep on demand), with the environment it
was given. Exit status 0 when every step saw what it waited for.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The demo's GitHub webhook secret (dev.py's STANDIN_GITHUB_SECRET): a local demo only.
GITHUB_SECRET = "gh_demo_0000000000000000000000000000"
GITHUB_REPO = "acme/demo"
MERGE_SHA = "3f9c2e1ab4d5e6f708192a3b4c5d6e7f80912a3b"


class StoryFailed(Exception):
    pass


class Story:
    def __init__(
        self, stageboard: str, plane: str, token: str, *, interactive: bool, timeout: float
    ):
        self.stageboard = stageboard.rstrip("/")
        self.plane = plane.rstrip("/")
        self.token = token
        self.interactive = interactive
        self.timeout = timeout
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.step_no = 0

    # ------------------------------------------------------------------------------ plumbing

    def http(self, method: str, url: str, data: dict | None = None, *, form: bool = False):
        headers = {}
        body = None
        if url.startswith(self.stageboard):
            headers["Authorization"] = f"Token {self.token}"
        if data is not None:
            if form:
                body = urllib.parse.urlencode(data).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                body = json.dumps(data).encode()
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=15) as answer:
                raw = answer.read()
                status = answer.status
        except urllib.error.HTTPError as error:
            raw, status = error.read(), error.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def api(self, method: str, path: str, data: dict | None = None) -> dict:
        status, body = self.http(method, f"{self.stageboard}/api/{path}", data)
        if status >= 400:
            raise StoryFailed(f"{method} /api/{path} answered {status}: {body}")
        return body

    def task(self, work_item: str) -> dict | None:
        status, body = self.http("GET", f"{self.stageboard}/api/tasks/{work_item}/")
        return body if status == 200 else None

    def board(self) -> dict:
        return self.http("GET", f"{self.plane}/board.json")[1]

    def card(self, work_item: str) -> dict | None:
        return next((i for i in self.board()["work_items"] if i["id"] == work_item), None)

    def shown(self, work_item: str) -> str | None:
        card = self.card(work_item)
        return card and card["state_name"]

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode:
            raise StoryFailed(f"manage.py {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def github(self, event: str, payload: dict) -> None:
        """Deliver `payload` as GitHub would: signed, with a delivery id of its own."""
        raw = json.dumps(payload).encode()
        signature = hmac.new(GITHUB_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"{self.stageboard}/webhooks/github/",
            data=raw,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "GitHub-Hookshot/demo",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={signature}",
            },
        )
        with self.opener.open(request, timeout=10) as answer:
            if answer.status >= 300:
                raise StoryFailed(f"the GitHub webhook answered {answer.status}")

    def pull_request(self, action: str, key: str, title: str, *, merged=False) -> dict:
        """A GitHub `pull_request` delivery of the demo's PR #12, with only what GitHub's own
        payload has and Stageboard reads."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "action": action,
            "number": 12,
            "pull_request": {
                "number": 12,
                "html_url": f"https://github.com/{GITHUB_REPO}/pull/12",
                "title": f"{key}: {title}",
                "body": "",
                "state": "closed" if merged else "open",
                "draft": False,
                "merged": merged,
                "merged_at": now if merged else None,
                "merge_commit_sha": MERGE_SHA if merged else None,
                "created_at": now,
                "updated_at": now,
                "head": {"ref": f"{key.lower()}-dark-mode"},
                "base": {"ref": "main"},
            },
            "repository": {"full_name": GITHUB_REPO, "default_branch": "main"},
            "sender": {"login": "octo-dev"},
        }

    def deployment_status(self, state: str) -> dict:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "action": "created",
            "deployment_status": {
                "state": state,
                "environment": "production",
                "target_url": f"https://github.com/{GITHUB_REPO}/actions/runs/7",
                "created_at": now,
            },
            "deployment": {
                "sha": MERGE_SHA,
                "ref": "main",
                "environment": "production",
                "created_at": now,
            },
            "repository": {"full_name": GITHUB_REPO, "default_branch": "main"},
            "sender": {"login": "octo-deployer"},
        }

    def wait(self, what: str, check, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.5)
        raise StoryFailed(f"timed out waiting for {what}")

    def say(self, title: str, *lines: str) -> None:
        self.step_no += 1
        print(f"\n{self.step_no}. {title}", flush=True)
        for line in lines:
            print(f"   {line}", flush=True)

    # --------------------------------------------------------------------------------- story

    def play(self) -> dict:
        board_url = f"{self.plane}/board/"
        admin = f"{self.stageboard}/admin/"
        status, _ = self.http("GET", f"{self.stageboard}/healthz")
        if status != 200:
            raise StoryFailed(f"Stageboard at {self.stageboard} is not healthy ({status})")

        name = f"Dark mode ({time.strftime('%H:%M:%S')})"
        self.http("POST", f"{self.plane}/board/create", {"name": name, "state": "Todo"}, form=True)
        item = next(i for i in reversed(self.board()["work_items"]) if i["name"] == name)
        wid = item["id"]
        self.http(
            "POST", f"{self.plane}/board/move", {"item": wid, "state": "To Analyse"}, form=True
        )
        self.wait("the task to start", lambda: self.task(wid))
        self.wait("the card to show Analysis", lambda: self.shown(wid) == "Analysis")
        self.say(
            f"A person moved the new card {item['key']} “{name}” to To Analyse on the board.",
            "Plane's webhook (a person's move, field state_id) started its task in analysis,",
            "and Stageboard moved the card on to Analysis.",
            f"Look: {board_url}  and  {admin}pipeline/task/",
        )

        key = item["key"]
        self.manage("repo", "set", "demo", "--git", f"github:{GITHUB_REPO}")
        self.github("pull_request", self.pull_request("opened", key, "Dark mode"))
        self.wait("the card to show Code Review", lambda: self.shown(wid) == "Code Review")
        pr_url = f"https://github.com/{GITHUB_REPO}/pull/12"
        self.wait(
            "the pull request's link on the card",
            lambda: any(link["url"] == pr_url for link in (self.card(wid) or {}).get("links", [])),
        )
        self.say(
            f"A developer opened pull request #12 “{key}: Dark mode” on GitHub.",
            "GitHub's signed webhook moved the task through development to code review (the",
            "card shows Code Review), and the PR appeared as a link on the card.",
            f"Look: {board_url}  and  {admin}git_hosts/gitevent/",
        )
        self.github("pull_request", self.pull_request("closed", key, "Dark mode", merged=True))
        self.wait("the card to show Awaiting Deploy", lambda: self.shown(wid) == "Awaiting Deploy")
        self.say(
            "The pull request was merged into main: the task moved to deploy, which waits",
            "for an operator's approval (the card shows Awaiting Deploy).",
            f"Look: the dashboard {admin} (Deploys awaiting approval)",
        )
        if self.interactive:
            # The reader is the operator: the story stops here until they press Approve.
            print(
                "   The story waits for you: press Approve on the dashboard (Ctrl-C to stop).",
                flush=True,
            )
            while not (self.task(wid) or {}).get("deploy_approved_at"):
                time.sleep(1)
            print("   Approved: the story goes on.", flush=True)
        else:  # --unattended: the story is its own operator
            self.api("POST", f"tasks/{wid}/deploy/approve/", {"reason": "demo story"})
        self.github("deployment_status", self.deployment_status("in_progress"))
        self.wait("the deploy to start", lambda: self.shown(wid) == "Deploying")
        self.github("deployment_status", self.deployment_status("success"))
        self.wait(
            "the window to open",
            lambda: ((self.task(wid) or {}).get("window") or {}).get("state") == "active",
        )
        self.wait(
            "the card to show Monitoring", lambda: self.shown(wid) == "Monitoring after Deploy"
        )
        self.say(
            "Approved, deployed (GitHub's deployment statuses in_progress, then success), done.",
            f"The post-deploy monitor watches the demo's production ({self.plane}/demo/health)",
            "for two minutes: the card shows Monitoring after Deploy.",
            f"Look: {admin}monitoring/monitorwindow/",
        )

        self.http("POST", f"{self.plane}/demo/health", {"fail": "1"}, form=True)
        window = self.wait(
            "the DEGRADED verdict",
            lambda: (
                ((self.task(wid) or {}).get("window") or {}).get("verdict") == "DEGRADED"
                and self.task(wid)["window"]
            ),
        )
        self.wait("the rollback", lambda: self.board()["demo_rollbacks"] > 0)
        self.wait("the card to show Blocked", lambda: self.shown(wid) == "Blocked")
        self.say(
            "Production broke: its health check answers 503 and its p99 latency jumped;",
            f"the verdict is DEGRADED ({window['verdict_reason']}).",
            "The rollback hook ran (production is healthy again) and the card shows Blocked.",
            f"Look: {admin}monitoring/monitorwindow/ (the window's page charts the check),",
            f"      {admin}pipeline/deployment/  and the dashboard's DEGRADED deploys",
        )

        out = self.manage("set_status", wid, "deploying", "--caller", "stale-ci")
        verdict = (
            "CONVERGE_DONE" if "CONVERGE_DONE" in out else "SUPPRESS" if "SUPPRESS" in out else ""
        )
        if not verdict:
            raise StoryFailed(f"the guard did not act on the stale caller: {out}")
        time.sleep(1)
        if self.shown(wid) != "Blocked":
            raise StoryFailed(f"the stale caller moved the card to {self.shown(wid)}")
        self.say(
            "A stale CI job tried to show Deploying on the finished task.",
            f"The deploy status guard said {verdict}: the card still shows Blocked.",
            f"Look: {admin}plane_integration/guardverdict/",
        )

        gone_name = f"Dropped idea ({time.strftime('%H:%M:%S')})"
        self.http(
            "POST",
            f"{self.plane}/board/create",
            {"name": gone_name, "state": "To Analyse"},
            form=True,
        )
        gone = next(i for i in reversed(self.board()["work_items"]) if i["name"] == gone_name)
        self.wait("the second task to start", lambda: self.task(gone["id"]))
        # Delete it only once the board shows its task's stage: a sync that meets the deleted
        # card (404) would cancel the task itself, and this step shows the sweep doing it.
        self.wait("the second card to show Analysis", lambda: self.shown(gone["id"]) == "Analysis")
        self.http("POST", f"{self.plane}/board/delete", {"item": gone["id"]}, form=True)
        record = json.loads(self.manage("reconcile", "--full", "--json").strip().splitlines()[-1])
        repairs = [r for r in record["repairs"] if r["work_item_id"] == gone["id"]]
        if not repairs or repairs[0]["kind"] != "gone":
            raise StoryFailed(f"the sweep did not find the deleted card: {record}")
        cancelled = self.wait(
            "the deleted card's task to be cancelled",
            lambda: (self.task(gone["id"]) or {}).get("stage") == "cancelled",
        )
        self.say(
            f"A person created {gone['key']} in To Analyse (its task started), then deleted it.",
            "Plane sends no webhook for a deletion; the full sweep (manage.py reconcile --full)",
            f"found it gone and cancelled its task ({repairs[0]['reason']}).",
            f"Look: {admin}plane_integration/reconcilerun/",
        )
        print("\nThe story is over: everything it waited for happened.", flush=True)
        return {"task": wid, "gone": gone["id"], "verdict": verdict, "cancelled": cancelled}


def demo_token() -> str:
    """The demo account's token (created with the account when missing)."""
    out = subprocess.run(
        [sys.executable, "manage.py", "ensure_demo_admin"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return next(line for line in out.splitlines() if line.startswith("TOKEN=")).split("=", 1)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plane_standin.story", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--stageboard", default="http://127.0.0.1:8000")
    parser.add_argument("--plane", default="http://127.0.0.1:8001")
    parser.add_argument("--token", help="an API token (default: the demo account's)")
    parser.add_argument("--unattended", action="store_true", help="approve without asking")
    parser.add_argument("--timeout", type=float, default=90, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    story = Story(
        args.stageboard,
        args.plane,
        args.token or demo_token(),
        interactive=not args.unattended and sys.stdin.isatty(),
        timeout=args.timeout,
    )
    try:
        story.play()
    except StoryFailed as failed:
        print(f"\nThe story stopped: {failed}", file=sys.stderr, flush=True)
        return 1
    except (urllib.error.URLError, ConnectionError) as error:
        print(
            f"\nCannot reach the demo ({error}): is `python3 dev.py up` running?", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
