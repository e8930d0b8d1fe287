"""Prometheus metrics, read from the database at scrape time.

Every web process answers the same figures, whichever the scrape reaches, because none
is kept in a process: each scrape runs a handful of aggregate queries (one per family,
whatever the number of rows). Counters that processes add to (Plane requests and 429s)
live in the rate budget's row, which every process already writes per request.
"""

from collections.abc import Iterable

from django.db.models import Count, Sum
from django.utils import timezone
from django_q.models import OrmQ
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.models import MonitorWindow
from operations.models import Notification
from pipeline.models import Deployment, Task
from pipeline.stages import Stage
from plane_integration.board import failing as board_failing
from plane_integration.models import (
    BoardStatus,
    PlaneRateBudget,
    ReconcileRepair,
    WebhookDelivery,
)


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
