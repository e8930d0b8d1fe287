"""A q worker killed (SIGKILL) mid-sync, mid-tick and mid-rollback: its work is redone and
nothing acts twice (no second state change, rollback or comment).

Real processes on a fresh SQLite file: a `manage.py qcluster` with one worker, the Plane
stand-in and a loopback health endpoint. A deploy finishes; each test catches the worker
in the act (a PATCH that Plane applies but does not answer, a health probe that is not
answered, a rollback hook that sleeps), kills it, and lets the broker hand the task to the
new worker after Q_RETRY seconds. Q_TIMEOUT is short, and the claims a killed worker
leaves end with its q task's timeout, so they are free by then.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES, PlaneStandIn
from tests.processes import ROOT, child_connected_to, child_env, start, stop, wait_for
from tests.simulation.loopback import HealthEndpoint, WebhookRelay

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs its own processes on the embedded SQLite default"
)

API_KEY = "plane_api_faults"
SECRET_KEY = "faults-test-secret-key"
DATABASE = "stageboard.sqlite3"  # in STAGEBOARD_VAR_DIR
# A rollback hook: appends its worker's pid and its own to a file, then sleeps.
HOOK = (
    "import os, sys, time; "
    "open(sys.argv[1], 'a').write(f'{os.getppid()} {os.getpid()}\\n'); "
    "time.sleep(float(sys.argv[2]))"
)


@dataclass
class Stack:
    plane: PlaneStandIn
    health: HealthEndpoint
    project: str
    item: str
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)
    leftovers: list[int] = field(default_factory=list)  # pids outside the cluster's group

    def shell(self, code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT, env=self.env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip()

    def watch(self, marker: Path, *, hook_sleeps: float) -> None:
        """Monitor the repo, with HOOK as its rollback command."""
        command = [sys.executable, "-c", HOOK, str(marker), str(hook_sleeps)]
        self.shell(
            "from monitoring.models import MonitoredRepo; from pipeline import switchboard; "
            "switchboard.update('faults-test', post_deploy_repos='shop'); "
            f"MonitoredRepo.objects.create(name='shop', health_url='{self.health.url}/shop', "
            f"rollback_command={command!r})"
        )

    def start_cluster(self) -> subprocess.Popen:
        cluster = start(self.env, "qcluster")
        self.processes.append(cluster)
        return cluster

    def finish_deploy(self) -> None:
        self.shell(
            "from pipeline import engine; from pipeline.models import Task; "
            f"engine.finish_deploy(Task.objects.get(work_item_id='{self.item}'), "
            "succeeded=True, caller='ci')"
        )

    def all_work_done(self) -> bool:
        """Nothing queued, and nothing taken that its worker has not finished."""
        return self.shell("from django_q.models import OrmQ; print(OrmQ.objects.count())") == "0"

    def shown(self) -> str:
        state = self.plane.work_item(self.item)["state"]
        return next(s["name"] for s in self.plane.states(self.project) if s["id"] == state)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A migrated database file, made once: each test starts from a copy."""
    var = tmp_path_factory.mktemp("migrated")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=child_env(var, DJANGO_SECRET_KEY=SECRET_KEY), check=True,
        capture_output=True,
    )  # fmt: skip
    return var / DATABASE


@pytest.fixture
def stack(tmp_path, migrated) -> Iterator[Stack]:
    plane = PlaneStandIn(api_key=API_KEY).start()
    health = HealthEndpoint(silence=1.0).start()
    project = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    item = plane.add_work_item("acme", project, "Shipped", state="Deploying")
    env = child_env(
        tmp_path,
        DJANGO_SECRET_KEY=SECRET_KEY,
        PLANE_API_URL=plane.url,
        PLANE_API_KEY=API_KEY,
        ORCH_POST_DEPLOY_FAIL_THRESHOLD="1",
        ORCH_POST_DEPLOY_TICK_SECONDS="0.2",
        ORCH_POST_DEPLOY_PROBE_TIMEOUT="3",
        Q_WORKERS="1",
        Q_TIMEOUT="5",
        # The killed task's claims end Q_TIMEOUT after it started, which can be a second
        # after the broker handed it out (a task taken with it ran first); the redelivery,
        # Q_RETRY after the handing out, must come later.
        Q_RETRY="7",
        Q_SAVE_LIMIT="100",  # keep successes, so a redone task's result can be read back
    )
    stack = Stack(plane, health, project, item, env)
    shutil.copy(migrated, tmp_path / DATABASE)
    try:
        stack.shell(
            "from pipeline.models import Task; from plane_integration.models import PlaneProject; "
            f"PlaneProject.objects.create(project_id='{project}', workspace_slug='acme', "
            "repo='shop');"
            f"Task.objects.create(work_item_id='{item}', project_id='{project}', repo='shop', "
            "stage='deploy', deploy_phase='deploying', title='Shipped')"
        )
        yield stack
    finally:
        stop(stack.processes)
        for pid in stack.leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        health.stop()
        plane.stop()


def kill_the_worker_connected_to(cluster: subprocess.Popen, port: int) -> None:
    found: list[int] = []

    def caught() -> bool:
        pid = child_connected_to(cluster, port)
        found.extend([pid] if pid else [])
        return bool(found)

    wait_for(caught, 60, f"a worker to hang on port {port}")
    os.kill(found[0], signal.SIGKILL)


def test_a_worker_killed_mid_sync_has_the_send_redone_and_the_state_changed_once(stack):
    # Not monitored: the finished deploy shows Done at once and is told in one comment.
    relay = WebhookRelay().start()
    stack.plane.register_webhook(f"{relay.url}/", "faults-secret")
    stack.plane.hang_next("PATCH", stack.item, seconds=60)
    try:
        cluster = stack.start_cluster()
        stack.finish_deploy()
        wait_for(lambda: stack.plane.calls("PATCH", stack.item), 60, "the board sync's PATCH")
        kill_the_worker_connected_to(cluster, urlsplit(stack.plane.url).port)
        row = "from plane_integration.models import BoardStatus as B; b = B.objects.get(); "
        # Killed mid-send: the row is still claimed and the PATCH's version not synced.
        killed = stack.shell(row + "print(b.claimed_until is not None, b.synced_version)")
        assert killed == "True 0"

        wait_for(stack.all_work_done, 60, "the killed worker's sync to be redone")
        state = stack.shell(row + "print(b.claimed_until, b.synced_version == b.desired_version)")
        assert state == "None True"
        assert stack.shown() == "Done"
        stack.plane.flush_webhooks()
        changes = [
            json.loads(body)["activity"]
            for _, body in relay.take()
            if json.loads(body)["activity"]["field"] == "state"
        ]
        assert [c["new_value"] for c in changes] == [stack.plane.state_id(stack.project, "Done")]
        assert len(stack.plane.comments(stack.item)) == 1  # "Deployed", once
    finally:
        relay.stop()


def test_a_worker_killed_mid_tick_has_the_window_ticked_again_and_judged_once(stack, tmp_path):
    marker = tmp_path / "rollbacks.txt"
    stack.health.modes["shop"] = "silent"
    stack.health.silence = 60
    stack.watch(marker, hook_sleeps=0)
    cluster = stack.start_cluster()
    stack.finish_deploy()
    kill_the_worker_connected_to(cluster, urlsplit(stack.health.url).port)
    stack.health.modes["shop"] = "failing"  # what the next tick finds
    window = "from monitoring.models import MonitorWindow as W; w = W.objects.get(); "
    killed = stack.shell(window + "print(w.state, w.claimed_until is not None, w.probes_total)")
    assert killed == "active True 0"  # killed mid-probe: claimed, nothing recorded

    def told() -> bool:
        return bool(stack.plane.comments(stack.item)) and stack.all_work_done()

    wait_for(told, 60, "the window to be ticked again, judged and told")
    judged = stack.shell(
        window + "print(w.verdict, w.action, w.action_state, w.probes_total, w.probes.count())"
    )
    assert judged == "DEGRADED rollback done 1 1"
    assert len(marker.read_text().splitlines()) == 1  # rolled back once
    assert len(stack.plane.comments(stack.item)) == 1  # "Deploy rolled back", once
    assert stack.shown() == "Blocked"


def test_a_worker_killed_mid_rollback_does_not_roll_back_twice(stack, tmp_path):
    marker = tmp_path / "rollbacks.txt"
    stack.health.modes["shop"] = "failing"
    stack.watch(marker, hook_sleeps=60)
    stack.start_cluster()
    stack.finish_deploy()
    wait_for(lambda: marker.exists() and marker.read_text(), 60, "the rollback to start")
    worker_pid, hook_pid = (int(n) for n in marker.read_text().split())
    stack.leftovers.append(hook_pid)  # orphaned by the kill, still sleeping
    os.kill(worker_pid, signal.SIGKILL)  # mid-rollback

    def redelivered() -> bool:
        return (
            stack.shell(
                "from django_q.models import Task as Q; "
                "print(Q.objects.filter(func='monitoring.actions.run_action').count())"
            )
            == "1"
        )

    # The new worker got the task again and found the action taken.
    wait_for(redelivered, 60, "the killed worker's task to be redone")
    result = stack.shell(
        "from django_q.models import Task as Q; "
        "print(Q.objects.get(func='monitoring.actions.run_action').result)"
    )
    assert result == "taken"
    wait_for(stack.all_work_done, 60, "the queue to empty")
    assert len(marker.read_text().splitlines()) == 1  # rolled back once, not twice
    state = stack.shell(
        "from monitoring.models import MonitorWindow as W; w = W.objects.get(); "
        "print(w.verdict, w.action, w.action_state)"
    )
    assert state == "DEGRADED rollback running"  # an operator sees it, as designed
    assert stack.plane.comments(stack.item) == []  # no outcome is told before it settled
