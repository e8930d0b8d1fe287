"""Setters: show one status key on a task's work item, now.

Never-raise: each returns a `SetOutcome` (sent, already shown, skipped, failed with why)
and writes one structured log line. `set_issue_stage_state` is the dispatcher; the
per-key setters are what callers name. The board sync is their main caller.
"""

import logging
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from pipeline import switchboard
from pipeline.logs import log_event
from pipeline.models import Task
from pipeline.stages import Stage
from pipeline.windows import window_active
from plane_integration import board, guard, identifiers, statuses
from plane_integration.client import PlaneClient
from plane_integration.models import GuardVerdict, PlaneProject
from plane_integration.states import cached_states, refresh_states, resolve_key

logger = logging.getLogger(__name__)


class Result(StrEnum):
    SENT = "sent"
    ALREADY_SHOWN = "already_shown"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class SetOutcome:
    result: Result
    key: str
    state_id: str | None = None
    why: str = ""
    status: int | None = None  # Plane's HTTP status, when it answered
    retry_after: float | None = None
    item_gone: bool = False  # Plane answered the PATCH 404: the work item is deleted

    @property
    def done(self) -> bool:
        """Nothing is left to send for this key (sent, already shown, or not ours to send)."""
        return self.result is not Result.FAILED


def set_issue_stage_state(task: Task, key: str, *, caller: str, reason: str = "") -> SetOutcome:
    """The dispatcher: show `key` through its setter (so the guard sees deploy statuses)."""
    setter = SETTERS.get(key)
    if setter is None:
        outcome = SetOutcome(Result.FAILED, key, why=f"unknown status key {key!r}")
        _log(str(task.work_item_id), caller, reason, outcome)
        return outcome
    return setter(task, caller=caller, reason=reason)


def set_issue_to_analyse(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "to_analyse", caller, reason)


def set_issue_analysis(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "analysis", caller, reason)


def set_issue_code_review(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "code_review", caller, reason)


def set_issue_awaiting_deploy(task: Task | str, *, caller: str, reason: str = "") -> SetOutcome:
    return _guarded(task, "awaiting_deploy", caller, reason)


def set_issue_deploying(task: Task | str, *, caller: str, reason: str = "") -> SetOutcome:
    return _guarded(task, "deploying", caller, reason)


def set_issue_monitoring(task: Task | str, *, caller: str, reason: str = "") -> SetOutcome:
    return _guarded(task, "monitoring", caller, reason)


def set_issue_todo(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "todo", caller, reason)


def set_issue_in_progress(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "in_progress", caller, reason)


def set_issue_done(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "done", caller, reason)


def set_issue_blocked(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "blocked", caller, reason)


def set_issue_cancelled(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return _set(task, "cancelled", caller, reason)


SETTERS = {
    "to_analyse": set_issue_to_analyse,
    "analysis": set_issue_analysis,
    "code_review": set_issue_code_review,
    "awaiting_deploy": set_issue_awaiting_deploy,
    "deploying": set_issue_deploying,
    "monitoring": set_issue_monitoring,
    "todo": set_issue_todo,
    "in_progress": set_issue_in_progress,
    "done": set_issue_done,
    "blocked": set_issue_blocked,
    "cancelled": set_issue_cancelled,
}


def _set(task: Task, key: str, caller: str, reason: str) -> SetOutcome:
    try:
        outcome = _show(task, key)
    except Exception as exc:  # never-raise: the truth must not depend on the board
        logger.exception("board status for %s failed inside Stageboard", task.work_item_id)
        outcome = SetOutcome(Result.FAILED, key, why=f"internal error: {exc!r}")
    _log(str(task.work_item_id), caller, reason, outcome)
    return outcome


def _guarded(task_or_id: Task | str, key: str, caller: str, reason: str) -> SetOutcome:
    """A deploy-phase setter: the guard decides first. Never raises."""
    try:
        return _guard_then_set(task_or_id, key, caller, reason)
    except Exception as exc:
        logger.exception("the guarded setter for %s failed inside Stageboard", key)
        outcome = SetOutcome(Result.FAILED, key, why=f"internal error: {exc!r}")
        _log(str(getattr(task_or_id, "work_item_id", task_or_id)), caller, reason, outcome)
        return outcome


def _guard_then_set(task_or_id: Task | str, key: str, caller: str, reason: str) -> SetOutcome:
    # The guard judges the stage the database holds now, never the caller's copy: a stale
    # caller is exactly the one whose copy is out of date.
    work_item = str(getattr(task_or_id, "work_item_id", task_or_id))
    task = Task.objects.for_work_item(work_item)
    flags = switchboard.get()
    if flags.deploy_status_guard_enabled:  # off: the kill-switch, exactly as without the guard
        decision, active = _decide(task, key, flags)
        _record_verdict(work_item, task, key, caller, reason, decision, active)
        if task is not None and decision.verdict is guard.Verdict.CONVERGE_DONE:
            # What the finished task shows: Done, or Blocked after a DEGRADED verdict.
            truth = board.truth_key(task)
            why = f"guard: {key} converged to {truth} ({reason or 'no reason given'})"
            return _set(task, truth, caller, why)
        if task is not None and decision.verdict is guard.Verdict.SUPPRESS:
            outcome = SetOutcome(Result.SKIPPED, key, why=f"guard: {decision.reason}")
            _log(work_item, caller, reason, outcome)
            return outcome
    if task is None:
        outcome = SetOutcome(Result.SKIPPED, key, why=f"no task for work item {work_item}")
        _log(work_item, caller, reason, outcome)
        return outcome
    return _set(task, key, caller, reason)


def _decide(task: Task | None, key: str, flags) -> tuple[guard.Decision, bool | None]:
    """The guard's decision and the window state it saw (None: not looked at)."""
    try:
        if task is not None:
            guarded = switchboard.repos(
                flags.deploy_status_guard_repos, settings.ORCH_SELF_HOSTING_REPO
            )
            if task.repo not in guarded:
                repo = task.repo or "(none)"
                return guard.Decision(guard.Verdict.ALLOW, f"repo {repo} is not guarded"), None
        active = window_active(task) if task and task.stage == Stage.DONE else None
        return guard.decide(task.stage if task else None, key, bool(active)), active
    except Exception as exc:  # never-raise: the guard allows when it cannot decide
        logger.exception("the deploy status guard failed")
        return guard.Decision(guard.Verdict.ALLOW, f"the guard failed and allowed: {exc!r}"), None


def _record_verdict(work_item, task, key, caller, reason, decision, active) -> None:
    """One structured log line and one GuardVerdict row per verdict."""
    fields = {
        "event": "deploy_status_guard",
        "work_item": work_item,
        "caller": caller,
        "target": key,
        "db_stage": task.stage if task else None,
        "window_active": active,
        "verdict": str(decision.verdict),
        "reason": f"{decision.reason}; caller's reason: {reason or 'none given'}",
    }
    log_event(logger, logging.INFO, fields)
    try:
        GuardVerdict.objects.create(
            work_item_id=work_item[:100],
            task=task,
            repo=task.repo if task else "",
            caller=caller[:200],
            target=key,
            db_stage=task.stage if task else "",
            window_active=active,
            verdict=decision.verdict,
            reason=fields["reason"],
        )
    except Exception:  # the log line above still has it
        logger.exception("cannot record a guard verdict")


def _show(task: Task, key: str) -> SetOutcome:
    if key not in statuses.KEYS:
        return SetOutcome(Result.FAILED, key, why=f"unknown status key {key!r}")
    client = PlaneClient.from_settings()
    if client is None:
        return SetOutcome(
            Result.SKIPPED, key, why="Plane is not configured (PLANE_API_URL, PLANE_API_KEY)"
        )
    project = PlaneProject.objects.filter(project_id=task.project_id).first()
    if project is None:
        why = (
            f"project {task.project_id} {board.UNREGISTERED}: "
            "register it with manage.py plane_project add"
        )
        return SetOutcome(Result.SKIPPED, key, why=why)
    resolution, failed_read = resolve_key(project, key, client)
    if failed_read is not None:
        return SetOutcome(
            Result.FAILED,
            key,
            why=f"cannot read the project's states: {failed_read.error}",
            status=failed_read.status,
            retry_after=failed_read.retry_after,
        )
    if resolution.state is None:
        return SetOutcome(Result.FAILED, key, why=f"no state shows {key}: {resolution.via}")
    if board.shown_state_id(task) == resolution.state_id:
        return SetOutcome(Result.ALREADY_SHOWN, key, resolution.state_id)

    result = client.set_state(
        project.workspace_slug, str(project.project_id), str(task.work_item_id), resolution.state_id
    )
    if result.status == 400 and refresh_states(project, client).ok:
        # Plane refused the state it listed before: the project's states changed. Once.
        resolution = statuses.resolve(key, cached_states(project), project.status_names)
        if resolution.state is None:
            return SetOutcome(Result.FAILED, key, why=f"no state shows {key}: {resolution.via}")
        result = client.set_state(
            project.workspace_slug,
            str(project.project_id),
            str(task.work_item_id),
            resolution.state_id,
        )
    if not result.ok:
        return SetOutcome(
            Result.FAILED,
            key,
            resolution.state_id,
            why=result.error,
            status=result.status,
            retry_after=result.retry_after,
            item_gone=result.status == 404,
        )
    board.record_shown(task, resolution.state_id, key)
    identifiers.learn_identifier(task, project, result.data)  # Plane answers the work item
    return SetOutcome(Result.SENT, key, resolution.state_id, status=result.status)


def _log(work_item: str, caller: str, reason: str, outcome: SetOutcome) -> None:
    fields = {
        "event": "board_status",
        "work_item": work_item,
        "key": outcome.key,
        "outcome": str(outcome.result),
        "state": outcome.state_id,
        "caller": caller,
        "reason": reason,
        "why": outcome.why,
    }
    # Plane refusing our key or our states needs an operator (ERROR); a passing failure
    # or Plane's own 429 is worth a look (WARNING).
    # Waiting for our own budget is the budget working (INFO).
    level = logging.INFO
    if outcome.result is Result.FAILED and outcome.status in (400, 401, 403):
        level = logging.ERROR
    elif outcome.result is Result.FAILED and not (outcome.retry_after and outcome.status is None):
        level = logging.WARNING
    log_event(logger, level, fields)
