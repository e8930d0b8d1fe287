"""The reconciler against the Plane stand-in over real HTTP: drift, deletions, missed webhooks.

Webhooks are "missed" here by not registering one with the stand-in: a person's move then
reaches Stageboard only through a sweep, as after Plane switched a failing webhook off.
"""

import io
import json
import logging
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from pipeline import engine, switchboard
from pipeline.models import StageChange, SwitchboardChange, Task
from plane_integration.board import record_desired
from plane_integration.client import PlaneClient
from plane_integration.models import (
    BoardStatus,
    PlaneProject,
    ProjectSweep,
    ReconcileRepair,
    ReconcileRun,
    WebhookDelivery,
)
from plane_integration.reconcile import reconcile, scheduled_sweep
from plane_integration.sync import sync_board
from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES
from tests.concurrency import at_once
from tests.conftest import make_user
from tests.qcluster import run_queued_tasks
from tests.test_webhooks import BOT, SECRET, issue_update, send

pytestmark = pytest.mark.django_db(transaction=True)


def shown(plane, work_item_id) -> str:
    item = plane.work_item(str(work_item_id))
    return next(s["name"] for s in plane.states(item["project"]) if s["id"] == item["state"])


def kinds(run: ReconcileRun) -> list[tuple[str, str, str]]:
    return [(r.kind, r.shown, r.to) for r in run.repairs.all()]


def list_calls(plane) -> list:
    return [r for r in plane.calls("GET") if r.path.endswith("/work-items/")]


@pytest.fixture
def synced(plane, board_task):
    """A task whose work item shows its truth, as after the ordinary sync."""

    def make(stage="analysis", deploy_phase="", **fields) -> Task:
        task = board_task(stage=stage, deploy_phase=deploy_phase, **fields)
        record_desired(task)
        sync_board(max_seconds=10)
        assert BoardStatus.objects.get(task=task).pending is False
        return task

    return make


# --- the repairs -----------------------------------------------------------------------------


def test_a_to_analyse_item_without_a_task_gets_one_and_a_late_webhook_adds_nothing(
    plane, plane_project, live_server, settings
):
    project_id = str(plane_project.project_id)
    item = plane.add_work_item("acme", project_id, "Missed by the webhook", state="To Analyse")

    run = reconcile(full=False)

    task = Task.objects.get(work_item_id=item)
    assert (task.stage, task.title, task.repo) == ("analysis", "Missed by the webhook", "shop")
    assert kinds(run) == [("started", "To Analyse", "analysis")]
    history = StageChange.objects.filter(task=task).count()

    settings.PLANE_WEBHOOK_SECRET, settings.PLANE_BOT_USER_ID = SECRET, BOT
    to_analyse = plane.state_id(project_id, "To Analyse")
    answer = send(
        f"{live_server.url}/webhooks/plane/",
        issue_update(plane_project, to_analyse, item=item),
    )
    assert answer.status_code == 202
    run_queued_tasks()

    assert Task.objects.filter(work_item_id=item).count() == 1
    assert StageChange.objects.filter(task=task).count() == history
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "ignored" and "left alone" in delivery.reason
    assert kinds(reconcile(full=False)) == []  # and the next sweep has nothing to do


@pytest.mark.parametrize("stage", ["done", "cancelled"])
def test_a_finished_task_whose_item_was_moved_to_to_analyse_is_reopened(plane, synced, stage):
    task = synced(stage=stage)
    plane.set_state(str(task.work_item_id), "To Analyse")

    run = reconcile(full=False)

    task.refresh_from_db()
    assert (task.stage, task.cycle) == ("analysis", 2)
    assert kinds(run) == [("reopened", "To Analyse", "analysis")]
    assert StageChange.objects.get(task=task).caller == "reconciler"
    sync_board(max_seconds=10)
    assert shown(plane, task.work_item_id) == "Analysis"


def test_an_item_moved_to_cancelled_cancels_its_task(plane, synced):
    task = synced(stage="development")
    plane.set_state(str(task.work_item_id), "Cancelled")

    run = reconcile(full=False)

    task.refresh_from_db()
    assert task.stage == "cancelled"
    assert kinds(run) == [("cancelled", "Cancelled", "cancelled")]
    plane.reset_log()
    sync_board(max_seconds=10)
    assert plane.calls("PATCH") == []  # the board already shows it: recorded from the list
    assert shown(plane, task.work_item_id) == "Cancelled"


def test_a_drifted_item_is_repaired_once_and_the_next_sweep_finds_nothing(
    plane, synced, client, driver
):
    task = synced(stage="code_review")
    plane.set_state(str(task.work_item_id), "Deploying")

    run = reconcile(full=False)

    assert kinds(run) == [("reasserted", "Deploying", "code_review")]
    task.refresh_from_db()
    assert task.stage == "code_review"  # indication, not control
    row = BoardStatus.objects.get(task=task)
    assert (row.shown_key, row.pending) == ("deploying", True)
    token = Token.objects.create(user=driver)
    board = client.get(
        f"/api/tasks/{task.work_item_id}/board/", HTTP_AUTHORIZATION=f"Token {token.key}"
    )
    assert board.status_code == 200
    assert board.json()["pending"] is True and board.json()["shown"] == "deploying"

    sync_board(max_seconds=10)
    assert shown(plane, task.work_item_id) == "Code Review"
    assert BoardStatus.objects.get(task=task).pending is False
    assert kinds(reconcile(full=False)) == []
    assert kinds(reconcile(full=True)) == []


def test_a_deploy_status_drift_goes_back_through_the_guard(plane, synced):
    """A done task whose item a person dragged back to Deploying shows Done again."""
    task = synced(stage="done", deploy_phase="succeeded")
    plane.set_state(str(task.work_item_id), "Deploying")
    assert kinds(reconcile(full=False)) == [("reasserted", "Deploying", "done")]
    sync_board(max_seconds=10)
    assert shown(plane, task.work_item_id) == "Done"


def test_a_pending_send_is_never_drift(plane, synced):
    task = synced(stage="analysis")
    plane.set_state(str(task.work_item_id), "Code Review")
    BoardStatus.objects.filter(task=task).update(next_attempt_at=timezone.now())
    assert kinds(reconcile(full=False)) == []


def test_items_without_a_task_are_not_ours_to_touch(plane, plane_project):
    plane.add_work_item("acme", str(plane_project.project_id), "Someone else's", state="Done")
    run = reconcile(full=True)
    assert (run.complete, kinds(run), Task.objects.count()) == (True, [], 0)


def test_a_deleted_items_task_is_cancelled_and_a_finished_one_is_left_alone(plane, synced):
    working, finished = synced(stage="development"), synced(stage="done")
    for task in (working, finished):
        plane.delete_work_item(str(task.work_item_id))

    assert kinds(reconcile(full=False)) == []  # only a full sweep looks for what has gone
    run = reconcile(full=True)

    assert sorted(kinds(run)) == [("gone", "", "cancelled"), ("gone", "", "done")]
    working.refresh_from_db()
    finished.refresh_from_db()
    assert (working.stage, finished.stage) == ("cancelled", "done")
    assert StageChange.objects.get(task=working).reason == "work item deleted or archived in Plane"
    assert BoardStatus.objects.filter(gone_at__isnull=False).count() == 2
    plane.reset_log()
    sync_board(max_seconds=10)
    assert plane.requests == []  # nothing is sent to an item that has gone
    assert kinds(reconcile(full=True)) == []  # and it is repaired once


def test_an_archived_item_counts_as_gone(plane, synced):
    task = synced(stage="code_review")
    plane.archive_work_item(str(task.work_item_id))

    run = reconcile(full=True)

    task.refresh_from_db()
    assert task.stage == "cancelled"
    assert kinds(run) == [("gone", "", "cancelled")]
    plane.reset_log()
    sync_board(max_seconds=10)
    assert plane.calls("PATCH") == []  # an archived item would take a PATCH: none is sent
    assert shown(plane, task.work_item_id) == "Code Review"


def test_a_404_on_patch_marks_the_row_gone_instead_of_retrying(plane, synced, caplog):
    task = synced(stage="analysis")
    plane.delete_work_item(str(task.work_item_id))
    engine.advance_stage(task, "development", caller="ci")
    record_desired(task)

    with caplog.at_level(logging.WARNING, logger="plane_integration.sync"):
        sync_board(max_seconds=10)

    row = BoardStatus.objects.get(task=task)
    assert row.gone_at is not None and row.next_attempt_at is None and not row.pending
    assert "404" in caplog.text
    plane.reset_log()
    sync_board(max_seconds=10)
    assert plane.requests == []


def test_a_404_on_patch_confirmed_by_one_get_cancels_the_task_at_once(plane, synced, admin_client):
    task = synced(stage="analysis")
    item = str(task.work_item_id)
    plane.delete_work_item(item)
    engine.advance_stage(task, "development", caller="ci")
    plane.reset_log()

    sync_board(max_seconds=10)

    task.refresh_from_db()
    assert task.stage == "cancelled"  # not an hour later, at the full sweep
    assert [(r.method, r.status) for r in plane.requests] == [("PATCH", 404), ("GET", 404)]
    repair = ReconcileRepair.objects.get()
    assert (repair.run, repair.kind, repair.to) == (None, "gone", "cancelled")
    assert StageChange.objects.filter(task=task).last().reason == (
        "work item deleted or archived in Plane"
    )
    answer = admin_client.get(f"/api/tasks/{item}/board/")
    assert answer.status_code == 200 and answer.json()["gone_at"]
    page = admin_client.get("/admin/").content.decode()
    assert 'id="other-repairs"' in page and "work item deleted or archived" in page
    assert kinds(reconcile(full=True)) == []  # the full sweep finds it handled already


def test_an_item_that_comes_back_is_sent_to_again(plane, synced):
    task = synced(stage="development")
    item = str(task.work_item_id)
    plane.archive_work_item(item)
    reconcile(full=True)
    with plane._lock:  # restored in Plane
        plane._items[item]["archived_at"] = None
    plane.set_state(item, "Backlog")
    reconcile(full=False)
    sync_board(max_seconds=10)
    assert BoardStatus.objects.get(task=task).gone_at is None
    assert shown(plane, item) == "Cancelled"  # the truth: cancelled while it was gone


# --- cost and budget -------------------------------------------------------------------------


def test_a_quiet_incremental_sweep_costs_one_call_per_project(plane, settings):
    settings.PLANE_API_PATHS = "work-items"
    projects = []
    for name in ("acme", "beta"):
        project_id = plane.add_project(name, states=DEFAULT_STATES + PIPELINE_STATES)
        PlaneProject.objects.create(project_id=project_id, workspace_slug=name, repo=name)
        projects.append(project_id)
        for n in range(250):
            plane.add_work_item(name, project_id, f"item {n}", state="Todo")
    assert reconcile(full=True).complete
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for item in list(plane._items):
        plane.touch_work_item(item, an_hour_ago)
    plane.reset_log()

    run = reconcile(full=False)

    assert (run.complete, run.plane_calls, run.items_seen) == (True, 2, 200)
    assert len(plane.requests) == 2
    assert all(r.query["order_by"] == "-updated_at" for r in plane.requests)
    assert {r.query["fields"] for r in plane.requests} == {"id,name,state,updated_at,sequence_id"}


def test_an_incremental_sweep_reads_back_to_the_last_complete_one(plane, settings):
    settings.PLANE_API_PATHS = "work-items"
    project_id = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    items = [plane.add_work_item("acme", project_id, f"{n}", state="Todo") for n in range(250)]
    reconcile(full=True)
    for item in items:
        plane.touch_work_item(item, timezone.now() - timedelta(hours=1))
    plane.set_state(items[0], "To Analyse")  # the newest change, read on the first page
    assert kinds(reconcile(full=False)) == [("started", "To Analyse", "analysis")]


def test_a_sweep_out_of_budget_resumes_from_its_cursor_and_completes(plane, settings):
    settings.PLANE_API_PATHS = "work-items"
    settings.PLANE_RATE_LIMIT_PER_MINUTE = 10  # a sweep takes at most 5 calls a window
    settings.PLANE_RATE_WINDOW_SECONDS = 1.0
    project_id = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    for n in range(650):
        plane.add_work_item("acme", project_id, f"{n}", state="Todo")
    last = plane.add_work_item("acme", project_id, "the oldest", state="To Analyse")
    plane.touch_work_item(last, timezone.now() - timedelta(days=1))

    runs = [reconcile(full=True)]
    while not runs[-1].complete and len(runs) < 5:
        time.sleep(1.1)  # the budget's window passes
        runs.append(reconcile(full=True))

    assert [r.complete for r in runs] == [False, True]
    assert runs[0].plane_calls == 5 and "budget" in runs[0].note
    cursors = [r.query.get("cursor") for r in list_calls(plane)]
    assert cursors == [None, *(f"100:{page}:0" for page in range(1, 7))]  # each page once
    assert kinds(runs[1]) == [("started", "To Analyse", "analysis")]
    assert not ProjectSweep.objects.get().full_cursor
    assert 429 not in [r.status for r in plane.requests]


def test_a_sweep_leaves_half_of_the_budget_to_the_sync(plane, plane_project, settings):
    from plane_integration.client import PlaneClient

    settings.PLANE_RATE_LIMIT_PER_MINUTE = 10
    for n in range(900):
        plane.add_work_item("acme", str(plane_project.project_id), f"{n}", state="Todo")
    for _ in range(3):  # the sync sent three requests this minute
        assert PlaneClient.from_settings().budget.acquire() == 0

    run = reconcile(full=True)

    assert not run.complete and run.plane_calls == 2  # 10 - 3 sent, less 5 kept back
    assert PlaneClient.from_settings().budget.acquire() == 0  # the sync still has room


def test_a_first_full_sweep_with_the_default_settings_reads_pages_and_states_only(plane):
    """Nothing known yet (no states cached, the path form not found out: PLANE_API_PATHS
    is auto, and each test has its own cache): a page a call, the states once a project,
    nothing else; no probe of the list before reading it."""
    projects = 2
    for p in range(projects):
        project_id = plane.add_project(f"ws{p}", states=DEFAULT_STATES + PIPELINE_STATES)
        PlaneProject.objects.create(project_id=project_id, workspace_slug=f"ws{p}", repo="shop")
        for n in range(150):
            plane.add_work_item(f"ws{p}", project_id, f"{n}", state="Todo")
    plane.reset_log()

    run = reconcile(full=True)

    pages, states_reads = projects * 2, projects
    assert (run.complete, run.items_seen) == (True, projects * 150)
    assert run.plane_calls == len(plane.requests) == pages + states_reads
    assert len(list_calls(plane)) == pages
    assert len(plane.calls("GET", "/states/")) == states_reads
    assert all(r.query.get("per_page") == "100" for r in list_calls(plane))


@pytest.mark.parametrize("items_per_project,projects", [(1000, 1), (1000, 10)])
def test_a_full_sweep_costs_one_call_per_page_and_constant_queries_per_page(
    plane, settings, items_per_project, projects
):
    settings.PLANE_API_PATHS = "work-items"
    settings.PLANE_RATE_LIMIT_PER_MINUTE = 100_000
    plane.set_rate_limit(100_000, 60)
    tasks, rows = [], []
    for p in range(projects):
        project_id = plane.add_project(f"ws{p}", states=DEFAULT_STATES + PIPELINE_STATES)
        PlaneProject.objects.create(project_id=project_id, workspace_slug=f"ws{p}", repo="shop")
        for n in range(items_per_project):
            item = plane.add_work_item(f"ws{p}", project_id, f"{n}", state="Analysis")
            tasks.append(Task(work_item_id=item, project_id=project_id, stage="analysis"))
    Task.objects.bulk_create(tasks, batch_size=500)
    now, analysis = timezone.now(), {}
    for task in Task.objects.all():
        project = str(task.project_id)
        analysis.setdefault(project, plane.state_id(project, "Analysis"))
        rows.append(
            BoardStatus(
                task=task,
                desired_key="analysis",
                desired_version=1,
                synced_version=1,
                desired_at=now,
                shown_state_id=analysis[project],
                shown_key="analysis",
            )
        )
    BoardStatus.objects.bulk_create(rows, batch_size=500)
    for project in PlaneProject.objects.all():  # states known: only the list is read
        reconcile(full=False, project_id=str(project.project_id))
    plane.reset_log()

    with CaptureQueriesContext(connection) as queries:
        run = reconcile(full=True)

    pages = projects * items_per_project // 100
    assert (run.complete, run.items_seen, kinds(run)) == (True, projects * items_per_project, [])
    assert run.plane_calls == len(plane.requests) == pages  # within the 110 the issue allows
    # Per page: the budget's slot, the lease's renewal, the states, the page's tasks and
    # rows, their listed_at, the cursor (12 queries measured at 1,000 and at 10,000 items);
    # per run: its record.
    assert len(queries) <= 12 * pages + 10, len(queries)


# --- running it ------------------------------------------------------------------------------


def test_the_command_prints_a_summary_and_the_run_as_json(plane, synced):
    task = synced(stage="code_review")
    plane.set_state(str(task.work_item_id), "Analysis")
    out = io.StringIO()

    call_command("reconcile", "--json", stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert "incremental sweep" in lines[0] and "1 reasserted" in lines[0]
    record = json.loads(lines[-1])
    assert set(record) == {
        "id",
        "kind",
        "started_at",
        "finished_at",
        "complete",
        "projects",
        "items_seen",
        "plane_calls",
        "repairs",
    }
    assert (record["kind"], record["complete"], record["projects"]) == ("incremental", True, 1)
    assert record["repairs"] == [
        {
            "work_item_id": str(task.work_item_id),
            "project_id": str(task.project_id),
            "kind": "reasserted",
            "from": "Analysis",
            "to": "code_review",
            "reason": "shows Analysis, the truth shows code_review: the sync puts it back",
        }
    ]
    full = io.StringIO()
    project = str(task.project_id)
    call_command("reconcile", "--full", "--project", project, "--json", stdout=full)
    assert json.loads(full.getvalue().splitlines()[-1])["kind"] == "full"


def test_the_command_refuses_an_unknown_project(plane_project):
    with pytest.raises(CommandError, match="not a project UUID"):
        call_command("reconcile", "--project", "nope")
    with pytest.raises(CommandError, match="is not configured"):
        call_command("reconcile", "--project", str(uuid.uuid4()))


def test_a_run_without_plane_configured_is_recorded_incomplete(settings, db):
    settings.PLANE_API_URL = ""
    run = reconcile(full=True)
    assert not run.complete and "not configured" in run.note


def test_the_switchboard_turns_scheduled_sweeps_off_and_records_who(plane, plane_project):
    switchboard.update("admin:ops", reconcile_enabled=False)
    assert scheduled_sweep(full=True) == {"skipped": "reconcile_enabled is off"}
    assert ReconcileRun.objects.count() == 0 and plane.requests == []
    change = SwitchboardChange.objects.get(field="reconcile_enabled")
    assert (change.who, change.old, change.new) == ("admin:ops", "True", "False")
    switchboard.update("admin:ops", reconcile_enabled=True)
    assert scheduled_sweep(full=False)["complete"] is True


def test_the_schedules_run_the_sweep_through_the_cluster(plane, plane_project, settings):
    from django_q.tasks import async_task

    plane.add_work_item("acme", str(plane_project.project_id), "x", state="To Analyse")
    async_task("plane_integration.reconcile.scheduled_sweep", full=False)
    run_queued_tasks()
    run = ReconcileRun.objects.get()
    assert (run.trigger, run.complete, run.repair_count) == ("schedule", True, 1)


def test_a_project_another_run_is_sweeping_is_left_to_it(plane, plane_project):
    ProjectSweep.objects.create(
        project=plane_project, claimed_until=timezone.now() + timedelta(minutes=1), claim="x"
    )
    run = reconcile(full=True)
    assert (run.complete, run.projects, plane.requests) == (False, 0, [])
    assert "another run is sweeping it" in run.note


def test_a_run_that_outlived_its_lease_stops_before_it_acts(
    plane, plane_project, monkeypatch, caplog
):
    project = str(plane_project.project_id)
    missed = plane.add_work_item("acme", project, "missed", state="To Analyse")  # page 2
    for n in range(120):
        plane.add_work_item("acme", project, f"{n}", state="Todo")
    read = PlaneClient.work_items_page

    def slow_page(client, *args, **kwargs):
        result = read(client, *args, **kwargs)
        if kwargs.get("cursor"):  # the second page came so late that the lease ran out...
            ProjectSweep.objects.update(  # ...and another run took the project over
                claim="other", claimed_until=timezone.now() + timedelta(minutes=1)
            )
        return result

    monkeypatch.setattr(PlaneClient, "work_items_page", slow_page)
    with caplog.at_level(logging.INFO, logger="plane_integration.reconcile"):
        run = reconcile(full=True)

    assert not run.complete and "took over the project's lease" in run.note
    (span,) = [r for r in caplog.records if getattr(r, "event", "") == "reconcile_project"]
    assert span.lease_lost is True
    assert not Task.objects.filter(work_item_id=missed).exists()  # left to the other run
    assert ProjectSweep.objects.get().claim == "other"


def test_a_run_renews_its_lease_with_every_page(plane, plane_project, monkeypatch):
    for n in range(120):
        plane.add_work_item("acme", str(plane_project.project_id), f"{n}", state="Todo")
    read, held = PlaneClient.work_items_page, []

    def page(client, *args, **kwargs):
        held.append(ProjectSweep.objects.get().claimed_until)
        return read(client, *args, **kwargs)

    monkeypatch.setattr(PlaneClient, "work_items_page", page)
    assert reconcile(full=True).complete
    assert len(held) == 2 and held[1] > held[0]


@pytest.mark.postgres
def test_two_runs_at_once_sweep_a_project_once(plane, plane_project, settings):
    settings.PLANE_API_PATHS = "work-items"
    plane.delay_for(60, 0.2)  # slow pages keep the first run inside its lease
    for n in range(150):
        plane.add_work_item("acme", str(plane_project.project_id), f"{n}", state="Todo")
    plane.add_work_item("acme", str(plane_project.project_id), "new", state="To Analyse")

    runs = at_once(lambda: reconcile(full=True), count=3)

    assert sorted(r.projects for r in runs) == [0, 0, 1]
    assert len(list_calls(plane)) == 2
    assert ReconcileRepair.objects.count() == Task.objects.count() == 1


def test_the_admin_lists_runs_with_their_repairs(plane, synced, admin_client):
    task = synced(stage="code_review")
    plane.set_state(str(task.work_item_id), "Analysis")
    run = reconcile(full=False)
    listing = admin_client.get("/admin/plane_integration/reconcilerun/?has_repairs=yes")
    assert listing.status_code == 200 and f"/reconcilerun/{run.pk}/" in listing.content.decode()
    page = admin_client.get(f"/admin/plane_integration/reconcilerun/{run.pk}/change/")
    assert page.status_code == 200 and "Reasserted" in page.content.decode()  # the kind column


def test_a_staff_user_without_permission_cannot_see_the_runs(client, db):
    user = make_user("viewer")
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get("/admin/plane_integration/reconcilerun/").status_code == 403


def test_a_sweep_that_starts_tasks_tells_people_the_webhook_may_be_off(plane, plane_project):
    from operations.models import Notification
    from operations.sweeps import webhooks_missed

    item = plane.add_work_item("acme", str(plane_project.project_id), "x", state="To Analyse")
    reconcile(full=False)

    assert webhooks_missed() == 1
    assert webhooks_missed() == 0  # told once per run
    note = Notification.objects.get(kind="reconciler_missed")
    assert "webhook may be off" in note.subject and item in note.body


def test_a_project_plane_refuses_is_shown_and_leaves_the_others_complete(
    plane, plane_project, monkeypatch
):
    from operations import verdict

    refused = PlaneProject.objects.create(
        project_id=uuid.uuid4(), workspace_slug="acme", repo="gone"
    )
    item = plane.add_work_item("acme", str(plane_project.project_id), "x", state="To Analyse")

    run = reconcile(full=False)

    assert run.complete and Task.objects.filter(work_item_id=item).exists()
    refused.refresh_from_db()
    assert "Plane refused it" in refused.refused and "404" in refused.refused
    monkeypatch.setattr(verdict, "check_cluster", lambda: {"ok": True})
    problem = next(p for p in verdict.problems() if p.key == "project_refused")
    assert problem.severity == "red" and str(refused.project_id) in problem.text


def test_a_sweep_stopped_by_the_budget_says_why_and_resumes_when_the_budget_allows(
    plane, plane_project, settings, admin_client
):
    from django_q.models import Schedule

    settings.PLANE_RATE_LIMIT_PER_MINUTE = 4
    for n in range(450):
        plane.add_work_item("acme", str(plane_project.project_id), f"{n}", state="Todo")

    run = reconcile(full=True)

    assert not run.complete and run.why_incomplete == "budget spent"
    resume = Schedule.objects.get(name="reconcile resume (full)")
    assert resume.func == "plane_integration.reconcile.scheduled_sweep"
    assert resume.next_run <= timezone.now() + timedelta(
        seconds=settings.PLANE_RATE_WINDOW_SECONDS + 1
    )
    page = admin_client.get("/admin/").content.decode()
    assert "incomplete: budget spent" in page


def test_a_repair_that_comes_back_on_every_sweep_is_reported_once_as_stuck(
    plane, synced, admin_client
):
    """Something keeps moving the item back (a Plane automation, say): every sweep puts it
    back, and the third time it is recorded as stuck, then not again."""
    from operations.verdict import problems

    task = synced(stage="code_review")
    recorded = []
    for _ in range(5):
        plane.set_state(str(task.work_item_id), "Deploying")
        recorded.append(kinds(reconcile(full=False)))
        sync_board(max_seconds=10)
        assert shown(plane, task.work_item_id) == "Code Review"  # the repair itself still runs
    reasserted = [("reasserted", "Deploying", "code_review")]
    assert recorded == [reasserted, reasserted, reasserted, [], []]
    repairs = ReconcileRepair.objects.filter(work_item_id=task.work_item_id)
    assert [r.stuck for r in repairs] == [False, False, True]
    [problem] = [p for p in problems() if p.key == "repair_stuck"]
    assert task.title in problem.text or (task.identifier and task.identifier in problem.text)
    metrics = admin_client.get("/metrics").content.decode()
    assert "stageboard_repairs_stuck 1.0" in metrics
