"""A task's readable id, `DEMO-42`: its project's identifier and its work item's number.

Learned where Plane tells it anyway (the webhook that starts a task, the reconciler's list,
the board sync's PATCH answer), so it costs no call of its own.
"""

from pipeline.models import Task
from plane_integration.models import PlaneProject


def identifier(project: PlaneProject, sequence_id) -> str:
    """`DEMO-42` for the project's identifier and a sequence id; "" when either is unknown."""
    if not project.identifier or isinstance(sequence_id, bool):
        return ""
    try:
        number = int(sequence_id)
    except (TypeError, ValueError):
        return ""
    return f"{project.identifier.upper()}-{number}" if number > 0 else ""


def learn_identifier(task: Task, project: PlaneProject, work_item: object) -> None:
    """Record the task's readable id from a work item Plane sent us, if it had none."""
    if task.identifier or not isinstance(work_item, dict):
        return
    readable = identifier(project, work_item.get("sequence_id"))
    if readable:
        Task.objects.filter(pk=task.pk, identifier="").update(identifier=readable)
        task.identifier = readable
