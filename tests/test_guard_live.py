"""The switchboard reaches a running q cluster on its next call, without a restart.

Real processes on a fresh SQLite file: the web server (its admin), a q cluster, and the
Plane stand-in. A stale caller's deploy status goes through the cluster three times while
an operator flips the kill-switch, then the repo list, in the admin.
"""

import re
import subprocess
import sys

import pytest
import requests
from django.db import connection

from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES, PlaneStandIn
from tests.processes import ROOT, child_env, free_port, wait_for
from tests.processes import service as running

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs its own processes on the embedded SQLite default"
)


@pytest.fixture
def service(tmp_path):
    plane = PlaneStandIn(api_key="plane_api_live").start()
    project = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    item = plane.add_work_item("acme", project, "Shipped", state="Done")
    env = child_env(
        tmp_path,
        DJANGO_SECRET_KEY="live-test-secret-key",
        PLANE_API_URL=plane.url,
        PLANE_API_KEY="plane_api_live",
        ORCH_SELF_HOSTING_REPO="stageboard",
        Q_WORKERS="1",
    )

    def shell(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return done.stdout.strip()

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    shell(
        "from django.contrib.auth.models import User; from pipeline.models import Task; "
        "from plane_integration.models import PlaneProject; "
        "User.objects.create_superuser('ops', password='ops-password'); "
        f"PlaneProject.objects.create(project_id='{project}', workspace_slug='acme', "
        "repo='stageboard'); "
        f"Task.objects.create(work_item_id='{item}', project_id='{project}', repo='stageboard', "
        "stage='done', deploy_phase='succeeded')"
    )
    with running(env, free_port()) as base:
        yield {"base": base, "shell": shell, "plane": plane, "project": project, "item": item}
    plane.stop()


def test_flipping_the_switchboard_in_the_admin_reaches_the_running_cluster(service):
    shell, plane, item = service["shell"], service["plane"], service["item"]

    def stale_call(setter: str) -> None:
        """A stale caller's status, sent through the running q cluster."""
        shell(
            "from django_q.tasks import async_task; "
            f"async_task('plane_integration.setters.{setter}', '{item}', caller='stale-ci')"
        )

    def verdicts() -> list[str]:
        out = shell(
            "from plane_integration.models import GuardVerdict as G; "
            "print(','.join(G.objects.order_by('id').values_list('verdict', flat=True)))"
        )
        return out.split(",") if out else []

    def shown() -> str:
        state = plane.work_item(item)["state"]
        return next(s["name"] for s in plane.states(service["project"]) if s["id"] == state)

    # The guard is on (seeded from the environment): the board holds Done.
    stale_call("set_issue_awaiting_deploy")
    wait_for(lambda: verdicts() == ["CONVERGE_DONE"], 30, "the first verdict")
    done = plane.state_id(service["project"], "Done")
    # No status change: at most Done again, which this board had never been seen showing.
    assert shown() == "Done"
    assert all(f'"{done}"' in call.body.decode() for call in plane.calls("PATCH"))

    # An operator turns the kill-switch off in the admin; the cluster is not restarted.
    admin = requests.Session()
    login = f"{service['base']}/admin/login/"
    admin.get(login, timeout=5)
    admin.post(
        login,
        {"username": "ops", "password": "ops-password", "next": "/admin/",
         "csrfmiddlewaretoken": admin.cookies["csrftoken"]},
        headers={"Referer": login}, timeout=5,
    )  # fmt: skip
    page = f"{service['base']}/admin/pipeline/switchboard/1/change/"

    def save_switchboard(**changes) -> None:
        form = admin.get(page, timeout=5).text
        fields = dict(
            re.findall(
                r'name="(post_deploy_\w+|deploy_status_guard_repos)"[^>]*value="([^"]*)"', form
            )
        )
        fields.update(csrfmiddlewaretoken=admin.cookies["csrftoken"], **changes)
        if fields.pop("deploy_status_guard_enabled", "on") == "on":
            fields["deploy_status_guard_enabled"] = "on"
        fields["post_deploy_enabled"] = "on"
        fields["reason"] = "testing the guard live"
        saved = admin.post(
            page, fields, headers={"Referer": page}, timeout=5, allow_redirects=False
        )
        assert saved.status_code == 302, saved.text[:2000]

    save_switchboard(deploy_status_guard_enabled="off")
    stale_call("set_issue_awaiting_deploy")
    wait_for(lambda: shown() == "Awaiting Deploy", 30, "the status to go through")
    assert verdicts() == ["CONVERGE_DONE"]  # off: no guard, no verdict

    # On again, but guarding another repo only: this one is allowed, and logged.
    save_switchboard(deploy_status_guard_enabled="on", deploy_status_guard_repos="other-repo")
    stale_call("set_issue_monitoring")
    wait_for(lambda: shown() == "Monitoring after Deploy", 30, "the allowed status")
    assert verdicts() == ["CONVERGE_DONE", "ALLOW"]
    changes = shell(
        "from pipeline.models import SwitchboardChange as C; "
        "print(sorted((c.who, c.field) for c in C.objects.all()))"
    )
    assert "('admin:ops', 'deploy_status_guard_enabled')" in changes
    assert "('admin:ops', 'deploy_status_guard_repos')" in changes
