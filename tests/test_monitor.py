"""The post-deploy monitor against a health endpoint on loopback whose answers tests control."""

import json
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.utils import timezone
from django_q.exceptions import TimeoutException
from django_q.models import OrmQ

from monitoring.actions import run_action
from monitoring.classifier import Verdict
from monitoring.config import current
from monitoring.models import MonitoredRepo, MonitorWindow
from monitoring.ticks import close, monitor_tick, seconds_to_next_tick, tick_due
from monitoring.windows import window_active
from pipeline import engine, switchboard
from pipeline.models import Task
from plane_integration.models import BoardStatus
from tests.concurrency import at_once
from tests.qcluster import run_queued_tasks

pytestmark = pytest.mark.django_db


class Endpoint:
    """An HTTP endpoint on loopback answering a script of statuses (then `then`)."""

    def __init__(self, script=(), then=200, body=b"ok", delay=0.0):
        self.script, self.then, self.body, self.delay = list(script), then, body, delay
        self.hits: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                time.sleep(endpoint.delay)
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.hits.append({"path": self.path, "body": self.rfile.read(length)})
                status = endpoint.script.pop(0) if endpoint.script else endpoint.then
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(endpoint.body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints():
    made = []

    def make(*args, **kwargs) -> Endpoint:
        made.append(Endpoint(*args, **kwargs))
        return made[-1]

    yield make
    for endpoint in made:
        endpoint.stop()


@pytest.fixture
def monitor(settings, tmp_path):
    settings.ORCH_POST_DEPLOY_ENABLED = True
    settings.ORCH_POST_DEPLOY_REPOS = ["shop", "stageboard"]
    settings.ORCH_SELF_HOSTING_REPO = "stageboard"
    settings.ORCH_POST_DEPLOY_FAIL_THRESHOLD = 3
    settings.ORCH_POST_DEPLOY_ERROR_RATIO = 0.25
    settings.ORCH_POST_DEPLOY_MIN_SAMPLES = 4
    settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT = 1.0
    rollbacks = tmp_path / "rollbacks.log"
    return rollbacks


def rollback_command(log) -> list[str]:
    return [sys.executable, "-c", f"open({str(log)!r}, 'a').write('rolled back\\n')"]


def rollbacks_run(log) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def deployed(monitor, board_task, django_capture_on_commit_callbacks, endpoints):
    """Deploy a task of a repo whose health endpoint answers `script`; returns (task, window)."""

    def deploy(script=(), then=200, repo="shop", **repo_fields):
        health = endpoints(script, then)
        MonitoredRepo.objects.update_or_create(
            name=repo,
            defaults={
                "health_url": health.url,
                "rollback_command": rollback_command(monitor),
                **repo_fields,
            },
        )
        task = board_task(stage="deploy", deploy_phase="deploying", repo=repo)
        with django_capture_on_commit_callbacks(execute=True):
            engine.finish_deploy(task, succeeded=True, caller="ci")
        return task, MonitorWindow.objects.get(task=task)

    return deploy


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Make every active window due (and, with closing, past its end) and tick, as a run
    of the cluster would, with its after-commit hooks; then run what it queued."""

    def run(times=1, *, closing=False):
        for _ in range(times):
            due = {"next_tick_at": timezone.now() - timedelta(seconds=1)}
            if closing:
                due["closes_at"] = timezone.now() - timedelta(seconds=1)
            MonitorWindow.objects.filter(state="active").update(**due)
            with django_capture_on_commit_callbacks(execute=True):
                monitor_tick(max_seconds=0)
        # Actions, the board sync, and what their commits queue (the deploy's comment).
        for _ in range(10):
            with django_capture_on_commit_callbacks(execute=True) as committed:
                ran = run_queued_tasks()
            if not (ran or committed):
                break

    return run


# --- arming ------------------------------------------------------------------------------


def test_done_opens_a_window_before_the_board_is_told(deployed, plane):
    task, window = deployed()
    assert window.state == "active" and window_active(task)
    assert window.closes_at - window.opened_at == current().window
    assert BoardStatus.objects.get(task=task).desired_key == "monitoring"
    run_queued_tasks()
    assert plane.calls("PATCH")  # and the board shows it
    state = plane.work_item(str(task.work_item_id))["state"]
    assert state == plane.state_id(str(task.project_id), "Monitoring after Deploy")


def test_the_api_shows_the_current_window(deployed, api):
    task, window = deployed()
    shown = api.get(f"/api/tasks/{task.work_item_id}/").json()["window"]
    assert (shown["state"], shown["verdict"], shown["action"]) == ("active", "", "")


def test_redriving_done_opens_no_second_window(deployed):
    task, _ = deployed()
    engine.finish_deploy(task, succeeded=True, caller="ci")
    engine.advance_stage(task, "done", caller="ci")
    assert MonitorWindow.objects.filter(task=task).count() == 1


def test_only_monitored_repos_get_a_window(monitor, board_task, settings):
    settings.ORCH_POST_DEPLOY_REPOS = []  # empty: the self-hosting repo only
    other = board_task(stage="deploy", deploy_phase="deploying", repo="shop")
    own = board_task(stage="deploy", deploy_phase="deploying", repo="stageboard")
    for task in (other, own):
        engine.finish_deploy(task, succeeded=True, caller="ci")
    assert list(MonitorWindow.objects.values_list("repo", flat=True)) == ["stageboard"]
    switchboard.update("admin:ops", post_deploy_enabled=False)  # effective at once
    late = board_task(stage="deploy", deploy_phase="deploying", repo="stageboard")
    engine.finish_deploy(late, succeeded=True, caller="ci")
    assert MonitorWindow.objects.count() == 1


# --- the rules ---------------------------------------------------------------------------


def test_consecutive_failures_are_degraded_and_roll_back_once(deployed, monitor, plane, tick):
    task, window = deployed(script=[200, 503, 500, 502])
    tick(3)
    window.refresh_from_db()
    assert window.state == "active"  # two failures in a row: not yet
    tick()
    window.refresh_from_db()
    assert (window.verdict, window.action, window.action_state) == ("DEGRADED", "rollback", "done")
    assert "3 health probes failed in a row" in window.verdict_reason
    assert window.action_result == "exit 0"
    assert rollbacks_run(monitor) == 1
    tick(2)  # a closed window is never ticked or acted on again
    assert rollbacks_run(monitor) == 1
    assert MonitorWindow.objects.get().probes.count() == 4
    assert plane.work_item(str(task.work_item_id))["state"] == plane.state_id(
        str(task.project_id), "Blocked"
    )
    [comment] = plane.comments(str(task.work_item_id))
    assert "DEGRADED (roll back)" in comment["comment_html"]
    assert "3 health probes failed in a row" in comment["comment_html"]


def test_failures_interleaved_with_successes_are_not_degraded(
    deployed, monitor, plane, settings, tick
):
    settings.ORCH_POST_DEPLOY_ERROR_RATIO = 0.9  # only the run of failures may trip here
    task, window = deployed(script=[500, 500, 200, 503, 503, 200, 502, 502, 200], then=200)
    tick(9)
    window.refresh_from_db()
    assert (window.state, window.consecutive_failures) == ("active", 0)
    tick(closing=True)
    window.refresh_from_db()
    assert (window.verdict, window.action) == ("HEALTHY", "none")
    assert rollbacks_run(monitor) == 0


def test_failures_that_are_not_5xx_interleaved_end_healthy(deployed, monitor, plane, tick):
    task, window = deployed(script=[404, 404, 200, 404, 404, 200], then=200)
    tick(6)
    window.refresh_from_db()
    assert window.state == "active"
    tick(closing=True)
    window.refresh_from_db()
    assert (window.verdict, window.action, window.action_state) == ("HEALTHY", "none", "done")
    assert rollbacks_run(monitor) == 0
    assert plane.work_item(str(task.work_item_id))["state"] == plane.state_id(
        str(task.project_id), "Done"
    )
    # The deploy's one comment tells the healthy verdict; nothing else is said.
    [comment] = plane.comments(str(task.work_item_id))
    assert "HEALTHY (no rollback)" in comment["comment_html"]
    assert "Stageboard did: nothing" in comment["comment_html"]


def test_a_5xx_ratio_over_the_threshold_is_degraded_once_there_are_enough_samples(
    deployed, monitor, tick
):
    task, window = deployed(script=[500, 200, 200, 500, 200], then=200)
    tick(3)
    window.refresh_from_db()
    assert window.state == "active"  # 1 of 3 is over 25 %, but 3 samples are too few
    tick()
    window.refresh_from_db()
    assert window.verdict == "DEGRADED"  # 2 of 4 = 50 % > 25 %, with 4 samples
    assert "5xx ratio 50% over 4 probes" in window.verdict_reason
    assert rollbacks_run(monitor) == 1


def test_an_error_rate_source_over_the_threshold_is_degraded(deployed, monitor, endpoints, tick):
    prometheus = endpoints(
        then=200, body=json.dumps({"data": {"result": [{"value": [0, "0.4"]}]}}).encode()
    )
    task, window = deployed(error_rate_url=prometheus.url)
    tick(4)
    window.refresh_from_db()
    assert (window.verdict, window.source_ratio) == ("DEGRADED", 0.4)
    assert "error-rate source reports a 5xx ratio of 40.0%" in window.verdict_reason


def test_unreachable_probes_only_are_inconclusive_and_never_roll_back(
    deployed, monitor, plane, tick
):
    task, window = deployed()
    MonitoredRepo.objects.filter(name="shop").update(health_url="http://127.0.0.1:9/health")
    tick(5)
    window.refresh_from_db()
    assert (window.state, window.probes_unmeasured, window.consecutive_failures) == ("active", 5, 0)
    tick(closing=True)
    window.refresh_from_db()
    assert (window.verdict, window.action) == ("INCONCLUSIVE", "alert_only")
    assert "only 0 of 6 probes could be made" in window.verdict_reason
    assert rollbacks_run(monitor) == 0
    assert plane.work_item(str(task.work_item_id))["state"] == plane.state_id(
        str(task.project_id), "Done"
    )
    [comment] = plane.comments(str(task.work_item_id))
    assert "INCONCLUSIVE (no rollback)" in comment["comment_html"]


def test_a_slow_answer_is_a_health_failure(deployed, monitor, settings, endpoints, tick):
    settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT = 0.2
    task, window = deployed()
    slow = endpoints(delay=0.5)
    MonitoredRepo.objects.filter(name="shop").update(health_url=slow.url)
    tick()
    probe = MonitorWindow.objects.get().probes.get()
    assert (probe.result, probe.error) == ("failure", "no answer within 0.2 s")


def test_the_self_hosting_repo_is_only_ever_alerted_on(deployed, monitor, tick):
    task, window = deployed(script=[500, 500, 500], repo="stageboard")
    tick(3)
    window.refresh_from_db()
    assert (window.verdict, window.action, window.action_state) == (
        "DEGRADED",
        "alert_only",
        "done",
    )
    assert rollbacks_run(monitor) == 0


def test_an_alert_only_repo_is_not_rolled_back(deployed, monitor, tick):
    task, window = deployed(script=[500, 500, 500], alert_only=True)
    tick(3)
    window.refresh_from_db()
    assert (window.verdict, window.action) == ("DEGRADED", "alert_only")
    assert rollbacks_run(monitor) == 0


def test_a_rollback_url_is_called_with_what_happened(deployed, monitor, endpoints, tick):
    hook = endpoints(then=200)
    task, window = deployed(script=[500, 500, 500], rollback_command=[], rollback_url=hook.url)
    tick(3)
    window.refresh_from_db()
    assert (window.action, window.action_state, window.action_result) == (
        "rollback",
        "done",
        "HTTP 200",
    )
    [call] = hook.hits
    sent = json.loads(call["body"])
    assert (sent["repo"], sent["work_item"], sent["verdict"]) == (
        "shop",
        str(task.work_item_id),
        "DEGRADED",
    )


def test_a_failing_rollback_is_recorded_with_its_output(deployed, monitor, tick):
    failing = [sys.executable, "-c", "import sys; print('kubectl: forbidden'); sys.exit(3)"]
    task, window = deployed(script=[500, 500, 500], rollback_command=failing)
    tick(3)
    window.refresh_from_db()
    assert (window.action_state, window.action_result) == (
        "failed",
        "the rollback command exited with code 3",
    )
    assert "kubectl: forbidden" in window.action_output


# --- cancellation, operators -------------------------------------------------------------


def test_a_task_cancelled_during_its_window_aborts_it_without_a_patch(deployed, plane, tick):
    task, window = deployed(then=200)
    tick()
    # Done is terminal for the engine, so a cancellation can only come from outside it
    # (an operator's data fix); the monitor stops at any departure from done.
    Task.objects.filter(pk=task.pk).update(stage="cancelled")
    patches = len(plane.calls("PATCH"))
    tick()
    window.refresh_from_db()
    assert (window.state, window.verdict, window.next_tick_at) == ("aborted", "", None)
    assert "left done (now cancelled)" in window.verdict_reason
    assert len(plane.calls("PATCH")) == patches
    assert window.probes.count() == 1  # no probe for the tick that aborted it
    tick()
    assert window.probes.count() == 1


def test_a_task_reopened_during_its_window_aborts_it(deployed, tick):
    task, window = deployed(then=200)
    engine.reopen_task(task, caller="plane:alice", reason="moved to To Analyse")
    tick()
    window.refresh_from_db()
    assert (window.state, window.verdict) == ("aborted", "")
    assert "left done (now analysis)" in window.verdict_reason


def test_an_aborted_window_is_never_healthy():
    window = MonitorWindow(state="aborted", verdict="HEALTHY")
    with pytest.raises(IntegrityError):
        window.task = Task.objects.create(
            work_item_id=f"{'0' * 8}-0000-4000-8000-{'0' * 12}",
            project_id=f"{'1' * 8}-0000-4000-8000-{'0' * 12}",
        )
        window.cycle, window.repo = 1, "shop"
        window.opened_at = window.closes_at = timezone.now()
        window.save()


def test_operators_abort_and_accept_from_the_admin_and_it_is_recorded(deployed, admin_client):
    first, one = deployed(then=200)
    second, two = deployed(then=200)
    url = "/admin/monitoring/monitorwindow/"
    listing = admin_client.get(url)
    assert listing.status_code == 200
    admin_client.post(url, {"action": "abort", "_selected_action": [one.pk], "reason": "noisy"})
    admin_client.post(
        url, {"action": "accept", "_selected_action": [two.pk, one.pk], "reason": "fine"}
    )
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.state, one.verdict, one.closed_by) == ("aborted", "", "admin:admin")
    assert (two.state, two.verdict, two.closed_by) == ("closed", "HEALTHY", "admin:admin")
    assert two.verdict_reason == "accepted by admin:admin: fine" and two.closed_at is not None
    assert admin_client.get(f"{url}?verdict=HEALTHY").context["cl"].result_list[0] == two


# --- at most once ------------------------------------------------------------------------


def test_a_verdict_whose_action_was_lost_is_acted_on_once(deployed, monitor, tick):
    task, window = deployed()
    close(
        window,
        Verdict.DEGRADED,
        "3 health probes failed in a row",
        current(),
        MonitoredRepo.objects.get(),
    )
    OrmQ.objects.all().delete()  # the worker died after the claim: the queued action is gone
    MonitorWindow.objects.filter(pk=window.pk).update(
        closed_at=timezone.now() - timedelta(minutes=6)
    )
    monitor_tick(max_seconds=0)
    monitor_tick(max_seconds=0)  # queued twice, still acted on once
    run_queued_tasks()
    window.refresh_from_db()
    assert (window.action_state, rollbacks_run(monitor)) == ("done", 1)


def test_an_action_that_started_is_never_started_again(deployed, monitor):
    task, window = deployed()
    close(window, Verdict.DEGRADED, "x", current(), MonitoredRepo.objects.get())
    MonitorWindow.objects.filter(pk=window.pk).update(action_state="running")  # its worker died
    assert run_action(window.pk) == "taken"
    run_queued_tasks()
    assert rollbacks_run(monitor) == 0


def stopped_mid_tick(settings, max_seconds) -> MonitorWindow:
    """A tick stopped after probing, before recording; the window as it left it."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 6, "retry": 8}
    MonitorWindow.objects.update(next_tick_at=timezone.now())
    stopped = mock.patch("monitoring.ticks.apply_tick", side_effect=TimeoutException)
    with stopped, pytest.raises(TimeoutException):
        monitor_tick(max_seconds=max_seconds)
    return MonitorWindow.objects.get()


def test_a_tick_stopped_at_its_q_timeout_leaves_its_window_to_the_redelivered_run(
    deployed, settings
):
    deployed(then=500)
    window = stopped_mid_tick(settings, max_seconds=None)  # as the q task
    assert window.claimed_until <= timezone.now() + timedelta(seconds=6)
    assert window.probes_total == 0

    redelivered = timezone.now() + timedelta(seconds=8)
    with mock.patch("django.utils.timezone.now", lambda: redelivered):
        assert tick_due(current())["ticked"] == 1


def test_a_tick_called_directly_keeps_its_window_for_a_whole_pass(deployed, settings):
    deployed(then=500)
    window = stopped_mid_tick(settings, max_seconds=0)  # manage.py monitor_tick, say
    # 30 s of probing, one window's probes (2 x 1 s) and 30 s for the writes.
    assert window.claimed_until > timezone.now() + timedelta(seconds=60)


def test_a_run_waits_for_a_window_another_run_holds_instead_of_spinning(deployed):
    deployed(then=500)
    now = timezone.now()
    held = {"next_tick_at": now - timedelta(seconds=1), "claim_token": "other-run"}
    MonitorWindow.objects.update(**held, claimed_until=now + timedelta(seconds=40))
    assert 30 < seconds_to_next_tick() <= 40  # due when the other run's lease ends

    MonitorWindow.objects.update(claimed_until=None)
    assert seconds_to_next_tick() == 0  # due, and nobody holds it

    later = now + timedelta(seconds=5)
    MonitorWindow.objects.update(next_tick_at=later, claimed_until=now - timedelta(seconds=1))
    assert 3 < seconds_to_next_tick() <= 5  # a lease that ended does not delay the tick


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_at_once_roll_back_once(deployed, monitor, tick):
    task, window = deployed(script=[500, 500], then=500)
    tick(2)
    MonitorWindow.objects.filter(state="active").update(next_tick_at=timezone.now())
    at_once(lambda: tick_due(current()), count=2)
    run_queued_tasks()
    window.refresh_from_db()
    assert window.verdict == "DEGRADED"
    assert window.probes.filter(kind="health").count() == 3  # the window was ticked once
    assert rollbacks_run(monitor) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_at_once_probe_a_window_once(deployed):
    task, window = deployed(then=200)
    for _ in range(5):
        MonitorWindow.objects.filter(pk=window.pk).update(next_tick_at=timezone.now())
        at_once(lambda: tick_due(current()), count=2)
    window.refresh_from_db()
    assert window.probes.count() == 5  # one probe a round, never one per worker
    assert window.probes_total == 5


# --- commands ------------------------------------------------------------------------------


def test_monitor_tick_runs_one_pass(deployed, capsys):
    deployed(then=200)
    MonitorWindow.objects.update(next_tick_at=timezone.now())
    call_command("monitor_tick")
    assert "ticked 1 window(s): 0 verdict(s), 0 aborted" in capsys.readouterr().out


def test_repo_set_is_idempotent_and_list_shows_it(monitor, capsys):
    call_command("repo", "set", "shop", "--health-url", "https://shop.example.com/healthz",
                 "--rollback-command", "./deploy rollback 'shop web'", "--alert-only")  # fmt: skip
    assert "added shop" in capsys.readouterr().out
    repo = MonitoredRepo.objects.get()
    assert repo.rollback_command == ["./deploy", "rollback", "shop web"] and repo.alert_only
    call_command("repo", "set", "shop", "--health-url", "https://shop.example.com/healthz")
    assert "unchanged shop" in capsys.readouterr().out
    call_command("repo", "set", "shop", "--no-alert-only")
    assert "updated shop (alert_only)" in capsys.readouterr().out
    call_command("repo", "list")
    out = capsys.readouterr().out
    assert "shop  watched  health=https://shop.example.com/healthz" in out
    assert "on DEGRADED: rollback (./deploy rollback 'shop web')" in out


def test_repo_list_prints_the_action_a_degraded_verdict_would_run(monitor, capsys):
    # "rollback" was printed for repos the monitor only alerts on.
    call_command("repo", "set", "shop", "--rollback-url", "https://ci.example.com/rollback")
    call_command("repo", "set", "blog")  # no hook
    call_command("repo", "set", "shop2", "--rollback-command", "./rb", "--alert-only")
    call_command("repo", "set", "stageboard", "--rollback-command", "./rb")  # self-hosting
    capsys.readouterr()
    call_command("repo", "list")
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["shop"].endswith("on DEGRADED: rollback (https://ci.example.com/rollback)")
    assert lines["blog"].endswith("on DEGRADED: alert only (no rollback hook)")
    assert lines["shop2"].endswith("on DEGRADED: alert only (set to alert only; hook ./rb)")
    assert lines["stageboard"].endswith(
        "on DEGRADED: alert only (the self-hosting repo is never rolled back)"
    )


def test_repo_set_refuses_a_bad_url_and_keeps_nothing(monitor):
    with pytest.raises(CommandError, match="health_url"):
        call_command("repo", "set", "shop", "--health-url", "not a url")
    assert not MonitoredRepo.objects.exists()


def test_the_task_page_shows_its_board_status_and_window(deployed, admin_client):
    task, window = deployed()
    page = admin_client.get(f"/admin/pipeline/task/{task.pk}/change/")
    sections = {f.opts.__class__.__name__: f for f in page.context["inline_admin_formsets"]}
    assert [form.instance for form in sections["WindowInline"].formset.forms] == [window]
    board = sections["BoardStatusInline"].formset.forms
    assert [form.instance.desired_key for form in board] == ["monitoring"]
    assert len(sections["StageChangeInline"].formset.forms) == task.history.count() > 0


def test_an_alert_whose_comment_failed_stays_due_and_is_sent_once_plane_is_back(
    deployed, monitor, tick, plane
):
    from plane_integration.deploy_comments import send_deploy_comments
    from plane_integration.models import DeployComment

    task, window = deployed(script=[500, 500, 500], repo="stageboard")  # alert only
    plane.fail_for(30, status=503)
    tick(3)
    window.refresh_from_db()
    assert (window.action, window.action_state) == ("alert_only", "done")
    comment = DeployComment.objects.get()
    assert (comment.state, comment.outcome) == ("pending", "degraded_alert_only")
    assert comment.last_error.startswith("Plane answered 503")
    plane.fail_for(0)
    DeployComment.objects.update(next_attempt_at=timezone.now())
    send_deploy_comments(max_seconds=5)
    send_deploy_comments(max_seconds=5)
    assert DeployComment.objects.get().state == "sent"
    [sent] = plane.comments(str(task.work_item_id))
    assert "DEGRADED (alert only, no rollback)" in sent["comment_html"]


def test_the_rollback_hook_gets_none_of_stageboards_secrets(deployed, monitor, tick, tmp_path):
    seen = tmp_path / "env.txt"
    dump = [
        sys.executable,
        "-c",
        f"import os; open({str(seen)!r}, 'w').write(repr(sorted(os.environ)))",
    ]
    os_env = {"DJANGO_SECRET_KEY": "s3cret", "PLANE_API_KEY": "plane_api_x"}
    import os

    for name, value in os_env.items():
        os.environ[name] = value
    try:
        deployed(script=[500, 500, 500], rollback_command=dump)
        tick(3)
    finally:
        for name in os_env:
            os.environ.pop(name)
    names = seen.read_text()
    assert "STAGEBOARD_REPO" in names and "PATH" in names
    assert "DJANGO_SECRET_KEY" not in names and "PLANE_API_KEY" not in names


def test_only_a_superuser_may_change_what_the_rollback_hook_runs(client, monitor):
    from tests.conftest import make_user

    repo = MonitoredRepo.objects.create(name="shop", rollback_command=["./rollback"])
    staff = make_user("ops", "monitoring.change_monitoredrepo", "monitoring.view_monitoredrepo")
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    page = client.get(f"/admin/monitoring/monitoredrepo/{repo.pk}/change/")
    form = page.context["adminform"].form
    assert "rollback_command" not in form.fields and "health_url" in form.fields


def test_a_pass_claims_no_more_than_its_threads_can_probe_if_every_endpoint_hangs(
    deployed, monkeypatch, settings
):
    from monitoring import ticks

    task, first = deployed(then=200)
    for _ in range(4):
        deployed(then=200)
    switchboard.update("admin:ops", post_deploy_tick_seconds=600)
    monkeypatch.setattr(ticks, "PROBE_THREADS", 2)
    monkeypatch.setattr(ticks, "PASS_SECONDS", 2 * current().probe_timeout)  # one round
    MonitorWindow.objects.update(next_tick_at=timezone.now())
    assert tick_due(current())["ticked"] == 2
    assert tick_due(current())["ticked"] == 2
    assert tick_due(current())["ticked"] == 1  # each window once, the oldest due first
    assert tick_due(current())["ticked"] == 0


def test_every_option_of_repo_set_says_what_it_does():
    from operations.management.commands.repo import Command

    parser = Command().create_parser("manage.py", "repo")
    sub = next(a for a in parser._actions if a.dest == "action")
    for action in sub.choices["set"]._actions:
        if action.dest != "help":
            assert action.help, action.option_strings or action.dest


def test_names_the_switchboard_watches_that_match_no_repo_are_shown_and_warned(
    db, capsys, admin_client
):
    call_command("repo", "set", "demo", "--health-url", "https://demo.example.com/healthz")
    call_command("repo", "set", "shop", "--health-url", "https://shop.example.com/healthz")
    capsys.readouterr()
    switchboard.update("test", post_deploy_repos="demo, Shop ,,ghost-repo")
    assert switchboard.repo_list_warnings(switchboard.get()) == [
        "post deploy repos: 'Shop' matches no known repo; did you mean 'shop'? "
        "(names are case-sensitive)",
        "post deploy repos: 'ghost-repo' matches no known repo",
    ]

    call_command("repo", "list")
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("shop  not watched") for line in out)
    assert any(line.startswith("demo  watched") for line in out)
    assert (
        "Shop  watched (post deploy repos)  matches no known repo; did you mean 'shop'? "
        "(names are case-sensitive): it watches nothing" in out
    )
    assert (
        "ghost-repo  watched (post deploy repos)  matches no known repo: it watches nothing" in out
    )

    call_command("ops", "switch", "post_deploy", "on", "--reason", "check", "--as", "ann")
    err = capsys.readouterr().err
    assert "warning: post deploy repos: 'Shop' matches no known repo; did you mean 'shop'?" in err

    # The switchboard's form takes the list and warns.
    row = switchboard.get()
    data = {field: getattr(row, field) for field in row.FIELDS}
    data.update(post_deploy_repos="demo, Shop ,,ghost-repo, stageboard", reason="")
    page = admin_client.post(f"/admin/pipeline/switchboard/{row.pk}/change/", data, follow=True)
    shown = [str(m) for m in page.context["messages"]]
    assert any("'ghost-repo' matches no known repo: it watches nothing yet." in m for m in shown)
    assert switchboard.get().post_deploy_repos == "demo,Shop,ghost-repo,stageboard"
