"""The admin's front page answers "is everything all right?", and its buttons act."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import MonitorWindow, Probe
from pipeline import switchboard
from pipeline.models import Deployment, Task
from plane_integration.models import (
    BoardStatus,
    GuardVerdict,
    PlaneProject,
    ReconcileRepair,
    ReconcileRun,
    WebhookDelivery,
)
from tests.conftest import PROJECT, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(make_user("ops", superuser=True))
    return client


def a_busy_world(make_task, n: int) -> None:
    """n of everything the dashboard counts or lists."""
    now = timezone.now()
    run = ReconcileRun.objects.create(kind="full", trigger="command", started_at=now)
    for i in range(n):
        waiting = make_task(stage="deploy", deploy_phase="awaiting_approval", title=f"wait {i}")
        done = make_task(stage="done", deploy_phase="succeeded", title=f"done {i}")
        window = MonitorWindow.objects.create(
            task=done, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
        )
        Probe.objects.create(
            window=window, at=now, kind="health", result="failure", status_code=503
        )
        Deployment.objects.create(
            task=done, cycle=1, repo="shop", verdict="DEGRADED", outcome="rolled_back",
            finished_at=now,
        )  # fmt: skip
        GuardVerdict.objects.create(
            work_item_id=str(done.work_item_id), caller="stale", target="deploying",
            verdict="SUPPRESS", reason="cancelled",
        )  # fmt: skip
        WebhookDelivery.objects.create(
            dedupe_key=f"k{done.pk}", event="issue", body=b"{}", state="failed"
        )
        BoardStatus.objects.create(
            task=waiting, desired_key="awaiting_deploy", desired_at=now, attempts=2,
            last_error=f"Plane answered 500 ({i})", next_attempt_at=now,
        )  # fmt: skip
        ReconcileRepair.objects.create(
            run=run, work_item_id=done.work_item_id, project_id=PROJECT, kind="started",
            reason="the item shows To Analyse and has no task",
        )  # fmt: skip


def test_it_shows_every_panel_with_what_needs_attention(operator, make_task):
    a_busy_world(make_task, 2)
    page = operator.get("/admin/").content.decode()
    assert "Deploys awaiting approval (2)" in page
    assert "wait 0" in page and "wait 1" in page
    assert "failure (503)" in page  # the active window's last probe
    assert "DEGRADED" in page
    assert "Plane answered 500 (1)" in page  # a failing board row's last error
    assert "Plane&#x27;s webhook may be off" in page or "Plane's webhook may be off" in page
    assert "No q cluster" in page  # none runs in the test
    assert "kill-switch-banner" not in page
    assert "/admin/pipeline/task/?stage__exact=deploy" in page
    assert "/admin/dora/" in page


def test_it_costs_the_same_queries_for_ten_rows_as_for_one(operator, make_task):
    a_busy_world(make_task, 1)
    operator.get("/admin/")  # the switchboard's row is seeded on first use
    with CaptureQueriesContext(connection) as one:
        operator.get("/admin/")
    a_busy_world(make_task, 10)
    with CaptureQueriesContext(connection) as many:
        operator.get("/admin/")
    assert len(many) == len(one)


def test_a_kill_switch_off_raises_a_red_banner_naming_it(operator):
    switchboard.update("test", deploy_status_guard_enabled=False)
    page = operator.get("/admin/").content.decode()
    assert 'id="kill-switch-banner"' in page
    assert "the deploy status guard" in page


def test_the_front_door_leads_to_the_dashboard_and_it_is_staff_only(client):
    assert client.get("/").url == "/admin/"
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response.url
    client.force_login(make_user("pipeline-bot", "pipeline.view_task"))  # not staff
    assert client.get("/admin/").status_code == 302


def test_approve_from_the_dashboard_logs_it_and_records_the_history(operator, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    response = operator.post(f"/admin/pipeline/task/{task.pk}/approve/", {"next": "/admin/"})
    assert response.status_code == 302 and response.url == "/admin/"
    task.refresh_from_db()
    assert task.deploy_approved_by == "admin:ops"
    assert task.history.get().caller == "admin:ops"
    entry = LogEntry.objects.get()
    assert (entry.object_id, entry.change_message) == (str(task.pk), "Approved the deploy.")


def test_abort_sends_a_waiting_deploy_back_to_development_for_a_reason(operator, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    operator.post(f"/admin/pipeline/task/{task.pk}/abort/", {"reason": "wrong branch"})
    task.refresh_from_db()
    assert task.stage == "development"
    assert task.history.get().reason == "deploy aborted by admin:ops: wrong branch"
    assert LogEntry.objects.get().change_message == (
        "Aborted the deploy: back to development (wrong branch)."
    )


def test_abort_and_accept_without_a_reason_change_nothing_and_say_so(operator, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    response = operator.post(f"/admin/pipeline/task/{task.pk}/abort/", {"reason": " "})
    assert "give a reason" in str(list(get_messages(response.wsgi_request))[0])
    watched = make_task(stage="done", deploy_phase="succeeded")
    now = timezone.now()
    window = MonitorWindow.objects.create(
        task=watched, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
    )
    operator.post(f"/admin/monitoring/monitorwindow/{window.pk}/accept/")
    operator.post(f"/admin/monitoring/monitorwindow/{window.pk}/abort/")
    task.refresh_from_db()
    window.refresh_from_db()
    assert task.stage == "deploy" and window.state == "active"
    assert not LogEntry.objects.exists()


def test_the_dashboard_asks_for_confirmation_and_a_reason_to_abort_or_accept(operator, make_task):
    make_task(stage="deploy", deploy_phase="awaiting_approval")
    watched = make_task(stage="done", deploy_phase="succeeded")
    now = timezone.now()
    MonitorWindow.objects.create(
        task=watched, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
    )
    page = operator.get("/admin/").content.decode()
    assert page.count('name="reason" required') == 3  # abort, accept, abort the window
    assert page.count("return confirm(") == 3


def test_abort_leaves_a_running_deploy_to_its_runner(operator, make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    operator.post(f"/admin/pipeline/task/{task.pk}/abort/", {"reason": "stuck"})
    task.refresh_from_db()
    assert task.stage == "deploy" and not LogEntry.objects.exists()


def test_buttons_need_post_and_the_permission(client, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    clerk = make_user("clerk", "pipeline.view_task", "pipeline.change_task")
    clerk.is_staff = True
    clerk.save()
    client.force_login(clerk)
    assert client.get(f"/admin/pipeline/task/{task.pk}/approve/").status_code == 405
    assert client.post(f"/admin/pipeline/task/{task.pk}/approve/").status_code == 403
    task.refresh_from_db()
    assert task.deploy_approved_at is None


def test_the_buttons_refuse_a_request_without_the_csrf_token(make_task):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("ops", superuser=True))
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    assert browser.post(f"/admin/pipeline/task/{task.pk}/approve/").status_code == 403
    task.refresh_from_db()
    assert task.deploy_approved_at is None


def test_accept_closes_the_window_healthy_with_a_log_entry_and_history(operator, make_task):
    task = make_task(stage="done", deploy_phase="succeeded")
    now = timezone.now()
    window = MonitorWindow.objects.create(
        task=task, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
    )
    operator.post(f"/admin/monitoring/monitorwindow/{window.pk}/accept/", {"reason": "looks fine"})
    window.refresh_from_db()
    assert (window.state, window.verdict) == ("closed", "HEALTHY")
    assert task.history.get().reason == "deploy accepted by admin:ops: looks fine"
    assert LogEntry.objects.get().change_message == "Accepted the deploy as healthy: looks fine"


def test_the_task_list_colours_stage_and_verdict_and_links_to_plane(operator, make_task, settings):
    settings.PLANE_WEB_URL = "https://app.plane.so/"
    PlaneProject.objects.create(project_id=PROJECT, workspace_slug="acme", repo="shop")
    task = make_task(stage="done", deploy_phase="succeeded", title="went wrong")
    make_task(stage="done", deploy_phase="succeeded", title="went fine")
    Deployment.objects.create(task=task, cycle=1, repo="shop", verdict="DEGRADED")
    page = operator.get("/admin/pipeline/task/").content.decode()
    assert 'class="sb-badge"' in page
    assert f"https://app.plane.so/acme/projects/{PROJECT}/issues/{task.work_item_id}" in page
    shown = operator.get("/admin/pipeline/task/?last_verdict=DEGRADED").context["cl"].result_list
    assert [t.title for t in shown] == ["went wrong"]


def test_the_task_page_offers_approve_and_abort_while_the_deploy_waits(operator, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    page = operator.get(f"/admin/pipeline/task/{task.pk}/change/").content.decode()
    assert f"/admin/pipeline/task/{task.pk}/approve/" in page
    assert f"/admin/pipeline/task/{task.pk}/abort/" in page
    Task.objects.filter(pk=task.pk).update(stage="development")
    page = operator.get(f"/admin/pipeline/task/{task.pk}/change/").content.decode()
    assert "/approve/" not in page


def test_the_task_list_accepts_a_watched_deploy_and_aborts_a_waiting_one(operator, make_task):
    watched = make_task(stage="done", deploy_phase="succeeded")
    waiting = make_task(stage="deploy", deploy_phase="awaiting_approval")
    now = timezone.now()
    window = MonitorWindow.objects.create(
        task=watched, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=5)
    )
    changelist = "/admin/pipeline/task/"
    for action, task in [("accept_deploy", watched), ("abort_deploy", waiting)]:
        operator.post(
            changelist, {"action": action, "_selected_action": [task.pk], "reason": "on call"}
        )
    window.refresh_from_db()
    waiting.refresh_from_db()
    assert window.verdict == "HEALTHY" and waiting.stage == "development"
    assert sorted(LogEntry.objects.values_list("change_message", flat=True)) == [
        "Aborted the deploy: back to development (on call).",
        "Accepted the deploy as healthy: on call",
    ]
