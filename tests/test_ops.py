"""`manage.py ops`: an operator's decisions from the shell, recorded as the admin records them."""

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from monitoring.models import MonitorWindow
from pipeline import switchboard
from pipeline.models import SwitchboardChange
from tests.conftest import make_user
from tests.processes import ROOT, child_env

pytestmark = pytest.mark.django_db


def ops(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("ops", *args, stdout=out)
    return out.getvalue()


def watched(make_task, **fields):
    task = make_task(stage="done", deploy_phase="succeeded", **fields)
    now = timezone.now()
    window = MonitorWindow.objects.create(
        task=task, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
    )
    return task, window


def test_approve_finds_the_task_by_its_identifier_and_records_who_and_why(make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval", identifier="DEMO-3")
    make_user("ann", superuser=True)
    out = ops("approve", "demo-3", "--reason", "change window open", "--as", "ann")
    task.refresh_from_db()
    assert task.deploy_approved_by == "ops:ann"
    assert task.history.get().reason == "deploy approved by ops:ann: change window open"
    assert "deploy approved by ops:ann" in out
    assert LogEntry.objects.get().change_message == "Approved the deploy."
    # Again: nothing more, and it says so.
    assert "approved already" in ops("approve", "DEMO-3", "--reason", "again", "--as", "ann")
    assert task.history.count() == 1


def test_approve_takes_a_uuid_prefix_and_defaults_to_the_os_user(make_task, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "bob")
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    ops("approve", str(task.work_item_id)[:13], "--reason", "ok")
    task.refresh_from_db()
    assert task.deploy_approved_by == "ops:bob"
    assert not LogEntry.objects.exists()  # bob is no account: the history is the record


def test_abort_sends_a_waiting_deploy_back_and_aborts_a_watched_window(make_task):
    waiting = make_task(stage="deploy", deploy_phase="awaiting_approval", identifier="DEMO-4")
    ops("abort", "DEMO-4", "--reason", "wrong branch", "--as", "ann")
    waiting.refresh_from_db()
    assert waiting.stage == "development"
    assert waiting.history.get().reason == "deploy aborted by ops:ann: wrong branch"

    task, window = watched(make_task, identifier="DEMO-5")
    ops("abort", "DEMO-5", "--reason", "probes are noise", "--as", "ann")
    window.refresh_from_db()
    assert (window.state, window.closed_by) == ("aborted", "ops:ann")
    assert task.history.get().reason == ("post-deploy window aborted by ops:ann: probes are noise")


def test_accept_closes_the_window_healthy(make_task):
    task, window = watched(make_task, identifier="DEMO-6")
    out = ops("accept", "DEMO-6", "--reason", "checked by hand", "--as", "ann")
    window.refresh_from_db()
    assert (window.state, window.verdict) == ("closed", "HEALTHY")
    assert task.history.get().reason == "deploy accepted by ops:ann: checked by hand"
    assert "accepted as healthy" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("approve", "DEMO-99", "--reason", "x"), "no task for 'DEMO-99'"),
        (("accept", "DEMO-7", "--reason", "x"), "no deploy is being watched"),
        (("abort", "DEMO-7", "--reason", "x"), "nothing to abort"),
        (("approve", "DEMO-7", "--reason", "  "), "--reason must say why"),
        (("switch", "warp_drive", "off", "--reason", "x"), "no kill-switch 'warp_drive'"),
    ],
)
def test_refusals_say_why_and_change_nothing(make_task, args, message):
    task = make_task(stage="development", identifier="DEMO-7")
    with pytest.raises(CommandError, match=message):
        ops(*args)
    assert not task.history.exists() and not SwitchboardChange.objects.exists()


def test_a_short_prefix_naming_several_tasks_lists_them(make_task):
    make_task(work_item_id="0de0a1b2-0000-4000-8000-000000000001")
    make_task(work_item_id="0de0a1b2-0000-4000-8000-000000000002")
    with pytest.raises(CommandError, match="names more than one task"):
        ops("approve", "0de0a1b2", "--reason", "x")


def test_switch_turns_a_kill_switch_off_with_who_and_why_in_the_change_log():
    out = ops("switch", "reconcile", "off", "--reason", "Plane is migrating", "--as", "ann")
    assert "reconcile_enabled: switched off by ops:ann" in out
    assert switchboard.get().reconcile_enabled is False
    change = SwitchboardChange.objects.get()
    assert (change.who, change.field, change.old, change.new, change.reason) == (
        "ops:ann",
        "reconcile_enabled",
        "True",
        "False",
        "Plane is migrating",
    )
    assert "off already" in ops("switch", "reconcile_enabled", "off", "--reason", "again")
    ops("switch", "git-events", "off", "--reason", "host outage")
    assert switchboard.get().git_events_enabled is False


def test_the_reason_is_required():
    with pytest.raises(CommandError, match="--reason"):
        ops("switch", "reconcile", "off")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="runs on its own SQLite file")
def test_ops_runs_as_a_command_line_with_exit_status_and_messages(tmp_path):
    env = child_env(tmp_path, DJANGO_SECRET_KEY="ops-test-secret-key")

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    assert manage("migrate", "--noinput").returncode == 0
    made = manage(
        "shell", "-c",
        "from pipeline.models import Task; Task.objects.create(work_item_id="
        "'0de00000-0000-4000-8000-0000000000a3', project_id='0de00000-0000-4000-8000-"
        "000000000001', identifier='DEMO-3', title='Demo item 3', stage='deploy', "
        "deploy_phase='awaiting_approval')",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    approved = manage("ops", "approve", "DEMO-3", "--reason", "runbook step 4", "--as", "ann")
    assert approved.returncode == 0, approved.stderr
    assert "DEMO-3 · Demo item 3 (deploy): deploy approved by ops:ann" in approved.stdout
    refused = manage("ops", "accept", "DEMO-3", "--reason", "x")
    assert refused.returncode == 1
    assert "no deploy is being watched" in refused.stderr and "Traceback" not in refused.stderr
    switched = manage("ops", "switch", "post_deploy", "off", "--reason", "incident 12")
    assert switched.returncode == 0 and "post_deploy_enabled: switched off" in switched.stdout
    missing = manage("ops", "approve", "DEMO-3")
    assert missing.returncode == 2 and "--reason" in missing.stderr
    assert "--reason" in manage("ops", "approve", "--help").stdout


# --- ops status: the dashboard's verdict in a shell ----------------------------------------


def status(*args: str) -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("ops", "status", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def set_up(settings):
    """An install whose essentials are set (Plane, its webhook secret, a project), with a
    live q cluster: all good unless a test breaks something."""
    from unittest import mock

    from plane_integration.models import PlaneProject

    settings.PLANE_API_URL = "http://127.0.0.1:9"
    settings.PLANE_API_KEY = "plane_api_x"
    settings.PLANE_WEBHOOK_SECRET = "plane_wh_x"
    PlaneProject.objects.create(
        project_id="0de00000-0000-4000-8000-000000000001", workspace_slug="acme", repo="shop"
    )
    alive = {"ok": True, "clusters": [], "error": ""}
    with mock.patch("operations.verdict.check_cluster", return_value=alive):
        yield


def test_status_on_an_install_not_set_up_prints_the_checklist_and_exits_1(settings):
    settings.PLANE_API_URL = ""
    code, out = status()
    assert code == 1
    assert out.startswith("Not set up yet:")
    assert "[ ] Plane configured" in out


def test_status_says_all_good_and_exits_0(set_up):
    assert status() == (0, "All good\n")
    code, out = status("--json")
    assert code == 0
    answer = json.loads(out)
    assert (answer["ok"], answer["set_up"], answer["problems"]) == (True, True, [])


def test_status_lists_the_problems_worst_first_and_exits_1(set_up):
    switchboard.update("test", post_deploy_enabled=False)
    code, out = status()
    assert code == 1
    assert out.splitlines()[0] == "1 problem:"
    assert "the post-deploy monitor" in out
    answer = json.loads(status("--json")[1])
    assert [p["key"] for p in answer["problems"]] == ["kill_switch"]
    assert answer["ok"] is False


def test_retry_rollback_from_the_shell_needs_a_failed_rollback(make_task):
    task = make_task(stage="done", deploy_phase="succeeded", identifier="DEMO-9")
    with pytest.raises(CommandError, match="not retried"):
        ops("retry-rollback", "DEMO-9", "--reason", "hook fixed")
    assert task.history.count() == 0
