"""The deploy status guard, its verdict log and the runtime switchboard."""

import logging
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MonitorWindow
from pipeline import engine, switchboard
from pipeline.models import Switchboard, SwitchboardChange, Task
from plane_integration import board, setters
from plane_integration.guard import Verdict, decide
from plane_integration.models import GuardVerdict
from plane_integration.setters import Result

pytestmark = pytest.mark.django_db

# --- the pure decision ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stage,active,verdict",
    [
        ("analysis", False, Verdict.ALLOW),
        ("development", False, Verdict.ALLOW),
        ("code_review", False, Verdict.ALLOW),
        ("deploy", False, Verdict.ALLOW),
        ("done", True, Verdict.ALLOW),
        ("done", False, Verdict.CONVERGE_DONE),
        ("cancelled", False, Verdict.SUPPRESS),
        ("cancelled", True, Verdict.SUPPRESS),
        (None, False, Verdict.ALLOW),
    ],
)
@pytest.mark.parametrize("target", ["awaiting_deploy", "deploying", "monitoring"])
def test_decide(stage, active, verdict, target):
    decision = decide(stage, target, active)
    assert decision.verdict is verdict
    assert decision.reason


def test_decide_never_raises():
    class Weird(str):
        def __eq__(self, other):
            raise RuntimeError("boom")

        __hash__ = str.__hash__

    decision = decide(Weird("done"), "monitoring", False)
    assert decision.verdict is Verdict.ALLOW and "guard failed" in decision.reason


# --- the guard on the setters, against the stand-in ------------------------------------------


@pytest.fixture
def finished(plane, board_task):
    """A done task of the self-hosting repo (guarded by default) whose board shows Done."""
    task = board_task(stage="done", deploy_phase="succeeded", repo="stageboard")
    assert setters.set_issue_done(task, caller="board-sync").result is Result.SENT
    plane.reset_log()
    return task


def shown(plane, task) -> str:
    state = plane.work_item(str(task.work_item_id))["state"]
    return next(s["name"] for s in plane.states(str(task.project_id)) if s["id"] == state)


def test_the_original_flap_is_stopped_the_board_holds_done(plane, finished, caplog):
    with caplog.at_level(logging.INFO, logger="plane_integration.setters"):
        first = setters.set_issue_awaiting_deploy(finished, caller="stale-ci", reason="retry")
        second = setters.set_issue_monitoring(finished, caller="stale-ci", reason="retry")
    assert (first.result, second.result) == (Result.ALREADY_SHOWN, Result.ALREADY_SHOWN)
    assert (first.key, second.key) == ("done", "done")
    assert shown(plane, finished) == "Done"
    assert plane.requests == []  # no status change sent
    verdicts = list(GuardVerdict.objects.order_by("id"))
    assert [(v.verdict, v.target, v.caller, v.db_stage, v.window_active) for v in verdicts] == [
        ("CONVERGE_DONE", "awaiting_deploy", "stale-ci", "done", False),
        ("CONVERGE_DONE", "monitoring", "stale-ci", "done", False),
    ]
    lines = [r for r in caplog.records if getattr(r, "event", None) == "deploy_status_guard"]
    assert len(lines) == 2
    line = lines[0]
    assert (line.work_item, line.caller, line.target, line.db_stage) == (
        str(finished.work_item_id),
        "stale-ci",
        "awaiting_deploy",
        "done",
    )
    assert (line.window_active, line.verdict) == (False, "CONVERGE_DONE")
    assert "caller's reason: retry" in line.reason


def test_with_the_kill_switch_off_the_statuses_go_through_as_before(plane, finished):
    switchboard.update("admin:ops", deploy_status_guard_enabled=False)
    setters.set_issue_awaiting_deploy(finished, caller="stale-ci")
    assert shown(plane, finished) == "Awaiting Deploy"
    setters.set_issue_monitoring(finished, caller="stale-ci")
    assert shown(plane, finished) == "Monitoring after Deploy"
    assert len(plane.calls("PATCH")) == 2
    assert GuardVerdict.objects.count() == 0


def test_a_cancelled_task_is_suppressed_and_plane_hears_nothing(plane, board_task):
    task = board_task(stage="cancelled", repo="stageboard")
    outcome = setters.set_issue_deploying(task, caller="stale-ci")
    assert outcome.result is Result.SKIPPED and outcome.why.startswith("guard: ")
    assert plane.requests == []
    assert GuardVerdict.objects.get().verdict == "SUPPRESS"


def test_a_done_task_with_an_active_window_is_allowed(plane, finished):
    now = timezone.now()
    MonitorWindow.objects.create(
        task=finished,
        cycle=1,
        repo="stageboard",
        opened_at=now,
        closes_at=now + timedelta(minutes=15),
    )
    outcome = setters.set_issue_monitoring(finished, caller="board-sync")
    assert outcome.result is Result.SENT
    assert shown(plane, finished) == "Monitoring after Deploy"
    verdict = GuardVerdict.objects.get()
    assert (verdict.verdict, verdict.window_active) == ("ALLOW", True)


def test_a_task_in_progress_is_allowed(plane, board_task):
    task = board_task(stage="deploy", deploy_phase="awaiting_approval", repo="stageboard")
    assert setters.set_issue_awaiting_deploy(task, caller="board-sync").result is Result.SENT
    assert shown(plane, task) == "Awaiting Deploy"
    assert GuardVerdict.objects.get().verdict == "ALLOW"


def test_a_repo_outside_the_list_is_allowed_and_logged(plane, board_task):
    task = board_task(stage="done", repo="shop")
    assert setters.set_issue_awaiting_deploy(task, caller="stale-ci").result is Result.SENT
    verdict = GuardVerdict.objects.get()
    assert (verdict.verdict, verdict.repo) == ("ALLOW", "shop")
    assert verdict.reason.startswith("repo shop is not guarded")


def test_an_unknown_work_item_is_allowed_and_logged(plane):
    unknown = str(uuid.uuid4())
    outcome = setters.set_issue_monitoring(unknown, caller="stale-ci")
    assert outcome.result is Result.SKIPPED and "no task for work item" in outcome.why
    verdict = GuardVerdict.objects.get()
    assert (verdict.verdict, verdict.work_item_id, verdict.db_stage) == ("ALLOW", unknown, "")
    assert plane.requests == []


def test_a_work_item_id_finds_its_task(plane, finished):
    setters.set_issue_awaiting_deploy(str(finished.work_item_id), caller="stale-ci")
    assert GuardVerdict.objects.get().verdict == "CONVERGE_DONE"


def test_a_guard_that_fails_inside_allows_and_logs(plane, finished, monkeypatch, caplog):
    def broken(task):
        raise RuntimeError("window table gone")

    monkeypatch.setattr("plane_integration.setters.window_active", broken)
    outcome = setters.set_issue_monitoring(finished, caller="stale-ci")
    assert outcome.result is Result.SENT  # allowed
    verdict = GuardVerdict.objects.get()
    assert verdict.verdict == "ALLOW" and "window table gone" in verdict.reason
    assert "the deploy status guard failed" in caplog.text


def test_the_dispatcher_goes_through_the_guard(plane, finished):
    outcome = setters.set_issue_stage_state(finished, "deploying", caller="stale-ci")
    assert outcome.key == "done"
    assert GuardVerdict.objects.get().verdict == "CONVERGE_DONE"


# --- the switchboard -----------------------------------------------------------------------


def test_the_switchboard_is_seeded_from_the_environment_once(settings):
    settings.ORCH_DEPLOY_STATUS_GUARD_ENABLED = False
    settings.ORCH_DEPLOY_STATUS_GUARD_REPOS = ["stageboard", "shop"]
    settings.ORCH_POST_DEPLOY_MIN_SAMPLES = 7
    row = switchboard.get()
    assert (row.deploy_status_guard_enabled, row.deploy_status_guard_repos) == (
        False,
        "stageboard,shop",
    )
    assert row.post_deploy_min_samples == 7
    settings.ORCH_POST_DEPLOY_MIN_SAMPLES = 9  # later environment changes do not reseed
    assert switchboard.get().post_deploy_min_samples == 7
    assert Switchboard.objects.count() == 1


def test_an_update_is_validated_and_recorded():
    switchboard.update("admin:ops", deploy_status_guard_repos=" shop, stageboard ,shop")
    assert switchboard.get().deploy_status_guard_repos == "shop,stageboard"
    change = SwitchboardChange.objects.get()
    assert (change.who, change.field, change.old, change.new) == (
        "admin:ops",
        "deploy_status_guard_repos",
        "",
        "shop,stageboard",
    )
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        switchboard.update("admin:ops", post_deploy_error_ratio=1.5)
    with pytest.raises(ValidationError):
        switchboard.update("admin:ops", deploy_status_guard_repos="shop; rm -rf /")
    assert SwitchboardChange.objects.count() == 1


def test_the_admin_edits_the_switchboard_with_validation_and_a_record(admin_client):
    page = admin_client.get("/admin/pipeline/switchboard/", follow=True)
    assert page.status_code == 200 and "deploy_status_guard_enabled" in page.content.decode()
    form = {field: getattr(switchboard.get(), field) for field in Switchboard.FIELDS}
    bad = {**form, "post_deploy_min_samples": 0, "deploy_status_guard_repos": "bad name!"}
    refused = admin_client.post("/admin/pipeline/switchboard/1/change/", bad)
    assert refused.status_code == 200  # the form again, with errors
    errors = refused.context["adminform"].form.errors
    assert {"post_deploy_min_samples", "deploy_status_guard_repos"} <= set(errors)
    good = {**form, "deploy_status_guard_enabled": "", "post_deploy_repos": "shop"}
    good = {k: v for k, v in good.items() if v is not False}
    # A kill-switch changes only for a reason, which the change log keeps.
    unexplained = admin_client.post("/admin/pipeline/switchboard/1/change/", good)
    assert "Give a reason for switching deploy status guard enabled" in str(
        unexplained.context["adminform"].form.errors["reason"]
    )
    assert switchboard.get().deploy_status_guard_enabled
    good["reason"] = "the guard blocks a hotfix"
    assert admin_client.post("/admin/pipeline/switchboard/1/change/", good).status_code == 302
    row = switchboard.get()
    assert (row.deploy_status_guard_enabled, row.post_deploy_repos) == (False, "shop")
    changes = {c.field: (c.who, c.old, c.new) for c in SwitchboardChange.objects.all()}
    assert changes == {
        "deploy_status_guard_enabled": ("admin:admin", "True", "False"),
        "post_deploy_repos": ("admin:admin", "", "shop"),
    }
    assert {c.reason for c in SwitchboardChange.objects.all()} == {"the guard blocks a hotfix"}
    assert admin_client.get("/admin/pipeline/switchboardchange/").status_code == 200


def test_the_verdict_log_counts_verdicts_per_day(admin_client, plane, finished):
    setters.set_issue_awaiting_deploy(finished, caller="stale-ci")
    setters.set_issue_monitoring(finished, caller="stale-ci")
    page = admin_client.get("/admin/plane_integration/guardverdict/?verdict=CONVERGE_DONE")
    assert page.status_code == 200
    assert page.context["verdicts_per_day"] == [(timezone.now().date(), [0, 2, 0])]
    assert len(page.context["cl"].result_list) == 2
    filtered = admin_client.get("/admin/plane_integration/guardverdict/?caller=someone-else")
    assert len(filtered.context["cl"].result_list) == 0


def test_a_stale_callers_copy_of_the_task_does_not_fool_the_guard(plane, board_task):
    task = board_task(stage="deploy", deploy_phase="deploying", repo="stageboard")
    stale = Task.objects.get(pk=task.pk)  # loaded while the deploy was running
    switchboard.update("admin:ops", post_deploy_enabled=False)  # no window: done is final
    engine.finish_deploy(task, succeeded=True, caller="ci")
    outcome = setters.set_issue_awaiting_deploy(stale, caller="stale-ci")
    verdict = GuardVerdict.objects.get()
    assert (verdict.verdict, verdict.db_stage) == ("CONVERGE_DONE", "done")
    assert outcome.key == "done"
    assert shown(plane, task) == "Done"


def test_a_degraded_task_converges_to_blocked_not_done(plane, finished):
    now = timezone.now()
    MonitorWindow.objects.create(
        task=finished, cycle=1, repo="stageboard", opened_at=now, closes_at=now,
        state="closed", verdict="DEGRADED",
    )  # fmt: skip
    outcome = setters.set_issue_deploying(finished, caller="stale-ci")
    assert (outcome.key, outcome.result) == ("blocked", Result.SENT)
    assert shown(plane, finished) == "Blocked"


def test_a_status_set_beside_the_truth_is_put_back_by_the_sync(plane, board_task):
    from plane_integration.sync import sync_board

    task = board_task(stage="done", repo="shop")  # not guarded: the stale call goes through
    board.record_desired(task)
    sync_board()
    assert shown(plane, task) == "Done"
    setters.set_issue_awaiting_deploy(task, caller="stale-ci")
    assert shown(plane, task) == "Awaiting Deploy"
    sync_board()
    assert shown(plane, task) == "Done"


def test_a_guarded_setter_never_raises(plane, finished, monkeypatch):
    from django.db import OperationalError

    def locked():
        raise OperationalError("database is locked")

    monkeypatch.setattr("plane_integration.setters.switchboard.get", locked)
    outcome = setters.set_issue_monitoring(finished, caller="stale-ci")
    assert outcome.result is Result.FAILED and "database is locked" in outcome.why


@pytest.mark.parametrize(
    "outcome,expected",
    [
        (
            setters.SetOutcome(Result.ALREADY_SHOWN, "done", "s1"),
            "nothing sent: the work item already shows done (the guard sent done instead of "
            "deploying)",
        ),
        (
            setters.SetOutcome(Result.SENT, "blocked", "s2"),
            "sent: the work item shows blocked now (the guard sent blocked instead of deploying)",
        ),
        (
            setters.SetOutcome(Result.SENT, "deploying", "s3"),
            "sent: the work item shows deploying now",
        ),
        (
            setters.SetOutcome(Result.SKIPPED, "deploying", why="guard: task is done"),
            "nothing sent: guard: task is done",
        ),
    ],
)
def test_set_status_says_what_was_sent(outcome, expected):
    from plane_integration.management.commands.set_status import told

    assert told("deploying", outcome) == expected
