"""The board's answers about work items: their readable ids (`DEMO-42`) and their links.

Registered into `pipeline.work_items` when the app is ready, so other layers (the Git hosts)
ask without importing the board. They use the one Plane client and its rate budget, and
never raise for Plane's sake: a failure is an outcome (`LinkOutcome`) or, where nothing can
be decided without Plane, `Unreadable` for the caller to retry later.
"""

import logging

from django.utils import timezone

from pipeline.models import Task
from pipeline.text import clean_text
from pipeline.work_items import LinkOutcome, Unreadable, WorkItem
from plane_integration.client import PlaneClient
from plane_integration.models import BoardStatus, PlaneProject

logger = logging.getLogger(__name__)

ALREADY_LINKED = "URL already exists"


def project_identifiers() -> set[str]:
    """The identifiers (upper case) of the registered projects. Raises `Unreadable` when
    Plane cannot say one now (down, rate-limited): a work item of that project could be
    named, so the question waits, rather than be answered "none"."""
    return set(projects_by_identifier(strict=True))


def projects_by_identifier(*, strict: bool = False) -> dict[str, PlaneProject]:
    """The registered projects by identifier (upper case). A project whose identifier is
    not known yet is read from Plane (one GET, once: it is stored)."""
    projects = {}
    for project in PlaneProject.objects.all():
        if not project.identifier:
            learn_project_identifier(project, strict=strict)
        if project.identifier:
            projects[project.identifier.upper()] = project
    return projects


def learn_project_identifier(project: PlaneProject, *, strict: bool = False) -> str:
    """Read the project's identifier from Plane and store it; "" when Plane cannot say.
    `strict`: raise `Unreadable` when Plane did not answer, or answered 429 or 5xx."""
    client = PlaneClient.from_settings()
    if client is None:
        return ""
    result = client.get_project(project.workspace_slug, str(project.project_id))
    transient = result.status is None or result.status == 429 or result.status >= 500
    if strict and not result.ok and transient:
        raise Unreadable(f"cannot read the identifier of {project}: {result.error}")
    value = result.data.get("identifier") if result.ok and isinstance(result.data, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 20:
        logger.warning("cannot read the identifier of %s: %s", project, result.error or value)
        return ""
    project.identifier = clean_text(value.strip().upper())
    PlaneProject.objects.filter(pk=project.pk).update(identifier=project.identifier)
    return project.identifier


def find_work_item(readable: str) -> WorkItem | None:
    """The work item `DEMO-42` of the registered project DEMO, or None when Plane says
    there is none. Raises `Unreadable` when Plane cannot answer now."""
    project = projects_by_identifier().get(readable.rsplit("-", 1)[0].upper())
    if project is None:
        return None
    client = PlaneClient.from_settings()
    if client is None:
        raise Unreadable("Plane is not configured")
    result = client.get_work_item_by_identifier(
        project.workspace_slug, str(project.project_id), readable
    )
    if result.status == 404:
        return None
    if not result.ok or not isinstance(result.data, dict):
        raise Unreadable(f"cannot read {readable} from Plane: {result.error or 'no item'}")
    item = result.data
    if str(item.get("project", project.project_id)) != str(project.project_id):
        return None
    return WorkItem(
        id=str(item.get("id")),
        project_id=str(project.project_id),
        name=item.get("name") if isinstance(item.get("name"), str) else "",
        identifier=readable,
    )


def add_link(task: Task, url: str, title: str) -> LinkOutcome:
    """Put a link to `url` on the task's work item. A link has a lower priority than the
    statuses: it leaves a budget slot for every board row due now, and a reserve, as a
    deploy comment does. Plane's answer that the URL is there already is success."""
    from plane_integration.deploy_comments import budget_reserve
    from plane_integration.sync import due

    reserve = budget_reserve() + BoardStatus.objects.filter(due(timezone.now())).count()
    client = PlaneClient.from_settings()
    if client is None:
        return LinkOutcome(False, "Plane is not configured", skipped=True)
    project = PlaneProject.objects.filter(project_id=task.project_id).first()
    if project is None:
        why = f"project {task.project_id} is not a configured Plane project"
        return LinkOutcome(False, why, skipped=True)
    result = client.add_link(
        project.workspace_slug,
        str(project.project_id),
        str(task.work_item_id),
        url,
        clean_text(title)[:255],
        reserve=reserve,
    )
    if result.ok or (result.status == 400 and ALREADY_LINKED in result.error):
        return LinkOutcome(True)
    return LinkOutcome(False, result.error or f"Plane answered {result.status}", result.retry_after)
