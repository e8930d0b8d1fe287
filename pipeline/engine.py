"""The stage engine: the one place that changes a task's stage, deploy phase or approval.

Every entry point works the same way, in one transaction:
1. lock the task's row, so concurrent callers queue instead of racing;
2. if the task already is where the caller wants it, return unchanged (re-driving a
   change that already happened is a no-op, not an error);
3. check the transition table and the gates; a refusal raises `TransitionRefused`
   with the reason and nothing is written;
4. save the task, record a `StageChange`, send `stage_entered` (window arming);
5. after commit, send `task_changed` (board indication).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from pipeline import deployments, gates
from pipeline.models import StageChange, Task
from pipeline.signals import stage_entered, task_changed
from pipeline.stages import (
    TERMINAL_STAGES,
    DeployPhase,
    Stage,
    phase_transition_refusal,
    stage_transition_refusal,
)

logger = logging.getLogger(__name__)

# The fields only this module writes; copied back onto the caller's instance after a change.
ENGINE_FIELDS = ("stage", "deploy_phase", "deploy_approved_by", "deploy_approved_at", "cycle")
# Entering deploy, or a new cycle, starts with no deploy behind it.
_NO_DEPLOY = {
    "deploy_phase": DeployPhase.NONE,
    "deploy_approved_by": "",
    "deploy_approved_at": None,
}


class TransitionRefused(Exception):
    """The transition is not allowed or a gate failed; nothing was changed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    task: Task
    changed: bool
    # The last change recorded by the call (a deploy's `succeed` records two).
    change: StageChange | None = None


def create_task(
    *, work_item_id, project_id, title: str = "", repo: str = "", identifier: str = ""
) -> tuple[Task, bool]:
    """Create the task of a work item in `analysis`, or return the one that exists.

    Safe under concurrent calls: the unique work item id decides, not a prior read. A new
    task is announced with `task_changed` (and `change=None`) once it is committed.
    """
    task, created = Task.objects.get_or_create(
        work_item_id=work_item_id,
        defaults={
            "project_id": project_id,
            "title": title,
            "repo": repo,
            "identifier": identifier.upper(),
        },
    )
    if created:
        transaction.on_commit(lambda: _announce(task, None))
    return task, created


def advance_stage(task: Task, to: str, *, caller: str, reason: str = "") -> Outcome:
    """Move the task to stage `to` if the machine and its gates allow it."""
    to = _parse_stage(to)
    with _locked(task, caller) as locked:
        if locked.stage == to:
            return _unchanged(task, locked)
        change = _change_stage(locked, to, caller=caller, reason=reason)
    return _changed(task, locked, change)


def reopen_task(task: Task, *, caller: str, reason: str = "") -> Outcome:
    """The human control "move to To Analyse": a finished task starts a new cycle.

    A task still in progress is left alone.
    """
    with _locked(task, caller) as locked:
        if locked.stage not in TERMINAL_STAGES:
            return _unchanged(task, locked)
        change = _apply(
            locked,
            caller=caller,
            reason=reason,
            stage=Stage.ANALYSIS,
            cycle=locked.cycle + 1,
            **_NO_DEPLOY,
        )
    return _changed(task, locked, change)


def request_deploy_approval(task: Task, *, caller: str, reason: str = "") -> Outcome:
    return _set_phase(task, DeployPhase.AWAITING_APPROVAL, "request-approval", caller, reason)


def start_deploy(
    task: Task, *, caller: str, reason: str = "", details: dict | None = None
) -> Outcome:
    """Start the approved deploy and record it as a `Deployment` with `details`
    (environment, commit_sha, ref, ci_url, committed_at; validated by the caller).
    Re-sending a start that happened changes nothing, its details included."""
    with _locked(task, caller) as locked:
        _require_deploy_stage(locked, "start")
        if locked.deploy_phase == DeployPhase.DEPLOYING:
            return _unchanged(task, locked)
        change = _change_phase(locked, DeployPhase.DEPLOYING, caller=caller, reason=reason)
        deployments.open_deployment(locked, caller=caller, details=details)
    return _changed(task, locked, change)


def approve_deploy(task: Task, *, caller: str, reason: str = "") -> Outcome:
    """Record an operator's approval of a deploy that awaits it."""
    with _locked(task, caller) as locked:
        _require_deploy_stage(locked, "approve")
        if locked.deploy_approved_at is not None:
            return _unchanged(task, locked)
        if locked.deploy_phase != DeployPhase.AWAITING_APPROVAL:
            raise TransitionRefused(
                f"approve needs a deploy awaiting approval; the deploy phase is "
                f"{locked.deploy_phase or 'not requested'}"
            )
        change = _apply(
            locked,
            caller=caller,
            reason=reason or "deploy approved",
            deploy_approved_by=caller,
            deploy_approved_at=timezone.now(),
        )
    return _changed(task, locked, change)


def finish_deploy(task: Task, *, succeeded: bool, caller: str, reason: str = "") -> Outcome:
    """Record the deploy's result and move on: to `done`, or back to `development`."""
    phase = DeployPhase.SUCCEEDED if succeeded else DeployPhase.FAILED
    stage = Stage.DONE if succeeded else Stage.DEVELOPMENT
    action = "succeed" if succeeded else "fail"
    with _locked(task, caller) as locked:
        if locked.stage == stage and (
            locked.deploy_phase == phase or deployments.finished_as(locked, succeeded=succeeded)
        ):
            return _unchanged(task, locked)  # re-sent: the deploy left with this result
        _require_deploy_stage(locked, action)
        _change_phase(locked, phase, caller=caller, reason=reason)
        # Recorded before the stage change: entering done may arm the monitor on it.
        deployments.finish(locked, succeeded=succeeded, caller=caller)
        change = _change_stage(locked, stage, caller=caller, reason=reason)
    return _changed(task, locked, change)


def record_note(task: Task, *, caller: str, reason: str) -> StageChange:
    """Record in the task's history a decision that changes no stage, phase or approval
    (an operator accepting a deploy, or aborting its window). Nothing is announced: the
    truth did not change."""
    with _locked(task, caller) as locked:
        return StageChange.objects.create(
            task=locked,
            cycle=locked.cycle,
            from_stage=locked.stage,
            to_stage=locked.stage,
            from_phase=locked.deploy_phase,
            to_phase=locked.deploy_phase,
            caller=caller,
            reason=reason,
        )


# --- internals ---------------------------------------------------------------------------


def _parse_stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        raise ValueError(f"unknown stage {value!r}; known: {', '.join(Stage)}") from None


@contextmanager
def _locked(task: Task, caller: str) -> Iterator[Task]:
    """Open the transaction and hold the task's row lock for its duration."""
    if not caller:
        raise ValueError("caller is required: say who asks for the change")
    with transaction.atomic():
        yield Task.objects.select_for_update().get(pk=task.pk)


def _require_deploy_stage(locked: Task, action: str) -> None:
    if locked.stage != Stage.DEPLOY:
        raise TransitionRefused(f"{action} needs a task in deploy; the task is in {locked.stage}")


def _refuse_unless_allowed(kind: str, locked: Task, to: str, table_refusal: str | None) -> None:
    """Raise TransitionRefused if the table, or else a gate bound to the move, refuses it."""
    if table_refusal is None:
        failed = gates.first_failure(kind, locked, to)
        table_refusal = failed and f"{failed.gate}: {failed.reason}"
    if table_refusal:
        raise TransitionRefused(table_refusal)


def _change_stage(locked: Task, to: Stage, *, caller: str, reason: str) -> StageChange:
    refusal = stage_transition_refusal(Stage(locked.stage), to)
    _refuse_unless_allowed("stage", locked, to, refusal)
    fields = {"stage": to, **(_NO_DEPLOY if to == Stage.DEPLOY else {})}
    if locked.stage == Stage.DEPLOY and to != Stage.DEPLOY:
        # A phase belongs to a task in deploy: leaving it clears the phase (the history
        # row says from which), and the deploy's result is the task's `last_deploy`.
        fields["deploy_phase"] = DeployPhase.NONE
    return _apply(locked, caller=caller, reason=reason, **fields)


def _change_phase(locked: Task, to: DeployPhase, *, caller: str, reason: str) -> StageChange:
    refusal = phase_transition_refusal(DeployPhase(locked.deploy_phase), to)
    _refuse_unless_allowed("phase", locked, to, refusal)
    return _apply(locked, caller=caller, reason=reason, deploy_phase=to)


def _set_phase(task: Task, to: DeployPhase, action: str, caller: str, reason: str) -> Outcome:
    with _locked(task, caller) as locked:
        _require_deploy_stage(locked, action)
        if locked.deploy_phase == to:
            return _unchanged(task, locked)
        change = _change_phase(locked, to, caller=caller, reason=reason)
    return _changed(task, locked, change)


def _apply(locked: Task, *, caller: str, reason: str, **fields) -> StageChange:
    """Save the new values, record them, and hook the other layers in."""
    from_stage, from_phase = locked.stage, locked.deploy_phase
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=[*fields, "updated_at"])
    if from_stage == Stage.DEPLOY and locked.stage != Stage.DEPLOY:
        deployments.abort_running(locked, f"the task left deploy for {locked.stage}")
    change = StageChange.objects.create(
        task=locked,
        cycle=locked.cycle,
        from_stage=from_stage,
        to_stage=locked.stage,
        from_phase=from_phase,
        to_phase=locked.deploy_phase,
        caller=caller,
        reason=reason,
    )
    logger.info(
        "task %s: %s by %s (%s)",
        locked.work_item_id,
        change,
        caller,
        reason or "no reason given",
        extra={"work_item": str(locked.work_item_id), "caller": caller, "reason": reason},
    )
    if from_stage != locked.stage:
        stage_entered.send(sender=Task, task=locked, change=change)
    transaction.on_commit(lambda: _announce(locked, change))
    return change


def _announce(task: Task, change: StageChange | None) -> None:
    for receiver, error in task_changed.send_robust(sender=Task, task=task, change=change):
        if isinstance(error, Exception):
            logger.error(
                "task %s: %r failed after %s: %s",
                task.work_item_id,
                receiver,
                change,
                error,
                exc_info=error,
            )


def _sync(task: Task, locked: Task) -> None:
    for name in (*ENGINE_FIELDS, "updated_at"):
        setattr(task, name, getattr(locked, name))


def _unchanged(task: Task, locked: Task) -> Outcome:
    _sync(task, locked)
    return Outcome(task=task, changed=False)


def _changed(task: Task, locked: Task, change: StageChange) -> Outcome:
    _sync(task, locked)
    return Outcome(task=task, changed=True, change=change)
