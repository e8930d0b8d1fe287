"""A rollback whose hook failed is told as what it is, everywhere, until an operator acts."""

import socket
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from monitoring.models import MonitoredRepo, MonitorWindow
from operations.models import Notification
from operations.notify import message
from pipeline import dora
from pipeline.models import Deployment
from tests.conftest import make_user
from tests.test_monitor import deployed, endpoints, monitor, tick  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def closed_port_url() -> str:
    """An address nothing listens on: the rollback hook is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/rollback"


@pytest.fixture
def failed_rollback(deployed, tick):  # noqa: F811
    """Production answers 503 and the rollback hook is unreachable."""
    task, window = deployed(
        script=[503, 503, 503], then=503, rollback_command=[], rollback_url=closed_port_url()
    )
    tick(3)
    window.refresh_from_db()
    return task, window


def operator_api(client, *perms):
    user = make_user("operator", "pipeline.view_task", *perms)
    token = Token.objects.create(user=user)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


def test_a_failed_rollback_is_its_own_outcome_in_the_api_and_the_history(failed_rollback, api):
    task, window = failed_rollback
    assert (window.action, window.action_state) == ("rollback", "failed")
    assert window.action_result == "the rollback URL could not be reached"
    assert "ConnectionError" in window.action_output  # the exception stays with the window
    deployment = Deployment.objects.get(task=task)
    assert deployment.outcome == "rollback_failed"
    [listed] = api.get(f"/api/tasks/{task.work_item_id}/deployments/").json()["results"]
    assert listed["outcome"] == "rollback_failed"
    history = api.get(f"/api/tasks/{task.work_item_id}/").json()["history"]
    assert "tried to roll back, but the rollback URL could not be reached" in history[-1]["reason"]


def test_the_plane_comment_says_it_in_plain_words(failed_rollback, plane):
    task, _ = failed_rollback
    [comment] = plane.comments(str(task.work_item_id))
    html = comment["comment_html"]
    assert "Rollback FAILED" in html and "Deploy rolled back" not in html
    assert "Retry rollback" in html and "Where to look" in html
    for raw in ("HTTPConnectionPool", "Errno", "Traceback", "Error(", "Max retries"):
        assert raw not in html


def test_the_notification_subject_starts_with_rollback_failed(failed_rollback):
    note = Notification.objects.get(kind="deploy_rollback_failed")
    assert note.subject.startswith("ROLLBACK FAILED")
    title, body = message(note)
    assert title.startswith("ROLLBACK FAILED")
    assert "HTTPConnectionPool" not in title + body


def test_metrics_dora_and_the_admin_filter_count_it(failed_rollback, client, settings):
    settings.METRICS_BEARER_TOKEN = "t"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("stageboard_deployments", (("outcome", "rollback_failed"),))] == 1
    assert samples[("stageboard_deployments", (("outcome", "rolled_back"),))] == 0
    client.force_login(make_user("ops", superuser=True))
    page = client.get("/admin/pipeline/deployment/?outcome__exact=rollback_failed")
    assert len(page.context["cl"].result_list) == 1


def test_dora_counts_a_failed_rollback_as_a_failure_not_restored():
    now = timezone.now()
    facts = [dora.DeployFact("shop", now - timedelta(hours=1), "rollback_failed", None)]
    figures = dora.figures(facts, now - timedelta(days=1), now)
    assert figures["change_failure_rate"]["failures"] == 1
    assert figures["failed_deployment_recovery_time"]["unrestored"] == 1
    assert figures["by_outcome"]["rollback_failed"] == 1


def test_the_dashboard_shows_a_red_banner_until_an_operator_acts(failed_rollback, client):
    task, window = failed_rollback
    client.force_login(make_user("ops", superuser=True))
    page = client.get("/admin/").content.decode()
    assert f'data-rollback-failed="{task.work_item_id}"' in page
    assert f"/admin/monitoring/monitorwindow/{window.pk}/retry-rollback/" in page
    client.post(f"/admin/monitoring/monitorwindow/{window.pk}/rolled-back-by-hand/")
    assert "data-rollback-failed" not in client.get("/admin/").content.decode()
    assert Deployment.objects.get(task=task).outcome == "rolled_back"
    assert LogEntry.objects.get().change_message == "Marked the failed rollback as done by hand."


def test_retry_rollback_through_the_api_needs_approve_deploy(failed_rollback, client):
    task, _ = failed_rollback
    url = f"/api/tasks/{task.work_item_id}/deploy/retry-rollback/"
    operator_api(client, "pipeline.change_task")
    assert client.post(url, {}, content_type="application/json").status_code == 403
    assert MonitorWindow.objects.get().action_state == "failed"


def test_a_retry_that_succeeds_makes_it_rolled_back_and_the_history_keeps_both(
    failed_rollback,
    client,
    endpoints,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    from tests.qcluster import run_queued_tasks

    task, window = failed_rollback
    hook = endpoints(then=200)
    MonitoredRepo.objects.filter(name="shop").update(rollback_url=hook.url)
    url = f"/api/tasks/{task.work_item_id}/deploy/retry-rollback/"
    operator_api(client, "pipeline.approve_deploy")
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(url, {"reason": "hook fixed"}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    with django_capture_on_commit_callbacks(execute=True):
        run_queued_tasks()
    window.refresh_from_db()
    assert (window.action_state, window.action_result) == ("done", "HTTP 200")
    assert len(hook.hits) == 1
    assert Deployment.objects.get(task=task).outcome == "rolled_back"
    reasons = [
        c["reason"] for c in client.get(f"/api/tasks/{task.work_item_id}/").json()["history"]
    ]
    assert any("tried to roll back, but" in r for r in reasons)
    assert "hook fixed" in reasons
    assert reasons[-1] == "rolled back (HTTP 200)"
    assert Notification.objects.filter(kind="deploy_rolled_back").exists()
    # Nothing left to retry: a second press is refused.
    again = client.post(url, {}, content_type="application/json")
    assert again.status_code == 409 and "no" in again.json()["detail"]


def test_retry_rollback_is_refused_for_a_task_without_a_failed_rollback(client, make_task):
    task = make_task(stage="done", deploy_phase="succeeded")
    operator_api(client, "pipeline.approve_deploy")
    answer = client.post(
        f"/api/tasks/{task.work_item_id}/deploy/retry-rollback/",
        {},
        content_type="application/json",
    )
    assert answer.status_code == 409


def test_ops_retry_rollback_queues_the_hook_again_with_who_and_why(failed_rollback):
    from io import StringIO

    from django.core.management import call_command

    task, window = failed_rollback
    out = StringIO()
    call_command(
        "ops", "retry-rollback", str(task.work_item_id), "--reason", "hook fixed", "--as", "ann",
        stdout=out,
    )  # fmt: skip
    assert "rollback queued again by ops:ann" in out.getvalue()
    window.refresh_from_db()
    assert window.action_state == "pending"
    last = task.history.order_by("-id").first()
    assert (last.caller, last.reason) == ("ops:ann", "hook fixed")
