"""The stage engine against the database: what it writes, refuses and announces."""

from itertools import product

import pytest
from django.db import connection
from django.dispatch import receiver

from pipeline import engine
from pipeline.models import StageChange, Task
from pipeline.signals import stage_entered, task_changed
from pipeline.stages import Stage
from tests.concurrency import at_once
from tests.conftest import PROJECT, WORK_ITEM
from tests.test_stages_and_gates import ALLOWED

pytestmark = pytest.mark.django_db


def succeed(task: Task, **kwargs):
    return engine.finish_deploy(task, succeeded=True, **kwargs)


def fail(task: Task, **kwargs):
    return engine.finish_deploy(task, succeeded=False, **kwargs)


def snapshot(task: Task) -> tuple:
    task.refresh_from_db()
    return (
        task.stage,
        task.deploy_phase,
        task.deploy_approved_at,
        task.cycle,
        task.updated_at,
        task.history.count(),
    )


@pytest.mark.parametrize("current,to", [(a, b) for a, b in product(Stage, Stage) if a != b])
def test_it_makes_every_allowed_move_and_refuses_every_other(make_task, current, to):
    # A deploy that succeeded, so that only the transition table decides.
    task = make_task(stage=current, deploy_phase="succeeded" if current == "deploy" else "")
    before = snapshot(task)
    if (current, to) in ALLOWED:
        outcome = engine.advance_stage(task, to, caller="ci", reason="moving on")
        assert outcome.changed
        assert task.stage == to
        assert Task.objects.get(pk=task.pk).stage == to
        change = task.history.get()
        assert (change.from_stage, change.to_stage, change.caller, change.reason) == (
            current,
            to,
            "ci",
            "moving on",
        )
        assert outcome.change == change
    else:
        with pytest.raises(engine.TransitionRefused) as refused:
            engine.advance_stage(task, to, caller="ci")
        assert str(current) in refused.value.reason
        assert snapshot(task) == before


@pytest.mark.parametrize("stage", list(Stage))
def test_redriving_a_move_that_already_happened_is_a_no_op(make_task, stage):
    task = make_task(stage=stage)
    before = snapshot(task)
    outcome = engine.advance_stage(task, stage, caller="ci")
    assert not outcome.changed and outcome.change is None
    assert snapshot(task) == before


@pytest.mark.parametrize("phase", ["", "awaiting_approval", "deploying", "failed"])
def test_the_deploy_gate_refuses_done_until_the_deploy_succeeded(make_task, phase):
    task = make_task(stage="deploy", deploy_phase=phase)
    before = snapshot(task)
    with pytest.raises(engine.TransitionRefused) as refused:
        engine.advance_stage(task, "done", caller="ci")
    assert refused.value.reason.startswith("check_deploy_status: deploy -> done needs a succeeded")
    assert snapshot(task) == before


def test_it_rejects_an_unknown_stage_and_a_missing_caller(make_task):
    task = make_task()
    with pytest.raises(ValueError, match="unknown stage 'shipped'"):
        engine.advance_stage(task, "shipped", caller="ci")
    with pytest.raises(ValueError, match="caller is required"):
        engine.advance_stage(task, "development", caller="")
    assert task.history.count() == 0


def test_entering_deploy_starts_a_fresh_deploy(make_task):
    task = make_task(stage="code_review", deploy_phase="failed", deploy_approved_by="admin:old")
    engine.advance_stage(task, "deploy", caller="ci")
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase, task.deploy_approved_by, task.deploy_approved_at) == (
        "deploy",
        "",
        "",
        None,
    )


def test_a_deploy_runs_through_its_phases_to_done(make_task):
    task = make_task(stage="code_review")
    engine.advance_stage(task, "deploy", caller="ci")
    engine.request_deploy_approval(task, caller="ci")
    assert task.deploy_phase == "awaiting_approval"
    engine.approve_deploy(task, caller="admin:ops", reason="release window open")
    assert task.deploy_approved_by == "admin:ops" and task.deploy_approved_at is not None
    engine.start_deploy(task, caller="ci")
    assert task.deploy_phase == "deploying"
    outcome = engine.finish_deploy(task, succeeded=True, caller="ci", reason="pipeline green")
    assert outcome.changed
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("done", "")  # leaving deploy clears the phase
    history = [
        (c.from_stage, c.to_stage, c.from_phase, c.to_phase, c.caller) for c in task.history.all()
    ]
    assert history == [
        ("code_review", "deploy", "", "", "ci"),
        ("deploy", "deploy", "", "awaiting_approval", "ci"),
        ("deploy", "deploy", "awaiting_approval", "awaiting_approval", "admin:ops"),
        ("deploy", "deploy", "awaiting_approval", "deploying", "ci"),
        ("deploy", "deploy", "deploying", "succeeded", "ci"),
        ("deploy", "done", "succeeded", "", "ci"),
    ]
    assert task.history.all()[2].reason == "release window open"


def test_a_failed_deploy_goes_back_to_development(make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=False, caller="ci", reason="smoke tests red")
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("development", "")
    assert task.history.last().from_phase == "failed"
    assert task.history.last().reason == "smoke tests red"


@pytest.mark.parametrize(
    "action,stage,phase",
    [
        (engine.request_deploy_approval, "deploy", "awaiting_approval"),
        (engine.start_deploy, "deploy", "deploying"),
        (succeed, "done", "succeeded"),
        (fail, "development", "failed"),
    ],
)
def test_redriving_a_deploy_action_is_a_no_op(make_task, action, stage, phase):
    task = make_task(stage=stage, deploy_phase=phase)
    before = snapshot(task)
    assert not action(task, caller="ci").changed
    assert snapshot(task) == before


def test_approving_twice_keeps_the_first_approval(make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    engine.approve_deploy(task, caller="admin:first")
    before = snapshot(task)
    assert not engine.approve_deploy(task, caller="admin:second").changed
    assert snapshot(task) == before
    assert task.deploy_approved_by == "admin:first"


@pytest.mark.parametrize(
    "action,stage,phase,reason",
    [
        (engine.request_deploy_approval, "development", "",
         "request-approval needs a task in deploy; the task is in development"),
        (engine.request_deploy_approval, "deploy", "deploying",
         "deploy phase deploying cannot become awaiting_approval"),
        (engine.approve_deploy, "code_review", "", "approve needs a task in deploy"),
        (engine.approve_deploy, "deploy", "",
         "approve needs a deploy awaiting approval; the deploy phase is not requested"),
        (engine.start_deploy, "deploy", "", "deploy phase not requested cannot become deploying"),
        (engine.start_deploy, "deploy", "awaiting_approval",
         "check_deploy_approved: the deploy has not been approved"),
        (succeed, "deploy", "awaiting_approval",
         "deploy phase awaiting_approval cannot become succeeded"),
        (fail, "cancelled", "", "fail needs a task in deploy; the task is in cancelled"),
        (succeed, "done", "", "succeed needs a task in deploy; the task is in done"),
    ],
)  # fmt: skip
def test_a_deploy_action_out_of_turn_is_refused_and_changes_nothing(
    make_task, action, stage, phase, reason
):
    task = make_task(stage=stage, deploy_phase=phase)
    before = snapshot(task)
    with pytest.raises(engine.TransitionRefused) as refused:
        action(task, caller="ci")
    assert refused.value.reason.startswith(reason)
    assert snapshot(task) == before


@pytest.mark.parametrize("terminal", ["done", "cancelled"])
def test_reopening_a_finished_task_starts_a_new_cycle(make_task, terminal):
    task = make_task(stage=terminal, deploy_phase="succeeded", deploy_approved_by="admin:ops")
    outcome = engine.reopen_task(task, caller="plane:alice", reason="moved to To Analyse")
    assert outcome.changed
    task.refresh_from_db()
    assert (task.stage, task.cycle, task.deploy_phase, task.deploy_approved_by) == (
        "analysis",
        2,
        "",
        "",
    )
    change = task.history.get()
    assert (change.from_stage, change.to_stage, change.cycle) == (terminal, "analysis", 2)


@pytest.mark.parametrize("stage", ["analysis", "development", "code_review", "deploy"])
def test_reopening_leaves_a_task_in_progress_alone(make_task, stage):
    task = make_task(stage=stage)
    before = snapshot(task)
    assert not engine.reopen_task(task, caller="plane:alice").changed
    assert snapshot(task) == before


def test_create_task_makes_one_task_per_work_item(db):
    first, created = engine.create_task(
        work_item_id="965752bc-110f-44c5-b119-4cd9510d58eb",
        project_id="ab63de3a-de3c-4684-b251-d1920ce5807d",
        title="Fix login",
    )
    again, created_again = engine.create_task(
        work_item_id="965752bc-110f-44c5-b119-4cd9510d58eb",
        project_id="ab63de3a-de3c-4684-b251-d1920ce5807d",
        title="Other title",
    )
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk and again.title == "Fix login" and again.stage == "analysis"


# --- hook points -------------------------------------------------------------------------


def test_stage_entered_runs_inside_the_transaction_and_task_changed_after_commit(
    make_task, django_capture_on_commit_callbacks
):
    seen = []

    @receiver(stage_entered, weak=False)
    def arm(sender, task, change, **kwargs):
        seen.append(("stage_entered", task.stage, connection.in_atomic_block))

    @receiver(task_changed, weak=False)
    def show(sender, task, change, **kwargs):
        seen.append(("task_changed", task.stage, change.to_phase))

    try:
        task = make_task(stage="deploy", deploy_phase="deploying")
        with django_capture_on_commit_callbacks(execute=True):
            engine.finish_deploy(task, succeeded=True, caller="ci")
            assert [s[0] for s in seen] == ["stage_entered"]  # the board waits for commit
    finally:
        stage_entered.disconnect(arm)
        task_changed.disconnect(show)
    assert seen == [
        ("stage_entered", "done", True),
        ("task_changed", "done", "succeeded"),  # the phase change
        ("task_changed", "done", ""),  # the stage change, which clears the phase
    ]


def test_a_failing_in_transaction_hook_refuses_the_whole_change(make_task):
    def broken_arming(sender, **kwargs):
        raise RuntimeError("window table unavailable")

    stage_entered.connect(broken_arming, weak=False)
    try:
        task = make_task(stage="deploy", deploy_phase="deploying")
        before = snapshot(task)
        with pytest.raises(RuntimeError):
            engine.finish_deploy(task, succeeded=True, caller="ci")
    finally:
        stage_entered.disconnect(broken_arming)
    assert snapshot(task) == before


def test_a_failing_board_hook_never_undoes_the_truth(
    make_task, django_capture_on_commit_callbacks, caplog
):
    def broken_board(sender, **kwargs):
        raise ConnectionError("plane is down")

    task_changed.connect(broken_board, weak=False)
    try:
        task = make_task(stage="analysis")
        with django_capture_on_commit_callbacks(execute=True):
            outcome = engine.advance_stage(task, "development", caller="ci")
    finally:
        task_changed.disconnect(broken_board)
    assert outcome.changed
    assert Task.objects.get(pk=task.pk).stage == "development"
    assert "plane is down" in caplog.text


# --- concurrency -------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_drivers_finishing_one_deploy_at_once_record_it_once(make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")

    def finish():
        mine = Task.objects.get(pk=task.pk)
        return engine.finish_deploy(mine, succeeded=True, caller="ci").changed

    assert sorted(at_once(finish)) == [False, False, False, True]
    assert StageChange.objects.filter(task=task, to_stage="done", from_stage="deploy").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_drivers_creating_one_work_items_task_at_once_make_one_task():
    def create():
        return engine.create_task(work_item_id=WORK_ITEM, project_id=PROJECT, title="Fix")[1]

    assert sorted(at_once(create)) == [False, False, False, True]
    assert Task.objects.filter(work_item_id=WORK_ITEM).count() == 1


def test_a_new_task_is_announced_after_commit_and_an_existing_one_is_not(
    db, django_capture_on_commit_callbacks
):
    seen = []

    def listen(sender, task, change, **kwargs):
        seen.append((str(task.work_item_id), change))

    task_changed.connect(listen, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            engine.create_task(work_item_id=WORK_ITEM, project_id=PROJECT)
            assert seen == []  # not before the commit
        with django_capture_on_commit_callbacks(execute=True):
            engine.create_task(work_item_id=WORK_ITEM, project_id=PROJECT)
    finally:
        task_changed.disconnect(listen)
    assert seen == [(WORK_ITEM, None)]
