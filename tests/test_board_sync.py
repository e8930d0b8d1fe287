"""Board indication end to end: the engine changes the truth, the q cluster syncs the board.

Every test talks to the Plane stand-in over real HTTP and runs the sync through
django-q2's own pusher, worker and monitor functions.
"""

import logging
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.exceptions import TimeoutException

from pipeline import engine
from pipeline.models import Task
from plane_integration import board
from plane_integration.mapping import WindowFacts
from plane_integration.models import BoardStatus, PlaneProject, PlaneState
from plane_integration.setters import Result, set_issue_stage_state
from plane_integration.sync import sync_board
from plane_standin.server import DEFAULT_STATES
from tests.concurrency import at_once
from tests.qcluster import run_queued_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def drive(django_capture_on_commit_callbacks):
    """Run engine calls with their after-commit hooks, as a real request would."""

    def run(change, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return change(*args, caller="ci", **kwargs)

    return run


def shown(plane, task) -> str:
    """The name of the state the stand-in's work item shows."""
    state = plane.work_item(str(task.work_item_id))["state"]
    project = str(task.project_id)
    return next(s["name"] for s in plane.states(project) if s["id"] == state)


def run_sync() -> None:
    run_queued_tasks()


# --- what each task shows ----------------------------------------------------------------


TO_REVIEW = ["development", "code_review"]
TO_DEPLOY = [*TO_REVIEW, "deploy"]
DEPLOYED = [*TO_DEPLOY, "request-approval", "approve", "start", "succeed"]


@pytest.mark.parametrize(
    "moves,window,expected",
    [
        ([], None, "Todo"),  # nothing changed yet: nothing sent
        (["development", "analysis"], None, "Analysis"),  # cancelled, then re-opened
        (["development"], None, "In Progress"),
        (TO_REVIEW, None, "Code Review"),
        (TO_DEPLOY, None, "Awaiting Deploy"),
        ([*TO_DEPLOY, "request-approval"], None, "Awaiting Deploy"),
        ([*TO_DEPLOY, "request-approval", "approve", "start"], None, "Deploying"),
        (DEPLOYED, None, "Done"),
        (DEPLOYED, WindowFacts(active=True), "Monitoring after Deploy"),
        (DEPLOYED, WindowFacts(active=False, verdict="DEGRADED"), "Blocked"),
        (DEPLOYED, WindowFacts(active=False, verdict="HEALTHY"), "Done"),
        (["cancelled"], None, "Cancelled"),
    ],
)
def test_the_board_shows_every_row_of_the_mapping_table(
    plane, board_task, drive, monkeypatch, moves, window, expected
):
    monkeypatch.setattr(board, "window_facts", lambda task: window)
    task = board_task(stage="analysis")
    actions = {
        "request-approval": engine.request_deploy_approval,
        "approve": engine.approve_deploy,
        "start": engine.start_deploy,
        "succeed": lambda t, **kw: engine.finish_deploy(t, succeeded=True, **kw),
    }
    for move in moves:
        if move in actions:
            drive(actions[move], task)
        elif move == "analysis":
            drive(engine.advance_stage, task, "cancelled")
            drive(engine.reopen_task, task)
        else:
            drive(engine.advance_stage, task, move)
    run_sync()
    assert shown(plane, task) == expected
    if moves:
        row = BoardStatus.objects.get(task=task)
        assert (row.pending, row.next_attempt_at, row.last_outcome) == (False, None, "sent")


def test_a_project_without_the_pipeline_statuses_shows_their_fallbacks(plane, make_task, drive):
    project_id = plane.add_project("acme", identifier="OLD", states=DEFAULT_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="legacy")
    item = plane.add_work_item("acme", project_id, "Old style", state="Backlog")
    task = make_task(stage="development", work_item_id=item, project_id=project_id)
    drive(engine.advance_stage, task, "code_review")
    run_sync()
    assert shown(plane, task) == "In Progress"  # code_review falls back to in_progress
    drive(engine.advance_stage, task, "deploy")
    drive(engine.request_deploy_approval, task)
    run_sync()
    assert shown(plane, task) == "In Progress"


def test_no_patch_when_the_board_already_shows_the_status(plane, board_task, drive):
    task = board_task(stage="development")
    drive(engine.advance_stage, task, "code_review")
    run_sync()
    assert len(plane.calls("PATCH")) == 1
    # A round trip that ends where the board already is: the sync has nothing to send.
    drive(engine.advance_stage, task, "development")
    drive(engine.advance_stage, task, "code_review")
    run_sync()
    assert len(plane.calls("PATCH")) == 1
    assert BoardStatus.objects.get(task=task).last_outcome == "already_shown"


def test_a_burst_of_changes_costs_one_patch_per_work_item_within_the_budget(
    plane, board_task, drive, settings
):
    settings.PLANE_RATE_LIMIT_PER_MINUTE = 30
    settings.PLANE_RATE_WINDOW_SECONDS = 1.0
    plane.set_rate_limit(30, 1.0)
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(100)]
    cycle = ["code_review", "development"]
    for round_ in range(10):
        for task in tasks:
            drive(engine.advance_stage, task, cycle[round_ % 2])
    run_sync()
    patches = plane.calls("PATCH")
    assert len(patches) <= 100
    assert all(shown(plane, task) == "In Progress" for task in tasks)
    assert [r.status for r in plane.requests if r.status == 429] == []
    arrivals = sorted(r.at for r in plane.requests)
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 30


def test_an_outage_delays_the_board_without_losing_a_change(plane, board_task, drive):
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(5)]
    plane.fail_for(60, status=500)  # until the test ends it: no race with a slow machine
    for task in tasks:
        drive(engine.advance_stage, task, "code_review")
    run_sync()
    failed = BoardStatus.objects.filter(last_outcome="failed")
    assert failed.count() == 5
    assert all(row.attempts == 1 and row.last_error for row in failed)
    plane.fail_for(0)  # the outage ends
    time.sleep(0.1)  # and the retry's backoff (0.05 s) passes
    sync_board()
    assert all(shown(plane, task) == "Code Review" for task in tasks)
    assert BoardStatus.objects.filter(next_attempt_at__isnull=False).count() == 0


def test_a_plane_that_times_out_for_a_while_catches_up(plane, board_task, drive, settings):
    settings.PLANE_READ_TIMEOUT = 0.2
    settings.PLANE_RETRIES = 0
    task = board_task(stage="development")
    plane.delay_for(60, 0.5)  # until the test ends it
    drive(engine.advance_stage, task, "code_review")
    run_sync()
    row = BoardStatus.objects.get(task=task)
    assert row.last_outcome == "failed" and "did not answer in time" in row.last_error
    plane.delay_for(0, 0)  # Plane answers in time again
    time.sleep(0.1)  # past the retry's backoff
    sync_board()
    assert shown(plane, task) == "Code Review"


def test_a_hanging_plane_cannot_keep_a_sync_run_past_its_deadline(
    plane, board_task, drive, settings
):
    # Each attempt would wait the read timeout (2 s) and be retried twice: one item alone
    # took over 6 s when only the loop checked the deadline.
    settings.PLANE_RETRIES = 2
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(3)]
    for task in tasks:
        drive(engine.advance_stage, task, "code_review")
    plane.delay_for(60, 5.0)
    started = time.monotonic()
    sync_board(max_seconds=1.0)
    assert time.monotonic() - started < 1.5
    assert BoardStatus.objects.filter(next_attempt_at__isnull=False).count() == 3  # none lost
    plane.delay_for(0, 0)


def test_a_sync_stopped_mid_send_leaves_its_row_to_the_redelivered_run(
    plane, board_task, drive, settings, monkeypatch
):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 6, "retry": 8}
    task = board_task(stage="development")
    drive(engine.advance_stage, task, "code_review")
    # As the q task, stopped by the cluster's timeout after it claimed the row.
    stopped = mock.patch("plane_integration.sync.sync_one", side_effect=TimeoutException)
    with stopped, pytest.raises(TimeoutException):
        sync_board()
    claimed = BoardStatus.objects.get(task=task).claimed_until
    assert claimed <= timezone.now() + timedelta(seconds=6)  # not past the q timeout

    redelivered = timezone.now() + timedelta(seconds=8)
    with mock.patch("django.utils.timezone.now", lambda: redelivered):
        sync_board()
    assert shown(plane, task) == "Code Review"


def test_429_is_honoured_and_the_sync_resumes_after_retry_after(plane, board_task, drive):
    plane.set_rate_limit(4, 1.0)  # Plane is stricter than our budget believes
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(8)]
    for task in tasks:
        drive(engine.advance_stage, task, "code_review")
    run_sync()
    assert all(shown(plane, task) == "Code Review" for task in tasks)
    requests = plane.requests
    refused = [r for r in requests if r.status == 429]
    assert refused, "the stand-in should have refused at least once"
    for refusal in refused:
        retry_after = 1  # the stand-in's whole-second Retry-After for a 1 s window
        quiet = [r for r in requests if refusal.at < r.at < refusal.at + retry_after - 0.05]
        assert quiet == [], "a request was sent during Retry-After"


def test_a_wrong_api_key_is_logged_clearly_and_crashes_nothing(
    plane, board_task, drive, settings, caplog
):
    settings.PLANE_API_KEY = "plane_api_wrong"
    task = board_task(stage="development")
    with caplog.at_level(logging.INFO):
        drive(engine.advance_stage, task, "code_review")
        run_sync()
    row = BoardStatus.objects.get(task=task)
    assert row.last_outcome == "failed"
    assert "Plane refused the API key (403)" in row.last_error
    assert row.next_attempt_at is not None  # it will try again
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name.startswith("plane")
    ]
    assert errors and "Plane refused the API key" in errors[0].getMessage()
    assert task.__class__.objects.get(pk=task.pk).stage == "code_review"


def test_a_state_plane_refuses_makes_the_cache_read_again_once(plane, board_task, drive):
    task = board_task(stage="development")
    drive(engine.advance_stage, task, "code_review")
    run_sync()  # fills the state cache
    stale = PlaneState.objects.get(name="Analysis")
    stale.state_id = uuid.uuid4()  # as if the state was deleted and made again in Plane
    stale.save()
    drive(engine.advance_stage, task, "cancelled")
    drive(engine.reopen_task, task)
    plane.reset_log()
    run_sync()
    assert shown(plane, task) == "Analysis"
    assert [r.status for r in plane.calls("PATCH")] == [400, 200]
    assert len(plane.calls("GET", "/states/")) == 1


# --- the setters -------------------------------------------------------------------------


def test_a_setter_says_skipped_when_plane_is_not_configured(make_task, settings):
    settings.PLANE_API_URL = ""
    outcome = set_issue_stage_state(make_task(), "done", caller="ci")
    assert outcome.result is Result.SKIPPED
    assert "not configured" in outcome.why


def test_a_setter_says_skipped_for_a_project_stageboard_does_not_know(plane, make_task):
    outcome = set_issue_stage_state(make_task(), "done", caller="ci")
    assert outcome.result is Result.SKIPPED
    assert "not a configured Plane project" in outcome.why
    assert plane.requests == []


def test_a_setter_never_raises_and_logs_one_structured_line(plane, board_task, monkeypatch, caplog):
    task = board_task()

    def broken(*args, **kwargs):
        raise RuntimeError("state cache corrupted")

    monkeypatch.setattr("plane_integration.setters.resolve_key", broken)
    with caplog.at_level(logging.INFO, logger="plane_integration.setters"):
        outcome = set_issue_stage_state(task, "done", caller="monitor", reason="verdict HEALTHY")
    assert outcome.result is Result.FAILED
    assert "state cache corrupted" in outcome.why
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "board_status"]
    assert (line.work_item, line.key, line.outcome, line.caller, line.reason) == (
        str(task.work_item_id),
        "done",
        "failed",
        "monitor",
        "verdict HEALTHY",
    )


def test_an_unknown_key_fails_without_a_request(plane, board_task):
    outcome = set_issue_stage_state(board_task(), "shipping", caller="ci")
    assert outcome.result is Result.FAILED
    assert plane.requests == []


def test_each_per_key_setter_shows_its_status(plane, board_task):
    from plane_integration import setters
    from plane_integration.statuses import DEFAULT_NAMES

    task = board_task()
    for key, name in DEFAULT_NAMES.items():
        outcome = getattr(setters, f"set_issue_{key}")(task, caller="ci")
        assert outcome.result is Result.SENT, (key, outcome)
        assert shown(plane, task) == name
    again = setters.set_issue_cancelled(task, caller="ci")
    assert again.result is Result.ALREADY_SHOWN


# --- wiring and operations ----------------------------------------------------------------


def test_a_change_records_the_desired_status_and_queues_one_sync_run(plane, board_task, drive):
    from django_q.models import OrmQ

    task = board_task(stage="analysis")
    drive(engine.advance_stage, task, "development")
    drive(engine.advance_stage, task, "code_review")
    row = BoardStatus.objects.get(task=task)
    assert (row.desired_key, row.desired_version, row.pending) == ("code_review", 2, True)
    assert OrmQ.objects.count() == 1  # one queued run for the burst
    assert plane.requests == []  # nothing is sent inside the request


def test_a_late_hook_with_an_old_view_of_the_task_records_the_current_truth(plane, board_task):
    task = board_task(stage="development")
    stale = Task.objects.get(pk=task.pk)  # what an earlier change's hook was handed
    engine.advance_stage(task, "code_review", caller="ci")
    board.record_desired(task)  # the later change's hook runs first
    board.record_desired(stale)  # then the earlier one's
    row = BoardStatus.objects.get(task=task)
    assert (row.desired_key, row.desired_version) == ("code_review", 1)


def test_adding_a_project_shows_its_waiting_tasks(plane, make_task, capsys):
    project_id = plane.add_project("acme")
    item = plane.add_work_item("acme", project_id, "Waiting", state="Backlog")
    task = make_task(stage="development", work_item_id=item, project_id=project_id)
    call_command("plane_project", "add", project_id, "--repo", "shop", "--workspace", "acme")
    assert "added" in capsys.readouterr().out
    call_command("plane_project", "add", project_id, "--repo", "shop", "--workspace", "acme")
    assert "unchanged" in capsys.readouterr().out
    sync_board()
    assert shown(plane, task) == "In Progress"
    call_command("plane_project", "list")
    assert f"{project_id}  workspace=acme  repo=shop  tasks=1" in capsys.readouterr().out


def test_plane_states_shows_each_key_and_its_fallback(plane, capsys):
    project_id = plane.add_project("acme", states=DEFAULT_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    call_command("plane_states")
    out = capsys.readouterr().out
    assert "analysis         -> In Progress" in out
    assert "fell back: in_progress: name 'In Progress'" in out
    assert "done             -> Done" in out
    assert PlaneState.objects.count() == len(DEFAULT_STATES)


def test_plane_states_create_makes_the_missing_statuses_with_their_groups(plane, capsys):
    from plane_integration import statuses

    project_id = plane.add_project("acme", states=[*DEFAULT_STATES, ("code review", "started")])
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    other = plane.add_project("acme", identifier="OTHER", states=DEFAULT_STATES)
    PlaneProject.objects.create(project_id=other, workspace_slug="acme", repo="blog")

    call_command("plane_states", "--create", "--dry-run", "--project", project_id)
    out = capsys.readouterr().out
    assert "would create 'Awaiting Deploy' (started) for awaiting_deploy" in out
    assert "Code Review" not in out.split("->")[0]  # it exists, in another case
    assert len(plane.states(project_id)) == len(DEFAULT_STATES) + 1  # nothing made

    call_command("plane_states", "--create", "--project", project_id)
    out = capsys.readouterr().out
    made = {s["name"]: s["group"] for s in plane.states(project_id)}
    for key in statuses.CREATED_KEYS:
        if key != "code_review":
            assert made[statuses.DEFAULT_NAMES[key]] == statuses.GROUPS[key], key
    assert "created      'Monitoring after Deploy' (completed) for monitoring" in out
    assert "monitoring       -> Monitoring after Deploy" in out  # resolved at once
    assert "fell back" not in out.split("done ")[0]  # no pipeline key falls back any more
    assert len(plane.states(other)) == len(DEFAULT_STATES)  # --project: only that one

    call_command("plane_states", "--create")  # every project; the first has them all
    out = capsys.readouterr().out
    assert "every pipeline status exists" in out
    assert len(plane.states(other)) == len(DEFAULT_STATES) + len(statuses.CREATED_KEYS)


def test_plane_states_create_counts_a_409_for_a_name_made_meanwhile_as_success(
    plane, capsys, monkeypatch
):
    from plane_integration.client import PlaneClient

    project_id = plane.add_project("acme", states=DEFAULT_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    real = PlaneClient.create_state

    def someone_was_quicker(self, workspace, project, name, group, color):
        if name == "Deploying":  # made by a person between our read and our POST
            plane.add_state(workspace, project, "Deploying", "started")
        return real(self, workspace, project, name, group, color)

    monkeypatch.setattr(PlaneClient, "create_state", someone_was_quicker)
    call_command("plane_states", "--create")
    out = capsys.readouterr().out
    assert "existed      'Deploying' (started) for deploying" in out
    assert [s["name"] for s in plane.states(project_id)].count("Deploying") == 1


def test_plane_states_create_names_an_unknown_project(plane, plane_project):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="plane_project add"):
        call_command(
            "plane_states", "--create", "--project", "0de00000-0000-4000-8000-00000000ffff"
        )
    with pytest.raises(CommandError, match="--dry-run goes with --create"):
        call_command("plane_states", "--dry-run")


def test_plane_states_fails_clearly_when_plane_refuses(plane, plane_project, settings):
    from django.core.management.base import CommandError

    settings.PLANE_API_KEY = "plane_api_wrong"
    with pytest.raises(CommandError, match="1 project"):
        call_command("plane_states")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sync_runs_at_once_send_each_work_item_once(plane, board_task):
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(20)]
    for task in tasks:
        engine.advance_stage(task, "code_review", caller="ci")
        board.record_desired(task)
    at_once(sync_board, count=2)
    assert len(plane.calls("PATCH")) == 20
    assert all(shown(plane, task) == "Code Review" for task in tasks)


# --- comments ------------------------------------------------------------------------------


def test_a_comment_lands_on_the_work_item(plane, board_task):
    from plane_integration.comments import post_comment

    task = board_task()
    outcome = post_comment(task, "<p>HEALTHY: 30 probes, 0 failures</p>", caller="monitor")
    assert outcome.result is Result.SENT
    comments = plane.comments(str(task.work_item_id))
    assert [c["comment_html"] for c in comments] == ["<p>HEALTHY: 30 probes, 0 failures</p>"]


def test_a_comment_on_a_vanished_work_item_fails_with_why(plane, board_task):
    from plane_integration.comments import post_comment

    task = board_task()
    plane.delete_work_item(str(task.work_item_id))
    outcome = post_comment(task, "<p>DEGRADED</p>", caller="monitor")
    assert (outcome.result, outcome.status) == (Result.FAILED, 404)
    assert outcome.why.startswith("Plane answered 404")


def test_a_comment_is_skipped_without_plane(make_task, settings):
    from plane_integration.comments import post_comment

    settings.PLANE_API_KEY = ""
    outcome = post_comment(make_task(), "<p>x</p>", caller="monitor")
    assert outcome.result is Result.SKIPPED


def test_the_api_shows_a_tasks_board_status(plane, board_task, drive, api):
    task = board_task(stage="analysis")
    url = f"/api/tasks/{task.work_item_id}/"
    assert api.get(url).json()["board_status"] is None
    drive(engine.advance_stage, task, "development")
    assert api.get(url).json()["board_status"] == {
        "desired": "in_progress",
        "shown": "",
        "pending": True,
        "last_outcome": "",
        "last_error": "",
        "synced_at": None,
        "gone_at": None,
    }
    run_sync()
    status = api.get(url).json()["board_status"]
    assert (status["shown"], status["pending"], status["last_outcome"]) == (
        "in_progress",
        False,
        "sent",
    )
