"""A q worker killed (SIGKILL) mid-rollback: the rollback is not run a second time.

Real processes on a fresh SQLite file: a `manage.py qcluster` with one worker, the Plane
stand-in and a loopback health endpoint that fails. A deploy finishes, the real monitor
judges it DEGRADED and starts the rollback hook; the hook tells which worker runs it, and
that worker is killed while the hook runs. The broker hands the task to the new worker
after Q_RETRY seconds: it must find the action taken, not roll back again, and no comment
may claim an outcome that never settled.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES, PlaneStandIn
from tests.processes import ROOT, child_env, start, stop, wait_for
from tests.simulation.loopback import HealthEndpoint

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs its own processes on the embedded SQLite default"
)

HOOK = (
    "import os, sys, time; "
    "open(sys.argv[1], 'a').write(f'{os.getppid()} {os.getpid()}\\n'); "
    "time.sleep(60)"
)


def test_a_worker_killed_mid_rollback_does_not_roll_back_twice(tmp_path):
    plane = PlaneStandIn(api_key="plane_api_faults").start()
    health = HealthEndpoint(silence=1.0).start()
    health.modes["shop"] = "failing"
    project = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    item = plane.add_work_item("acme", project, "Shipped", state="Deploying")
    marker = tmp_path / "rollbacks.txt"
    env = child_env(
        tmp_path,
        DJANGO_SECRET_KEY="faults-test-secret-key",
        PLANE_API_URL=plane.url,
        PLANE_API_KEY="plane_api_faults",
        ORCH_POST_DEPLOY_REPOS="shop",
        ORCH_POST_DEPLOY_FAIL_THRESHOLD="1",
        ORCH_POST_DEPLOY_TICK_SECONDS="0.2",
        ORCH_POST_DEPLOY_PROBE_TIMEOUT="0.5",
        Q_WORKERS="1",
        Q_TIMEOUT="5",
        Q_RETRY="6",
        Q_SAVE_LIMIT="100",  # keep successes, so the redone task's result can be read back
    )

    def shell(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip()

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    shell(
        "from monitoring.models import MonitoredRepo; from pipeline.models import Task; "
        "from plane_integration.models import PlaneProject; "
        f"PlaneProject.objects.create(project_id='{project}', workspace_slug='acme', repo='shop');"
        f"MonitoredRepo.objects.create(name='shop', health_url='{health.url}/shop', "
        f"rollback_command=[{sys.executable!r}, '-c', {HOOK!r}, {str(marker)!r}]);"
        f"Task.objects.create(work_item_id='{item}', project_id='{project}', repo='shop', "
        "stage='deploy', deploy_phase='deploying', title='Shipped')"
    )
    cluster = start(env, "qcluster")
    hook_pid = None
    try:
        shell(
            "from pipeline import engine; from pipeline.models import Task; "
            f"engine.finish_deploy(Task.objects.get(work_item_id='{item}'), succeeded=True, "
            "caller='ci')"
        )
        wait_for(lambda: marker.exists() and marker.read_text(), 60, "the rollback to start")
        worker_pid, hook_pid = (int(n) for n in marker.read_text().split())
        os.kill(worker_pid, signal.SIGKILL)  # mid-rollback

        def redelivered() -> bool:
            return (
                shell(
                    "from django_q.models import Task as Q; "
                    "print(Q.objects.filter(func='monitoring.actions.run_action').count())"
                )
                == "1"
            )

        # The new worker got the task again and found the action taken.
        wait_for(redelivered, 60, "the killed worker's task to be redone")
        result = shell(
            "from django_q.models import Task as Q; "
            "print(Q.objects.get(func='monitoring.actions.run_action').result)"
        )
        assert result == "taken"
        time.sleep(2)
        assert len(marker.read_text().splitlines()) == 1  # rolled back once, not twice
        state = shell(
            "from monitoring.models import MonitorWindow as W; w = W.objects.get(); "
            "print(w.verdict, w.action, w.action_state)"
        )
        assert state == "DEGRADED rollback running"  # an operator sees it, as designed
        assert plane.comments(item) == []  # no outcome is told before it settled
    finally:
        stop([cluster])
        if hook_pid:
            with contextlib.suppress(ProcessLookupError):  # the orphaned hook
                os.kill(hook_pid, signal.SIGKILL)
        health.stop()
        plane.stop()
