"""What needs a person but raises no event: found by looking, every minute.

- a deploy awaiting approval for longer than NOTIFY_APPROVAL_AFTER_MINUTES, told once
  per request;
- a board row whose sync has failed for more than ten minutes, told once per desired
  status (it is the same failure until the truth moves on);
- a reconciler run that had to start tasks webhooks should have started (Plane's webhook
  may be off), told once per run.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from operations.notify import notify
from pipeline.models import StageChange, Task
from pipeline.stages import DeployPhase, Stage
from plane_integration.board import failing as failing_rows
from plane_integration.models import BoardStatus, ReconcileRepair

BOARD_FAILING_AFTER = timedelta(minutes=10)


def notify_sweep() -> dict:
    return {
        "approvals": approvals_waiting(),
        "board": board_failing(),
        "missed": webhooks_missed(),
    }


def approvals_waiting() -> int:
    now = timezone.now()
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
        .annotate(
            requested_at=Subquery(requested.values("created_at")[:1]),
            request_id=Subquery(requested.values("id")[:1]),
        )
        .filter(requested_at__lte=cutoff)
    )
    told = 0
    for task in waiting:
        minutes = int((now - task.requested_at).total_seconds() // 60)
        told += bool(
            notify(
                "approval_waiting",
                f"{task.repo or 'deploy'}: {task.label} awaits approval",
                f"waiting {minutes} min for an operator's approval",
                once_key=f"approval:{task.request_id}",
            )
        )
    return told


def board_failing() -> int:
    cutoff = timezone.now() - BOARD_FAILING_AFTER
    failing = (
        BoardStatus.objects.select_related("task")
        .filter(failing_rows())
        .filter(desired_at__lte=cutoff)
    )
    told = 0
    for row in failing:
        told += bool(
            notify(
                "board_sync_failing",
                f"board status of {row.task.label} not shown for over 10 min",
                f"{row.attempts} attempts; last error: {row.last_error}",
                once_key=f"board:{row.pk}:{row.desired_version}",
            )
        )
    return told


def webhooks_missed(within: timedelta = timedelta(hours=1)) -> int:
    """Runs of the last hour whose sweep started tasks: each was a missed webhook."""
    started = (
        ReconcileRepair.objects.filter(
            kind=ReconcileRepair.Kind.STARTED, at__gte=timezone.now() - within
        )
        .values_list("run_id", flat=True)
        .distinct()
    )
    told = 0
    for run_id in started:
        items = ReconcileRepair.objects.filter(run_id=run_id, kind=ReconcileRepair.Kind.STARTED)
        told += bool(
            notify(
                "reconciler_missed",
                f"the reconciler started {items.count()} task(s) no webhook started: "
                "Plane's webhook may be off",
                "work items: "
                + ", ".join(str(i) for i in items.values_list("work_item_id", flat=True)[:10]),
                once_key=f"reconcile-missed:{run_id}",
            )
        )
    return told
