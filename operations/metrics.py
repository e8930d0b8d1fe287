"""Prometheus metrics, read from the database at scrape time.

Every web process answers the same figures, whichever the scrape reaches, because none
is kept in a process: each scrape runs a handful of aggregate queries (one per family,
whatever the number of rows). Counters that processes add to (Plane requests and 429s)
live in the rate budget's row, which every process already writes per request.
"""

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, OuterRef, Subquery, Sum
from django.utils import timezone
from django_q.models import OrmQ
from django_q.status import Stat
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.models import CheckMeasurement, MonitorWindow
from operations.models import Notification
from pipeline import switchboard
from pipeline.models import Deployment, StageChange, Task
from pipeline.stages import DeployPhase, Stage
from pipeline.version import version
from plane_integration.board import failing as board_failing
from plane_integration.models import (
    BoardStatus,
    PlaneRateBudget,
    ReconcileRepair,
    ReconcileRun,
    WebhookDelivery,
)

NEVER = float("inf")  # seconds since something that never happened


def _counts(queryset, field: str) -> dict[str, int]:
    return dict(queryset.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


class DatabaseCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        tasks = GaugeMetricFamily("stageboard_tasks", "Tasks by stage", labels=["stage"])
        by_stage = _counts(Task.objects.order_by(), "stage")
        for stage in Stage:
            tasks.add_metric([stage.value], by_stage.get(stage.value, 0))
        yield tasks

        deploys = GaugeMetricFamily(
            "stageboard_deployments",
            "Deploy attempts by outcome (running: no outcome yet)",
            labels=["outcome"],
        )
        by_outcome = _counts(Deployment.objects.order_by(), "outcome")
        for outcome in ["", *Deployment.Outcome.values]:
            deploys.add_metric([outcome or "running"], by_outcome.get(outcome, 0))
        yield deploys

        windows = MonitorWindow.objects.order_by()
        yield GaugeMetricFamily(
            "stageboard_monitor_windows_active",
            "Post-deploy monitor windows being watched",
            value=windows.filter(state=MonitorWindow.State.ACTIVE).count(),
        )
        verdicts = GaugeMetricFamily(
            "stageboard_monitor_verdicts", "Post-deploy verdicts by kind", labels=["verdict"]
        )
        by_verdict = _counts(windows.exclude(verdict=""), "verdict")
        for verdict in ("HEALTHY", "DEGRADED", "INCONCLUSIVE"):
            verdicts.add_metric([verdict], by_verdict.get(verdict, 0))
        yield verdicts

        checks = GaugeMetricFamily(
            "stageboard_check_measurements",
            "Analysis checks' measurements by repo, check and result",
            labels=["repo", "check", "result"],
        )
        for repo, name, result, n in (
            CheckMeasurement.objects.order_by()
            .values_list("window__repo", "check_name", "result")
            .annotate(n=Count("pk"))
            .values_list("window__repo", "check_name", "result", "n")
        ):
            checks.add_metric([repo, name, result], n)
        yield checks

        webhooks = GaugeMetricFamily(
            "stageboard_webhook_deliveries", "Plane webhook deliveries by state", labels=["state"]
        )
        by_state = _counts(WebhookDelivery.objects.order_by(), "state")
        for state in WebhookDelivery.State.values:
            webhooks.add_metric([state], by_state.get(state, 0))
        yield webhooks

        pending = BoardStatus.objects.filter(next_attempt_at__isnull=False)
        yield GaugeMetricFamily(
            "stageboard_board_rows_pending",
            "Work items whose status is still to be shown on the board",
            value=pending.count(),
        )
        yield GaugeMetricFamily(
            "stageboard_board_rows_failing",
            "Work items whose last board sync failed",
            # Failed and retrying, or never sendable (the task's project is not registered).
            value=BoardStatus.objects.filter(board_failing()).count(),
        )

        sums = PlaneRateBudget.objects.aggregate(
            requests=Sum("requests_total"), limited=Sum("rate_limited_total")
        )
        yield CounterMetricFamily(
            "stageboard_plane_requests",
            "Requests sent to Plane's API",
            value=sums["requests"] or 0,
        )
        yield CounterMetricFamily(
            "stageboard_plane_rate_limited",
            "Plane answers 429 (rate limited)",
            value=sums["limited"] or 0,
        )

        notes = GaugeMetricFamily(
            "stageboard_notifications", "Notifications by state", labels=["state"]
        )
        by_note = _counts(Notification.objects.order_by(), "state")
        for state in Notification.State.values:
            notes.add_metric([state], by_note.get(state, 0))
        yield notes

        yield GaugeMetricFamily(
            "stageboard_q_queue_length",
            "Tasks waiting in the q cluster's queue",
            # As the ORM broker counts it: entries whose lock (if any) has run out.
            value=OrmQ.objects.filter(lock__lte=now).count(),
        )
        repairs = CounterMetricFamily(
            "stageboard_reconciler_repairs", "Reconciler repairs by kind", labels=["kind"]
        )
        by_kind = _counts(ReconcileRepair.objects.order_by(), "kind")
        for kind in ReconcileRepair.Kind.values:
            repairs.add_metric([kind], by_kind.get(kind, 0))
        yield repairs

        yield from alerting_figures(now)


def alerting_figures(now) -> Iterable[Metric]:
    """What the alert rules of docs/alerts.yml read: ages and counts that need a person."""
    info = GaugeMetricFamily(
        "stageboard_build_info", "Stageboard's version (always 1)", labels=["version"]
    )
    info.add_metric([version()], 1)
    yield info

    try:
        stats = Stat.get_all()
    except Exception:
        stats = []
    last = max((stat.timestamp for stat in stats), default=None)
    yield GaugeMetricFamily(
        "stageboard_q_cluster_last_report_seconds",
        "Seconds since a q cluster last reported (+Inf: none has)",
        value=(now - last).total_seconds() if last else NEVER,
    )

    flags = switchboard.get()
    switches = GaugeMetricFamily(
        "stageboard_kill_switch_enabled",
        "Kill-switches of the switchboard: 1 on, 0 off",
        labels=["switch"],
    )
    for name in (
        "deploy_status_guard_enabled",
        "post_deploy_enabled",
        "reconcile_enabled",
        "deploy_comments_enabled",
        "git_events_enabled",
    ):
        switches.add_metric([name.removesuffix("_enabled")], 1 if getattr(flags, name) else 0)
    yield switches

    requested = StageChange.objects.filter(
        task=OuterRef("pk"), to_phase=DeployPhase.AWAITING_APPROVAL
    ).order_by("-created_at", "-id")
    waiting = Task.objects.filter(
        stage=Stage.DEPLOY,
        deploy_phase=DeployPhase.AWAITING_APPROVAL,
        deploy_approved_at__isnull=True,
    ).annotate(requested_at=Subquery(requested.values("created_at")[:1]))
    oldest = waiting.order_by("requested_at").values_list("requested_at", flat=True).first()
    yield GaugeMetricFamily(
        "stageboard_approvals_waiting", "Deploys waiting for an approval", value=waiting.count()
    )
    yield GaugeMetricFamily(
        "stageboard_approval_oldest_wait_seconds",
        "Seconds the longest-waiting deploy has waited for its approval (0: none waits)",
        value=(now - oldest).total_seconds() if oldest else 0,
    )
    yield GaugeMetricFamily(
        "stageboard_approval_wait_limit_seconds",
        "NOTIFY_APPROVAL_AFTER_MINUTES in seconds: the alert's threshold",
        value=timedelta(minutes=settings.NOTIFY_APPROVAL_AFTER_MINUTES).total_seconds(),
    )
    yield GaugeMetricFamily(
        "stageboard_rollbacks_failed",
        "Rollbacks whose hook failed and that no operator acted on yet",
        value=MonitorWindow.objects.filter(
            action=MonitorWindow.Action.ROLLBACK, action_state=MonitorWindow.ActionState.FAILED
        ).count(),
    )
    yield GaugeMetricFamily(
        "stageboard_repairs_stuck",
        "Work items whose repair came back on every sweep in the last 24 h (reported stuck)",
        value=ReconcileRepair.objects.filter(stuck=True, at__gte=now - timedelta(hours=24))
        .values("work_item_id")
        .distinct()
        .count(),
    )
    complete = (
        ReconcileRun.objects.filter(complete=True, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    yield GaugeMetricFamily(
        "stageboard_reconcile_last_complete_seconds",
        "Seconds since the reconciler's last complete sweep finished (+Inf: none has)",
        value=(now - complete).total_seconds() if complete else NEVER,
    )
