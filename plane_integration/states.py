"""The per-project state cache: Plane's states kept in the database, resolved per key.

The database is the cache every process shares. It is filled on first use, refreshed on
demand (`manage.py plane_states`) and when Plane refuses a state it resolved to.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from plane_integration import statuses
from plane_integration.client import PlaneClient, PlaneResult
from plane_integration.models import PlaneProject, PlaneState

logger = logging.getLogger(__name__)


def refresh_states(project: PlaneProject, client: PlaneClient) -> PlaneResult:
    """Make the project's cached states what Plane lists now. Steps, in one transaction:

    1. upsert every listed state (insert, or update on the unique (project, state_id)), in
       state id order, so concurrent refreshes wait on each other's rows instead of both
       inserting them (delete-then-insert raised IntegrityError) or deadlocking;
    2. delete the states Plane no longer lists;
    3. record when.
    """
    result = client.get_states(project.workspace_slug, str(project.project_id))
    if not result.ok:
        logger.warning("plane: cannot read the states of %s: %s", project, result.error)
        return result
    fresh = sorted((statuses.State.from_plane(raw) for raw in result.data), key=lambda s: s.id)
    with transaction.atomic():
        PlaneState.objects.bulk_create(
            [
                PlaneState(
                    project=project,
                    state_id=s.id,
                    name=s.name,
                    group=s.group,
                    is_default=s.default,
                    sequence=s.sequence,
                )
                for s in fresh
            ],
            update_conflicts=True,
            unique_fields=["project", "state_id"],
            update_fields=["name", "group", "is_default", "sequence"],
        )
        project.states.exclude(state_id__in=[s.id for s in fresh]).delete()
        project.states_refreshed_at = timezone.now()
        project.save(update_fields=["states_refreshed_at"])
    return result


@dataclass(frozen=True)
class Creation:
    key: str
    name: str
    group: str
    outcome: str  # "created", "existed" (Plane's 409), "would create" or "failed"
    error: str = ""


def create_missing_states(
    project: PlaneProject, client: PlaneClient, *, dry_run: bool = False
) -> tuple[list[Creation], PlaneResult]:
    """Create in Plane each pipeline status the project lacks, with its group and colour,
    then read the states again. Plane's 409 (a state of that name exists, e.g. created by
    someone meanwhile) counts as success. Returns what was done per status and the final
    read of the states (or the failed first read, with nothing created)."""
    read = refresh_states(project, client)
    if not read.ok:
        return [], read
    done = []
    for key in statuses.missing(cached_states(project), project.status_names):
        name, group = statuses.name_of(key, project.status_names), statuses.GROUPS[key]
        if dry_run:
            done.append(Creation(key, name, group, "would create"))
            continue
        result = client.create_state(
            project.workspace_slug, str(project.project_id), name, group, statuses.COLOURS[key]
        )
        if result.ok:
            done.append(Creation(key, name, group, "created"))
        elif result.status == 409:
            done.append(Creation(key, name, group, "existed"))
        else:
            done.append(Creation(key, name, group, "failed", result.error))
    if dry_run or not done:
        return done, read
    return done, refresh_states(project, client)


def claim_states_read(project: PlaneProject) -> bool:
    """Whether the caller may read the project's states for a state id it does not know.

    At most one such read per PLANE_STATES_REFRESH_SECONDS, however many deliveries name
    unknown ids: a conditional UPDATE, so of concurrent claimers exactly one wins.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.PLANE_STATES_REFRESH_SECONDS)
    claimable = Q(states_requested_at__isnull=True) | Q(states_requested_at__lte=stale)
    return bool(
        PlaneProject.objects.filter(claimable, pk=project.pk).update(states_requested_at=now)
    )


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
