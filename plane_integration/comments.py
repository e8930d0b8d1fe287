"""Comments on a task's work item (each deploy's outcome is told this way).

Never-raise, like the setters: the outcome says sent, skipped or failed with why.
"""

import logging

from pipeline.logs import log_event
from pipeline.models import Task
from plane_integration.client import PlaneClient
from plane_integration.models import PlaneProject
from plane_integration.setters import Result, SetOutcome

logger = logging.getLogger(__name__)


def post_comment(
    task: Task, html: str, *, caller: str, reason: str = "", reserve: int = 0
) -> SetOutcome:
    """Post `html` on the task's work item now; `reserve` budget slots stay free for the
    board sync."""
    try:
        outcome = _post(task, html, reserve)
    except Exception as exc:
        logger.exception("comment on %s failed inside Stageboard", task.work_item_id)
        outcome = SetOutcome(Result.FAILED, "comment", why=f"internal error: {exc!r}")
    level = logging.WARNING if outcome.result is Result.FAILED else logging.INFO
    fields = {
        "event": "board_comment",
        "work_item": str(task.work_item_id),
        "outcome": str(outcome.result),
        "caller": caller,
        "reason": reason,
        "why": outcome.why,
    }
    log_event(logger, level, fields)
    return outcome


def _post(task: Task, html: str, reserve: int) -> SetOutcome:
    client = PlaneClient.from_settings()
    if client is None:
        return SetOutcome(Result.SKIPPED, "comment", why="Plane is not configured")
    project = PlaneProject.objects.filter(project_id=task.project_id).first()
    if project is None:
        why = f"project {task.project_id} is not a configured Plane project"
        return SetOutcome(Result.SKIPPED, "comment", why=why)
    result = client.add_comment(
        project.workspace_slug,
        str(project.project_id),
        str(task.work_item_id),
        html,
        reserve=reserve,
    )
    if not result.ok:
        return SetOutcome(
            Result.FAILED,
            "comment",
            why=result.error,
            status=result.status,
            retry_after=result.retry_after,
        )
    return SetOutcome(Result.SENT, "comment", status=result.status)
