"""One answer to "is everything all right?": the problems, worst first, or a set-up checklist.

`problems()` reads the same state the dashboard's panels show and says, in one line each,
what a person must look at and where it is fixed; `setup_checklist()` says what a fresh
install still lacks, each item ticked from the real state. Both are free of requests and
templates: the dashboard renders them, and a command may print them. Each question is one
query (a count or an exists), so the answer costs the same whatever the number of rows.

Severity: red when something is broken now (nothing runs in the background, production may
be degraded, the board is wrong), amber when a person should look soon.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone

from git_hosts.models import GitEvent
from monitoring.models import MonitoredRepo, MonitorWindow
from pipeline import switchboard
from pipeline.health import check_cluster
from pipeline.models import StageChange, Task
from pipeline.stages import DeployPhase, Stage
from plane_integration.board import failing as failing_rows
from plane_integration.models import BoardStatus, PlaneProject, PlaneState, ReconcileRepair

RED, AMBER = "red", "amber"
# Worst first: the order problems are listed in, whatever order they were found in.
ORDER = (
    "no_cluster",
    "rollback_failed",
    "board_failing",
    "plane_refusing",
    "project_refused",
    "webhook_off",
    "kill_switch",
    "approvals_waiting",
    "git_deploy_refused",
    "repair_stuck",
    "person_drift",
)
# The kill-switches (switchboard flag, what is off when it is).
KILL_SWITCHES = (
    ("deploy_status_guard_enabled", "the deploy status guard"),
    ("post_deploy_enabled", "the post-deploy monitor"),
    ("reconcile_enabled", "the reconciler's schedules"),
    ("deploy_comments_enabled", "deploy comments on work items"),
    ("git_events_enabled", "Git host events (stored, but they move nothing)"),
)
# Repairs that mean a human control reached Stageboard through a sweep, not a webhook.
MISSED_WEBHOOK_KINDS = (
    ReconcileRepair.Kind.STARTED,
    ReconcileRepair.Kind.REOPENED,
    ReconcileRepair.Kind.CANCELLED,
)
PLANE_REFUSED = Q(last_error__contains="answered 401") | Q(last_error__contains="answered 403")


@dataclass(frozen=True)
class Problem:
    severity: str  # "red" or "amber"
    key: str  # a short stable slug: no_cluster, rollback_failed, ...
    text: str  # one line for people
    url: str  # where it is fixed


@dataclass(frozen=True)
class ChecklistItem:
    key: str
    text: str
    done: bool
    url: str


def _admin(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def problems(now=None) -> list[Problem]:
    """What needs a person now, worst first (empty: all good)."""
    now = now or timezone.now()
    found: list[Problem] = []

    cluster = check_cluster()
    if not cluster["ok"]:
        found.append(
            Problem(
                RED,
                "no_cluster",
                f"No q cluster: {cluster['error']}. Nothing runs in the background "
                "(board sync, monitor, sweeps, notifications).",
                reverse("healthz"),
            )
        )

    failed = MonitorWindow.objects.filter(
        action=MonitorWindow.Action.ROLLBACK, action_state=MonitorWindow.ActionState.FAILED
    )
    n = failed.count()
    if n:
        first = failed.select_related("task").order_by("-action_finished_at", "-id").first()
        found.append(
            Problem(
                RED,
                "rollback_failed",
                f"{_plural(n, 'rollback', 'rollbacks')} failed ({first.task} on {first.repo}): "
                "production may still be degraded. Retry the rollback or roll back by hand.",
                _admin("monitoring_monitorwindow_change", first.pk),
            )
        )

    failing = BoardStatus.objects.filter(failing_rows())
    n = failing.count()
    if n:
        found.append(
            Problem(
                RED,
                "board_failing",
                f"{_plural(n, 'board row does', 'board rows do')} not reach Plane: the board "
                "shows something other than the truth.",
                _admin("plane_integration_boardstatus_changelist") + "?attempts__gt=0",
            )
        )
    if failing.filter(PLANE_REFUSED).exists():
        found.append(
            Problem(
                RED,
                "plane_refusing",
                "Plane refuses the API key (401/403): check PLANE_API_KEY and the bot's "
                "membership of each project.",
                _admin("plane_integration_planeproject_changelist"),
            )
        )

    refused_projects = PlaneProject.objects.exclude(refused="")
    n = refused_projects.count()
    if n:
        first = refused_projects.order_by("pk").first()
        found.append(
            Problem(
                RED,
                "project_refused",
                f"{_plural(n, 'project is', 'projects are')} refused by Plane ({first}: "
                f"{first.refused}): its work items are not swept. Check the bot's membership, "
                "or remove the project.",
                _admin("plane_integration_planeproject_change", first.pk),
            )
        )

    day = now - timedelta(hours=24)
    missed = ReconcileRepair.objects.filter(at__gte=day, kind__in=MISSED_WEBHOOK_KINDS).count()
    if missed:
        found.append(
            Problem(
                AMBER,
                "webhook_off",
                f"Sweeps had to carry out {_plural(missed, 'move', 'moves')} in 24 h that "
                "webhooks should have: Plane's webhook may be off.",
                _admin("plane_integration_reconcilerun_changelist"),
            )
        )

    flags = switchboard.get()
    off = [what for name, what in KILL_SWITCHES if not getattr(flags, name)]
    if off:
        found.append(
            Problem(
                AMBER,
                "kill_switch",
                f"Kill-switch off: {', '.join(off)}.",
                _admin("pipeline_switchboard_changelist"),
            )
        )

    cutoff = now - timedelta(minutes=settings.NOTIFY_APPROVAL_AFTER_MINUTES)
    requested = StageChange.objects.filter(
        task=OuterRef("pk"), to_phase=DeployPhase.AWAITING_APPROVAL
    ).order_by("-created_at", "-id")
    waiting = (
        Task.objects.filter(
            stage=Stage.DEPLOY,
            deploy_phase=DeployPhase.AWAITING_APPROVAL,
            deploy_approved_at__isnull=True,
        )
        .annotate(requested_at=Subquery(requested.values("created_at")[:1]))
        .filter(requested_at__lte=cutoff)
        .count()
    )
    if waiting:
        found.append(
            Problem(
                AMBER,
                "approvals_waiting",
                f"{_plural(waiting, 'deploy waits', 'deploys wait')} for approval for over "
                f"{settings.NOTIFY_APPROVAL_AFTER_MINUTES} min.",
                _admin("pipeline_task_changelist")
                + "?stage__exact=deploy&deploy_phase__exact=awaiting_approval",
            )
        )

    week = now - timedelta(days=7)
    refused = GitEvent.objects.filter(received_at__gte=week, outcome=GitEvent.Outcome.REFUSED)
    n = refused.count()
    if n:
        found.append(
            Problem(
                AMBER,
                "git_deploy_refused",
                f"{_plural(n, 'Git host event was', 'Git host events were')} refused this week "
                "(a deploy without its approval?).",
                _admin("git_hosts_gitevent_changelist") + "?outcome__exact=refused",
            )
        )

    stuck = ReconcileRepair.objects.filter(stuck=True, at__gte=now - timedelta(hours=24))
    n = stuck.values("work_item_id").distinct().count()
    if n:
        first = stuck.select_related("task").order_by("-id").first()
        name = (first.task.identifier or first.task.label) if first.task else first.work_item_id
        more = f" (and {_plural(n - 1, 'other item', 'other items')})" if n > 1 else ""
        found.append(
            Problem(
                AMBER,
                "repair_stuck",
                f"Every sweep puts {name}{more} back and it does not hold: {first.reason}",
                _admin("plane_integration_reconcilerun_changelist"),
            )
        )

    left = BoardStatus.objects.filter(drift_left_at__isnull=False, gone_at__isnull=True)
    n = left.count()
    if n:
        first = left.select_related("task").order_by("-drift_left_at", "-id").first()
        name = first.task.identifier or first.task.label
        more = f" (and {_plural(n - 1, 'other item', 'other items')})" if n > 1 else ""
        found.append(
            Problem(
                AMBER,
                "person_drift",
                f"A person keeps moving {name}{more} away from what Stageboard shows: it "
                "stopped putting it back. Talk to them, or move the item back in Plane.",
                _admin("plane_integration_boardstatus_changelist") + "?drift_left_at__isnull=False",
            )
        )

    return sorted(found, key=lambda p: ORDER.index(p.key))


def setup_checklist() -> list[ChecklistItem]:
    """What a working install has, each ticked from the real state."""
    plane = bool(settings.PLANE_API_URL and settings.PLANE_API_KEY)
    projects = PlaneProject.objects.all()
    registered = projects.exists()
    resolved = (
        registered and not projects.exclude(pk__in=PlaneState.objects.values("project")).exists()
    )
    # Settings have no admin page: their item names the environment variable and the
    # section of docs/operations.md that explains it (url empty).
    return [
        ChecklistItem(
            "plane",
            "Plane configured: PLANE_API_URL, PLANE_API_KEY (docs/operations.md, Plane's side)",
            plane,
            "",
        ),
        ChecklistItem(
            "bot_user",
            "The bot's user id: PLANE_BOT_USER_ID (docs/operations.md, The bot user)",
            bool(settings.PLANE_BOT_USER_ID),
            "",
        ),
        ChecklistItem(
            "webhook_secret",
            "Plane's webhook secret: PLANE_WEBHOOK_SECRET (docs/operations.md, Registering "
            "the webhook)",
            bool(settings.PLANE_WEBHOOK_SECRET),
            "",
        ),
        ChecklistItem(
            "project",
            "A project registered (manage.py plane_project add)",
            registered,
            _admin("plane_integration_planeproject_changelist"),
        ),
        ChecklistItem(
            "statuses",
            "Its statuses resolved (manage.py plane_states)",
            resolved,
            _admin("plane_integration_planeproject_changelist"),
        ),
        ChecklistItem(
            "repo",
            "A repo watched after deploys (manage.py repo set NAME --health-url URL)",
            MonitoredRepo.objects.exclude(health_url="").exists(),
            _admin("monitoring_monitoredrepo_changelist"),
        ),
        ChecklistItem(
            "notifications",
            "Notifications set: NOTIFY_URLS (docs/operations.md, Notifications)",
            bool(settings.NOTIFY_URLS.strip()),
            "",
        ),
    ]


ESSENTIAL = ("plane", "webhook_secret", "project")


def is_set_up() -> bool:
    """Whether the install shows a board at all: Plane configured, its webhook's secret
    set, a project registered. Until then the dashboard shows the checklist instead."""
    return all(item.done for item in setup_checklist() if item.key in ESSENTIAL)
