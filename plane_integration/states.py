"""The per-project state cache: Plane's states kept in the database, resolved per key.

The database is the cache every process shares. It is filled on first use, refreshed on
demand (`manage.py plane_states`) and when Plane refuses a state it resolved to.
"""

import logging

from django.db import transaction
from django.utils import timezone

from plane_integration import statuses
from plane_integration.client import PlaneClient, PlaneResult
from plane_integration.models import PlaneProject, PlaneState

logger = logging.getLogger(__name__)


def refresh_states(project: PlaneProject, client: PlaneClient) -> PlaneResult:
    """Replace the project's cached states with what Plane lists now."""
    result = client.get_states(project.workspace_slug, str(project.project_id))
    if not result.ok:
        logger.warning("plane: cannot read the states of %s: %s", project, result.error)
        return result
    fresh = [statuses.State.from_plane(raw) for raw in result.data]
    with transaction.atomic():
        project.states.all().delete()
        PlaneState.objects.bulk_create(
            PlaneState(
                project=project,
                state_id=s.id,
                name=s.name,
                group=s.group,
                is_default=s.default,
                sequence=s.sequence,
            )
            for s in fresh
        )
        project.states_refreshed_at = timezone.now()
        project.save(update_fields=["states_refreshed_at"])
    return result


def cached_states(project: PlaneProject) -> list[statuses.State]:
    return [state.as_state() for state in project.states.all()]


def resolve_key(
    project: PlaneProject, key: str, client: PlaneClient
) -> tuple[statuses.Resolution | None, PlaneResult | None]:
    """The resolution of `key` in the project, reading the states first if none are cached.

    Returns (resolution, None), or (None, the failed read of the states).
    """
    if project.states_refreshed_at is None:
        result = refresh_states(project, client)
        if not result.ok:
            return None, result
    return statuses.resolve(key, cached_states(project), project.status_names), None


def resolution_table(project: PlaneProject) -> list[statuses.Resolution]:
    states = cached_states(project)
    return [statuses.resolve(key, states, project.status_names) for key in statuses.KEYS]
