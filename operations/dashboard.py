"""What the admin's front page shows: the answer to "is everything all right?".

One function, `gather()`, reads every panel with a fixed number of queries, whatever the
number of rows (counts are aggregates, lists are cut to `LIMIT` rows). Each panel carries
the admin list behind it, filtered, so an operator goes from a number to the rows.

It lives in `operations` because it reads every app; no other app imports it.
"""

import time
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from git_hosts.models import GitEvent
from monitoring.models import MonitorWindow, Probe
from operations import verdict
from pipeline import switchboard
from pipeline.health import check_cluster
from pipeline.models import Deployment, Task
from pipeline.stages import DeployPhase, Stage
from plane_integration.board import failing as board_failing
from plane_integration.budget import key_id
from plane_integration.models import (
    BoardStatus,
    GuardVerdict,
    PlaneRateBudget,
    ReconcileRepair,
    ReconcileRun,
    WebhookDelivery,
)

LIMIT = 10
# The kill-switches: each one off means a safety net is down. (flag, what is off)
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


def changelist(model, **filters) -> str:
    """The admin list of `model`, filtered by Django lookups (`stage__exact=...`)."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


@dataclass
class Dashboard:
    switches_off: list[str] = field(default_factory=list)
    rollbacks_failed: list[MonitorWindow] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    awaiting: list[Task] = field(default_factory=list)
    awaiting_count: int = 0
    windows: list[MonitorWindow] = field(default_factory=list)
    bad_deploys: list[Deployment] = field(default_factory=list)
    guard: list[dict] = field(default_factory=list)
    webhooks: list[dict] = field(default_factory=list)
    failing_rows: list[BoardStatus] = field(default_factory=list)
    failing_count: int = 0
    last_run: ReconcileRun | None = None
    last_repairs: list[ReconcileRepair] = field(default_factory=list)
    # Repairs made outside a sweep in 24 h (a deletion the board sync confirmed, drift a
    # webhook showed): no run lists them.
    other_repairs: list[ReconcileRepair] = field(default_factory=list)
    missed_webhooks: int = 0
    budget: dict | None = None
    cluster: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    # The one line at the top (operations.verdict): problems worst first, or, on an
    # install not set up yet, the checklist instead.
    problems: list = field(default_factory=list)
    set_up: bool = True
    checklist: list = field(default_factory=list)
    worst: str = ""


def gather(now=None) -> Dashboard:
    now = now or timezone.now()
    d = Dashboard()
    flags = switchboard.get()
    d.switches_off = [what for name, what in KILL_SWITCHES if not getattr(flags, name)]

    # Rollbacks whose hook failed and that no operator acted on: production may be down.
    d.rollbacks_failed = list(
        MonitorWindow.objects.filter(
            action=MonitorWindow.Action.ROLLBACK, action_state=MonitorWindow.ActionState.FAILED
        )
        .select_related("task")
        .order_by("-action_finished_at", "-id")[:LIMIT]
    )

    counts = dict(Task.objects.values_list("stage").annotate(n=Count("id")).order_by())
    d.stages = [
        {"stage": s.value, "count": counts.get(s.value, 0), "url": changelist(Task, stage__exact=s)}
        for s in Stage
    ]

    awaiting = Task.objects.filter(
        stage=Stage.DEPLOY, deploy_phase=DeployPhase.AWAITING_APPROVAL, deploy_approved_at=None
    )
    d.awaiting_count = awaiting.count()
    d.awaiting = list(awaiting.order_by("updated_at")[:LIMIT])

    last_probe = Probe.objects.filter(window=OuterRef("pk")).order_by("-at", "-id")
    d.windows = list(
        MonitorWindow.objects.filter(state=MonitorWindow.State.ACTIVE)
        .select_related("task")
        .annotate(
            last_result=Subquery(last_probe.values("result")[:1]),
            last_status=Subquery(last_probe.values("status_code")[:1]),
        )
        .order_by("closes_at")[:LIMIT]
    )
    for window in d.windows:
        window.seconds_left = max(0, int((window.closes_at - now).total_seconds()))

    week = now - timedelta(days=7)
    d.bad_deploys = list(
        Deployment.objects.filter(verdict__in=["DEGRADED", "INCONCLUSIVE"], finished_at__gte=week)
        .select_related("task")
        .order_by("-finished_at")[:LIMIT]
    )

    day = now - timedelta(hours=24)
    verdicts = dict(
        GuardVerdict.objects.filter(at__gte=day)
        .values_list("verdict")
        .annotate(n=Count("id"))
        .order_by()
    )
    d.guard = [
        {
            "verdict": v,
            "count": verdicts.get(v, 0),
            "url": changelist(GuardVerdict, verdict__exact=v, at__gte=day.isoformat()),
        }
        for v, _ in GuardVerdict.VERDICTS
    ]

    states = dict(
        WebhookDelivery.objects.filter(
            state__in=[WebhookDelivery.State.PENDING, WebhookDelivery.State.FAILED]
        )
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    d.webhooks = [
        {"state": s, "count": states.get(s, 0), "url": changelist(WebhookDelivery, state__exact=s)}
        for s in (WebhookDelivery.State.PENDING, WebhookDelivery.State.FAILED)
    ]

    # Git host events of the last week that a gate refused (a deploy that skipped its
    # approval) or that failed: each needs a person.
    refused = GitEvent.objects.filter(
        received_at__gte=week, outcome__in=(GitEvent.Outcome.REFUSED, GitEvent.Outcome.FAILED)
    )
    d.git_refused_count = refused.count()
    d.git_refused = list(refused.order_by("-received_at", "-id")[:LIMIT])

    failing = BoardStatus.objects.filter(board_failing())
    d.failing_count = failing.count()
    d.failing_rows = list(failing.select_related("task").order_by("-attempts")[:LIMIT])

    d.last_run = ReconcileRun.objects.first()
    if d.last_run:
        d.last_repairs = list(d.last_run.repairs.select_related("task")[:LIMIT])
    d.other_repairs = list(
        ReconcileRepair.objects.filter(run__isnull=True, at__gte=day)
        .select_related("task")
        .order_by("-at", "-id")[:LIMIT]
    )
    d.missed_webhooks = ReconcileRepair.objects.filter(
        at__gte=day, kind__in=MISSED_WEBHOOK_KINDS
    ).count()

    d.budget = plane_budget()
    d.cluster = check_cluster()
    d.problems = verdict.problems(now)
    d.worst = d.problems[0].severity if d.problems else ""
    d.set_up = verdict.is_set_up()
    if not d.set_up:
        d.checklist = verdict.setup_checklist()
    d.links = {
        "tasks": changelist(Task),
        "git_events": changelist(GitEvent, received_at__gte=week.isoformat()),
        "awaiting": changelist(
            Task, stage__exact=Stage.DEPLOY, deploy_phase__exact=DeployPhase.AWAITING_APPROVAL
        ),
        "windows": changelist(MonitorWindow, state__exact=MonitorWindow.State.ACTIVE),
        "bad_deploys": changelist(
            Deployment, verdict__in="DEGRADED,INCONCLUSIVE", finished_at__gte=week.isoformat()
        ),
        "guard": changelist(GuardVerdict, at__gte=day.isoformat()),
        "webhooks": changelist(WebhookDelivery),
        "failing": changelist(BoardStatus, attempts__gt=0),
        "runs": changelist(ReconcileRun),
        "switchboard": reverse("admin:pipeline_switchboard_changelist"),
        "dora": reverse("admin-dora"),
    }
    if d.last_run:
        d.links["last_run"] = reverse(
            "admin:plane_integration_reconcilerun_change", args=[d.last_run.pk]
        )
    return d


def plane_budget() -> dict | None:
    """Requests left this minute on the configured API key (None: no Plane configured)."""
    if not (settings.PLANE_API_URL and settings.PLANE_API_KEY):
        return None
    limit = settings.PLANE_RATE_LIMIT_PER_MINUTE
    window = settings.PLANE_RATE_WINDOW_SECONDS
    row = PlaneRateBudget.objects.filter(key_id=key_id(settings.PLANE_API_KEY)).first()
    now = time.time()
    used = len([t for t in row.sent_at if t > now - window]) if row else 0
    blocked = max(0.0, row.blocked_until - now) if row else 0.0
    return {"limit": limit, "left": max(0, limit - used), "blocked_seconds": int(blocked)}
