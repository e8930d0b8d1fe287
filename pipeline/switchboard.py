"""The runtime switchboard: read it on every use; change it through `update`.

No caching on purpose: a flag flipped in the admin holds on the next call in every web
process and q worker, without a restart, for the price of one small query.
"""

from django.conf import settings
from django.db import IntegrityError, transaction

from pipeline.models import Switchboard, SwitchboardChange, split_repos


def seed_values() -> dict:
    """The switchboard as the ORCH_ environment describes it (its first state)."""
    return {
        "deploy_status_guard_enabled": settings.ORCH_DEPLOY_STATUS_GUARD_ENABLED,
        "deploy_status_guard_repos": ",".join(settings.ORCH_DEPLOY_STATUS_GUARD_REPOS),
        "post_deploy_enabled": settings.ORCH_POST_DEPLOY_ENABLED,
        "post_deploy_repos": ",".join(settings.ORCH_POST_DEPLOY_REPOS),
        "post_deploy_window_minutes": settings.ORCH_POST_DEPLOY_WINDOW_MINUTES,
        "post_deploy_tick_seconds": settings.ORCH_POST_DEPLOY_TICK_SECONDS,
        "post_deploy_fail_threshold": settings.ORCH_POST_DEPLOY_FAIL_THRESHOLD,
        "post_deploy_error_ratio": settings.ORCH_POST_DEPLOY_ERROR_RATIO,
        "post_deploy_min_samples": settings.ORCH_POST_DEPLOY_MIN_SAMPLES,
        "reconcile_enabled": settings.ORCH_RECONCILE_ENABLED,
        "deploy_comments_enabled": settings.ORCH_DEPLOY_COMMENTS_ENABLED,
        "git_events_enabled": settings.ORCH_GIT_EVENTS_ENABLED,
    }


def get() -> Switchboard:
    row = Switchboard.objects.filter(pk=1).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return Switchboard.objects.create(pk=1, **seed_values())
    except IntegrityError:  # another process seeded it first
        return Switchboard.objects.get(pk=1)


def update(who: str, *, reason: str = "", **values) -> list[SwitchboardChange]:
    """Change fields of the switchboard, validated, and record each change with who and why."""
    with transaction.atomic():
        get()
        row = Switchboard.objects.select_for_update().get(pk=1)
        old = {field: getattr(row, field) for field in Switchboard.FIELDS}
        for field, value in values.items():
            if field not in Switchboard.FIELDS:
                raise ValueError(f"the switchboard has no {field!r}")
            setattr(row, field, value)
        row.full_clean()
        row.save()
        return record_changes(who, old, row, reason=reason)


def record_changes(
    who: str, old: dict, row: Switchboard, *, reason: str = ""
) -> list[SwitchboardChange]:
    return [
        SwitchboardChange.objects.create(
            who=who,
            field=field,
            old=str(old[field]),
            new=str(getattr(row, field)),
            reason=reason,
        )
        for field in Switchboard.FIELDS
        if old[field] != getattr(row, field)
    ]


def repos(value: str, self_hosting_repo: str) -> frozenset[str]:
    """A repo list flag: empty means the self-hosting repo only."""
    return frozenset(split_repos(value) or [self_hosting_repo])
