"""The runtime switchboard: read it on every use; change it through `update`.

No caching on purpose: a flag flipped in the admin holds on the next call in every web
process and q worker, without a restart, for the price of one small query.
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import IntegrityError, transaction

from pipeline.models import Deployment, Switchboard, SwitchboardChange, Task, split_repos

# The switchboard's repo lists and what each is about (for warnings).
REPO_LISTS = {
    "post_deploy_repos": "post deploy repos",
    "deploy_status_guard_repos": "deploy status guard repos",
}
# Where else repo names live: the apps that keep settings per repo (the monitor's repos, the
# Git links, Plane's projects) add a function giving their names, from their ready().
REPO_SOURCES: list[Callable[[], Iterable[str]]] = []


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


def known_repos() -> set[str]:
    """Every repo name Stageboard knows: its tasks', its deployments', the self-hosting
    repo, and those the other apps keep settings for."""
    names = {settings.ORCH_SELF_HOSTING_REPO}
    names |= set(Task.objects.exclude(repo="").values_list("repo", flat=True).distinct())
    names |= set(Deployment.objects.exclude(repo="").values_list("repo", flat=True).distinct())
    for source in REPO_SOURCES:
        names |= set(source())
    return names


def unmatched_repos(value: str, known: set[str] | None = None) -> list[str]:
    """A warning for each name of a repo list that matches no known repo (names are
    case-sensitive), suggesting the repo it matches without regard to case."""
    known = known_repos() if known is None else known
    by_lower = {name.lower(): name for name in sorted(known)}
    warnings = []
    for name in split_repos(value):
        if name in known:
            continue
        match = by_lower.get(name.lower())
        hint = f"; did you mean {match!r}? (names are case-sensitive)" if match else ""
        warnings.append(f"{name!r} matches no known repo{hint}")
    return warnings


def repo_list_warnings(row: Switchboard, fields: Iterable[str] = REPO_LISTS) -> list[str]:
    """The warnings for the row's repo lists, each naming its list."""
    known = known_repos()
    return [
        f"{REPO_LISTS[field]}: {warning}"
        for field in fields
        for warning in unmatched_repos(getattr(row, field), known)
    ]
