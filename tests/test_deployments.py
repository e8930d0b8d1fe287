"""The delivery record: deploy attempts through the API, their verdicts, their comments."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MonitoredRepo, MonitorWindow
from monitoring.ticks import monitor_tick
from pipeline import engine, switchboard
from pipeline.models import Deployment
from plane_integration.deploy_comments import send_deploy_comments
from plane_integration.models import DeployComment
from tests.concurrency import at_once
from tests.qcluster import run_queued_tasks

pytestmark = pytest.mark.django_db

SHA = "3f9c2e1ab4d5e6f708192a3b4c5d6e7f80912a3b"
CI = "https://ci.example.com/shop/runs/812"


@pytest.fixture
def approved(make_task):
    def make(**fields):
        return make_task(
            stage="deploy",
            deploy_phase="awaiting_approval",
            deploy_approved_by="api:ops",
            deploy_approved_at=timezone.now(),
            **fields,
        )

    return make


@pytest.fixture
def settle(django_capture_on_commit_callbacks):
    """Run queued work and what its commits queue, until nothing is left."""

    def run():
        for _ in range(10):
            with django_capture_on_commit_callbacks(execute=True) as committed:
                ran = run_queued_tasks()
            if not (ran or committed):
                return

    return run


def start(api, task, **body):
    return api.post(
        f"/api/tasks/{task.work_item_id}/deploy/start/", body, content_type="application/json"
    )


def test_a_deploy_with_commit_ref_and_ci_link_is_listed_with_them(api, approved):
    task = approved()
    answer = start(api, task, commit_sha=SHA.upper(), ref="main", ci_url=CI)
    assert answer.status_code == 200, answer.json()
    api.post(f"/api/tasks/{task.work_item_id}/deploy/succeed/")
    [shown] = api.get(f"/api/tasks/{task.work_item_id}/deployments/").json()["results"]
    assert (shown["commit_sha"], shown["short_sha"], shown["ref"], shown["ci_url"]) == (
        SHA,
        SHA[:7],
        "main",
        CI,
    )
    assert (shown["environment"], shown["outcome"], shown["approved_by"]) == (
        "production",
        "succeeded",
        "api:ops",
    )
    assert shown["started_by"] == "api:ci" and shown["finished_at"] >= shown["started_at"]
    listed = api.get("/api/deployments/", {"repo": "shop"}).json()["results"]
    assert [d["id"] for d in listed] == [shown["id"]]
    assert api.get("/api/deployments/", {"repo": "other"}).json()["results"] == []


def test_a_running_deploy_has_no_outcome_and_a_resent_start_records_nothing_more(api, approved):
    task = approved()
    start(api, task, commit_sha="abc1234", environment="staging")
    start(api, task, commit_sha="def5678")
    [shown] = api.get("/api/deployments/").json()["results"]
    assert (shown["commit_sha"], shown["environment"], shown["outcome"]) == (
        "abc1234",
        "staging",
        None,
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({"commit_sha": "abc12"}, "commit_sha"),  # too short
        ({"commit_sha": "xyz1234"}, "commit_sha"),  # not hex
        ({"commit_sha": "a" * 41}, "commit_sha"),
        ({"ci_url": "ftp://ci.example.com/run/1"}, "ci_url"),
        ({"ci_url": "javascript:alert(1)"}, "ci_url"),
        ({"ci_url": "not a url"}, "ci_url"),
        ({"environment": "prod uction"}, "environment"),
        ({"committed_at": "yesterday"}, "committed_at"),
    ],
)
def test_bad_deploy_details_are_a_400_with_the_field_and_change_nothing(api, approved, body, field):
    task = approved()
    answer = start(api, task, **body)
    assert answer.status_code == 400
    assert field in answer.json()
    task.refresh_from_db()
    assert task.deploy_phase == "awaiting_approval"
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("url", ["ftp://ci.example.com/run/1", "not a url", "javascript:alert(1)"])
def test_a_bad_ci_url_gets_one_message(api, approved, url):
    answer = start(api, approved(), ci_url=url)
    assert answer.json()["ci_url"] == ["Give an http(s) URL."]


def test_deployments_filter_by_since_and_refuse_a_bad_since(api, approved):
    old, new = approved(), approved()
    start(api, old)
    Deployment.objects.update(started_at=timezone.now() - timedelta(days=10))
    start(api, new)
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    listed = api.get("/api/deployments/", {"since": since}).json()["results"]
    assert [d["work_item_id"] for d in listed] == [str(new.work_item_id)]
    answer = api.get("/api/deployments/", {"since": "last week"})
    assert answer.status_code == 400 and "since" in answer.json()


def test_reading_deployments_needs_the_view_permission(client, approved):
    assert client.get("/api/deployments/").status_code == 401


def test_a_failed_deploy_and_a_cancelled_one_are_recorded(api, approved):
    failed, cancelled = approved(), approved()
    for task in (failed, cancelled):
        start(api, task, commit_sha="abc1234")
    api.post(f"/api/tasks/{failed.work_item_id}/deploy/fail/")
    engine.advance_stage(cancelled, "cancelled", caller="test")
    outcomes = dict(Deployment.objects.values_list("task_id", "outcome"))
    assert outcomes == {failed.pk: "failed", cancelled.pk: "aborted"}


def test_a_deploy_started_elsewhere_is_still_recorded_when_it_finishes(make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=True, caller="ci")
    deployment = Deployment.objects.get()
    assert (deployment.outcome, deployment.started_at) == ("succeeded", None)
    assert deployment.work_started_at == task.created_at


# --- verdicts and comments ----------------------------------------------------------------


@pytest.fixture
def watched(settings):
    settings.ORCH_POST_DEPLOY_REPOS = ["shop"]
    settings.ORCH_POST_DEPLOY_MIN_SAMPLES = 2
    # No health URL: every probe is unmeasured, so the window closes INCONCLUSIVE.
    MonitoredRepo.objects.create(name="shop")


def close_windows(django_capture_on_commit_callbacks):
    past = timezone.now() - timedelta(seconds=1)
    MonitorWindow.objects.filter(state="active").update(next_tick_at=past, closes_at=past)
    with django_capture_on_commit_callbacks(execute=True):
        monitor_tick(max_seconds=0)


def test_a_watched_deploy_is_listed_with_its_verdict_and_commented_once(
    api, board_task, watched, plane, settle, django_capture_on_commit_callbacks
):
    task = board_task(
        stage="deploy",
        deploy_phase="awaiting_approval",
        deploy_approved_by="api:ops",
        deploy_approved_at=timezone.now(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        start(api, task, commit_sha=SHA, ref="main", ci_url=CI)
        api.post(f"/api/tasks/{task.work_item_id}/deploy/succeed/")
    settle()
    running = Deployment.objects.get()
    assert (running.outcome, running.settled_at) == ("succeeded", None)  # being watched
    assert not plane.comments(str(task.work_item_id))
    close_windows(django_capture_on_commit_callbacks)
    settle()
    [shown] = api.get(f"/api/tasks/{task.work_item_id}/deployments/").json()["results"]
    assert (shown["outcome"], shown["verdict"]) == ("inconclusive", "INCONCLUSIVE")
    assert "probes could be made (need 2)" in shown["evidence"]
    assert shown["window_id"] == MonitorWindow.objects.get().pk
    assert shown["action_taken"] == "alert only, no rollback"
    [comment] = plane.comments(str(task.work_item_id))
    html = comment["comment_html"]
    assert f'<a href="{CI}">{SHA[:7]}</a> (main) of shop to production' in html
    assert "INCONCLUSIVE (no rollback)" in html and "Stageboard did: alert only" in html
    send_deploy_comments(max_seconds=1)  # sent: never again
    assert len(plane.comments(str(task.work_item_id))) == 1


def test_comments_switched_off_are_not_sent(board_task, plane, settle):
    switchboard.update("admin:ops", deploy_comments_enabled=False)
    task = board_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=False, caller="ci")
    settle()
    assert not DeployComment.objects.exists()
    assert not plane.comments(str(task.work_item_id))
    assert switchboard.get().deploy_comments_enabled is False


def test_a_failed_deploy_tells_its_story(
    board_task, plane, settle, django_capture_on_commit_callbacks
):
    task = board_task(stage="deploy", deploy_phase="deploying")
    with django_capture_on_commit_callbacks(execute=True):
        engine.finish_deploy(task, succeeded=False, caller="ci")
    settle()
    [comment] = plane.comments(str(task.work_item_id))
    assert "<strong>Deploy failed</strong>" in comment["comment_html"]
    assert "sent the task back to development" in comment["comment_html"]


def test_a_comment_leaves_the_budget_to_due_board_rows(board_task, plane, settings, settle):
    from plane_integration.models import BoardStatus

    settings.PLANE_RATE_LIMIT_PER_MINUTE = 3  # a reserve of one
    task = board_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=False, caller="ci")
    for n in range(2):
        other = board_task(name=f"other {n}")
        BoardStatus.objects.create(
            task=other,
            desired_key="analysis",
            desired_at=timezone.now(),
            next_attempt_at=timezone.now(),
        )
    DeployComment.objects.create(
        deployment=Deployment.objects.get(), outcome="failed", next_attempt_at=timezone.now()
    )
    report = send_deploy_comments(max_seconds=1)
    # 2 due rows + a reserve of 1 fill a budget of 3: the comment waits for its turn.
    assert report["sent"] == 0 and not plane.comments(str(task.work_item_id))
    assert DeployComment.objects.get().next_attempt_at > timezone.now()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_send_one_comment_per_outcome(board_task, plane):
    task = board_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=True, caller="ci")
    deployment = Deployment.objects.get()
    for comment in DeployComment.objects.all():
        comment.next_attempt_at = timezone.now()
        comment.save()
    if not DeployComment.objects.exists():
        DeployComment.objects.create(
            deployment=deployment, outcome="succeeded", next_attempt_at=timezone.now()
        )
    reports = at_once(lambda: send_deploy_comments(max_seconds=5), count=2)
    assert sorted(r["sent"] for r in reports) == [0, 1]
    assert len(plane.comments(str(task.work_item_id))) == 1
    assert DeployComment.objects.get().state == "sent"
