"""Setters: show one status key on a task's work item, now.

Never-raise: each returns a `SetOutcome` (sent, already shown, skipped, failed with why)
and writes one structured log line. `set_issue_stage_state` is the dispatcher; the
per-key setters are what callers name. The board sync is their main caller.
"""

import logging
from dataclasses import dataclass
from enum import StrEnum

from pipeline.models import Task
from plane_integration import board, statuses
from plane_integration.client import PlaneClient
from plane_integration.models import PlaneProject
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

    @property
    def done(self) -> bool:
        """Nothing is left to send for this key (sent, already shown, or not ours to send)."""
        return self.result is not Result.FAILED


def set_issue_stage_state(task: Task, key: str, *, caller: str, reason: str = "") -> SetOutcome:
    try:
        outcome = _show(task, key)
    except Exception as exc:  # never-raise: the truth must not depend on the board
        logger.exception("board status for %s failed inside Stageboard", task.work_item_id)
        outcome = SetOutcome(Result.FAILED, key, why=f"internal error: {exc!r}")
    _log(task, caller, reason, outcome)
    return outcome


def set_issue_to_analyse(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "to_analyse", caller=caller, reason=reason)


def set_issue_analysis(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "analysis", caller=caller, reason=reason)


def set_issue_code_review(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "code_review", caller=caller, reason=reason)


def set_issue_awaiting_deploy(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "awaiting_deploy", caller=caller, reason=reason)


def set_issue_deploying(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "deploying", caller=caller, reason=reason)


def set_issue_monitoring(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "monitoring", caller=caller, reason=reason)


def set_issue_todo(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "todo", caller=caller, reason=reason)


def set_issue_in_progress(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "in_progress", caller=caller, reason=reason)


def set_issue_done(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "done", caller=caller, reason=reason)


def set_issue_blocked(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "blocked", caller=caller, reason=reason)


def set_issue_cancelled(task: Task, *, caller: str, reason: str = "") -> SetOutcome:
    return set_issue_stage_state(task, "cancelled", caller=caller, reason=reason)


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
        why = f"project {task.project_id} is not a configured Plane project"
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
        )
    board.record_shown(task, resolution.state_id, key)
    return SetOutcome(Result.SENT, key, resolution.state_id, status=result.status)


def _log(task: Task, caller: str, reason: str, outcome: SetOutcome) -> None:
    fields = {
        "event": "board_status",
        "work_item": str(task.work_item_id),
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
    logger.log(
        level,
        " ".join(
            f"{name}={value!r}" if name in ("reason", "why") else f"{name}={value}"
            for name, value in fields.items()
        ),
        extra=fields,
    )
