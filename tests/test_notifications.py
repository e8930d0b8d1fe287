"""Notifications through apprise to a JSON receiver on loopback."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from operations.models import Notification
from operations.notify import notify, send_notifications
from operations.sweeps import notify_sweep
from pipeline import deployments, engine
from plane_integration.models import BoardStatus
from tests.qcluster import run_queued_tasks

pytestmark = pytest.mark.django_db


class Receiver:
    """apprise's json:// target: records each message; answers `status`."""

    def __init__(self):
        self.messages: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.messages.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def receiver(settings):
    made = Receiver()
    settings.NOTIFY_URLS = made.url
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture
def drain(django_capture_on_commit_callbacks):
    def run():
        for _ in range(10):
            with django_capture_on_commit_callbacks(execute=True) as committed:
                ran = run_queued_tasks()
            if not (ran or committed):
                return

    return run


def roll_back(make_task, django_capture_on_commit_callbacks, sha="abc1234"):
    task = make_task(
        stage="deploy", deploy_phase="deploying", identifier="DEMO-7", title="Pay by card"
    )
    with django_capture_on_commit_callbacks(execute=True):
        engine.finish_deploy(task, succeeded=True, caller="ci")
        deployments.Deployment.objects.filter(task=task).update(commit_sha=sha)
        deployments.record_verdict(
            task,
            task.cycle,
            outcome="rolled_back",
            verdict="DEGRADED",
            evidence="5xx ratio 12% over 240 requests",
            action_taken="rolled back (exit 0)",
            settle=True,
        )
    return task


def test_a_rolled_back_deploy_is_one_notification(
    receiver, make_task, drain, django_capture_on_commit_callbacks
):
    roll_back(make_task, django_capture_on_commit_callbacks)
    drain()
    [sent] = receiver.messages
    assert sent["title"] == "[Stageboard] shop: DEMO-7 · Pay by card (abc1234) rolled back"
    assert "5xx ratio 12% over 240 requests" in sent["message"]
    assert "Stageboard did: rolled back (exit 0)" in sent["message"]
    notification = Notification.objects.get(kind="deploy_rolled_back", once_key__isnull=False)
    assert (notification.state, notification.sent_at is not None) == ("sent", True)


def test_a_successful_deploy_notifies_nobody_by_default(
    receiver, make_task, drain, django_capture_on_commit_callbacks
):
    task = make_task(stage="deploy", deploy_phase="deploying")
    with django_capture_on_commit_callbacks(execute=True):
        engine.finish_deploy(task, succeeded=True, caller="ci")
    drain()
    assert receiver.messages == [] and not Notification.objects.exists()


def test_ten_rollbacks_in_a_row_are_one_grouped_notification(
    receiver, make_task, drain, django_capture_on_commit_callbacks
):
    for n in range(10):
        roll_back(make_task, django_capture_on_commit_callbacks, sha=f"abc{n:04d}")
    drain()
    [sent] = receiver.messages
    assert sent["title"] == "[Stageboard] 10 x deploy rolled back"
    assert all(f"abc{n:04d}" in sent["message"] for n in range(10))
    assert Notification.objects.filter(state="sent").get().occurrences == 10


def test_what_follows_a_sent_notification_waits_out_the_group_window(receiver, settings):
    settings.NOTIFY_GROUP_SECONDS = 600
    notify("board_sync_failing", "first")
    send_notifications()
    notify("board_sync_failing", "second")
    notify("board_sync_failing", "third")
    assert send_notifications()["sent"] == 0  # grouped, waiting
    Notification.objects.filter(state="pending").update(send_after=timezone.now())
    assert send_notifications()["sent"] == 1
    assert [m["title"] for m in receiver.messages] == [
        "[Stageboard] first",
        "[Stageboard] 2 x board sync failing",
    ]


def test_a_refused_notification_is_retried_then_recorded_failed_with_why(receiver, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 2
    receiver.status = 500
    notify("reconciler_missed", "3 work items were missed")
    assert send_notifications()["failed"] == 1
    pending = Notification.objects.get()
    assert (pending.state, pending.attempts) == ("pending", 1)
    assert pending.send_after > timezone.now()  # backing off
    Notification.objects.update(send_after=timezone.now())
    send_notifications()
    failed = Notification.objects.get()
    assert (failed.state, failed.attempts) == ("failed", 2)
    assert "500" in failed.last_error
    assert len(receiver.messages) == 2


def test_without_notify_urls_a_notification_is_recorded_skipped(settings):
    settings.NOTIFY_URLS = ""
    notify("reconciler_missed", "missed")
    assert send_notifications() == {"sent": 0, "failed": 0, "skipped": 1}
    assert Notification.objects.get().last_error == "NOTIFY_URLS is empty"


def test_notify_never_raises_at_its_caller(monkeypatch):
    monkeypatch.setattr("operations.notify._record", lambda *a: 1 / 0)
    assert notify("x", "y") is None


def test_an_approval_waiting_too_long_is_told_once(receiver, settings, make_task):
    settings.NOTIFY_APPROVAL_AFTER_MINUTES = 30
    task = make_task(stage="deploy")
    engine.request_deploy_approval(task, caller="ci")
    assert notify_sweep()["approvals"] == 0  # not yet
    task.history.update(created_at=timezone.now() - timedelta(minutes=31))
    assert notify_sweep()["approvals"] == 1
    assert notify_sweep()["approvals"] == 0  # told already
    send_notifications()
    [sent] = receiver.messages
    assert "awaits approval" in sent["title"] and "waiting 31 min" in sent["message"]


def test_a_board_sync_failing_for_ten_minutes_is_told_once(receiver, make_task):
    task = make_task()
    BoardStatus.objects.create(
        task=task,
        desired_key="analysis",
        desired_version=1,
        desired_at=timezone.now() - timedelta(minutes=11),
        attempts=4,
        last_error="Plane answered 503",
        next_attempt_at=timezone.now() + timedelta(minutes=1),
    )
    assert notify_sweep()["board"] == 1
    assert notify_sweep()["board"] == 0
    send_notifications()
    [sent] = receiver.messages
    assert "Plane answered 503" in sent["message"]


def test_the_admin_lists_notifications(admin_client):
    notify("reconciler_missed", "3 work items were missed")
    page = admin_client.get("/admin/operations/notification/")
    assert page.status_code == 200 and b"3 work items were missed" in page.content
