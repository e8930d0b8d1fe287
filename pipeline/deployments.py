"""The delivery record: one `Deployment` row per deploy attempt, and how it ended.

Written in the engine's transaction for the deploy's start and finish, and by the monitor
(through these functions, never its own writes) for the verdict. When a deployment's
outcome is final it is *settled*, and after commit `deployment_settled` tells the other
layers (the work item's comment, notifications). A deploy watched by the monitor settles
at its verdict, not at its finish: the arming in the same transaction un-settles it, and
the announcement reads the row as committed.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from pipeline.models import Deployment, StageChange, Task
from pipeline.signals import deployment_settled
from pipeline.stages import Stage

logger = logging.getLogger(__name__)

Outcome = Deployment.Outcome
DETAIL_FIELDS = ("environment", "commit_sha", "ref", "ci_url", "committed_at")


def open_deployment(locked: Task, *, caller: str, details: dict | None = None) -> Deployment:
    """The deploy of `locked` started (inside the engine's transaction)."""
    details = {k: v for k, v in (details or {}).items() if k in DETAIL_FIELDS and v}
    deployment = _for(locked, caller, started_at=timezone.now(), **details)
    deployment.save(force_insert=True)
    return deployment


def _for(locked: Task, caller: str, **fields) -> Deployment:
    """An unsaved record of this cycle's deploy of `locked`, started by `caller`."""
    return Deployment(
        task=locked,
        cycle=locked.cycle,
        repo=locked.repo,
        work_started_at=work_started_at(locked),
        approved_by=locked.deploy_approved_by,
        approved_at=locked.deploy_approved_at,
        started_by=caller,
        **fields,
    )


def finish(locked: Task, *, succeeded: bool, caller: str) -> Deployment:
    """The running deploy ended; a deploy nobody started through us is recorded now."""
    now = timezone.now()
    deployment = running(locked)
    if deployment is None:
        deployment = _for(locked, caller)
    deployment.finished_at = now
    deployment.outcome = Outcome.SUCCEEDED if succeeded else Outcome.FAILED
    deployment.action_taken = "" if succeeded else "sent the task back to development"
    _settle(deployment, now)
    return deployment


def record_elsewhere(task: Task, *, status: str, caller: str, details: dict) -> Deployment:
    """A deploy of the task's change to an environment other than production (staging):
    recorded on the task, but it moves no stage, is told to nobody and counts in no DORA
    figure. `status` is started, succeeded or failed."""
    details = {k: v for k, v in details.items() if k in DETAIL_FIELDS and v}
    now = timezone.now()
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update()
            .filter(
                task=task,
                cycle=task.cycle,
                production=False,
                environment=details.get("environment", ""),
                commit_sha=details.get("commit_sha", ""),
                finished_at=None,
            )
            .order_by("-id")
            .first()
        )
        if deployment is None:
            deployment = _for(task, caller, production=False, **details)
            deployment.started_at = now if status == "started" else None
        if status != "started":
            deployment.finished_at = deployment.settled_at = now
            deployment.outcome = Outcome.SUCCEEDED if status == "succeeded" else Outcome.FAILED
        deployment.save()
    return deployment


def abort_running(locked: Task, why: str) -> None:
    """The task left deploy without a result (cancelled): its running deploy is aborted."""
    deployment = running(locked)
    if deployment is not None:
        deployment.finished_at = timezone.now()
        deployment.outcome = Outcome.ABORTED
        deployment.evidence = why
        _settle(deployment, deployment.finished_at)


def watch(task: Task, window_id: int) -> Deployment | None:
    """A monitor window opened on the task's last successful deploy: it settles later."""
    deployment = last_succeeded(task)
    if deployment is not None:
        deployment.window_id = window_id
        deployment.settled_at = None
        deployment.save(update_fields=["window_id", "settled_at", "updated_at"])
    return deployment


def record_verdict(
    task: Task,
    cycle: int,
    *,
    outcome: str,
    verdict: str = "",
    evidence: str = "",
    action_taken: str = "",
    settle: bool,
) -> Deployment | None:
    """The monitor judged the deploy (`outcome` what production showed); settle when final."""
    deployment = (
        Deployment.objects.filter(
            task=task, cycle=cycle, production=True, finished_at__isnull=False
        )
        .exclude(outcome__in=[Outcome.FAILED, Outcome.ABORTED])
        .order_by("-finished_at", "-id")
        .first()
    )
    if deployment is None:
        return None
    deployment.outcome = Outcome(outcome)
    deployment.verdict = verdict or deployment.verdict
    deployment.evidence = evidence or deployment.evidence
    deployment.action_taken = action_taken or deployment.action_taken
    if settle:
        _settle(deployment, timezone.now())
    else:
        deployment.save()
    return deployment


def finished_as(task: Task, *, succeeded: bool) -> bool:
    """Whether this cycle's last production deploy ended as `succeeded` says (a deploy
    result sent again after the task moved on is then a no-op)."""
    last = (
        Deployment.objects.filter(task=task, cycle=task.cycle, production=True)
        .exclude(outcome="")
        .order_by("-id")
        .values_list("outcome", flat=True)
        .first()
    )
    if last is None or last == Outcome.ABORTED:
        return False
    return (last != Outcome.FAILED) == succeeded


def last_deploy(task: Task) -> Deployment | None:
    """The task's latest production deploy attempt, of any cycle."""
    return Deployment.objects.filter(task=task, production=True).order_by("-id").first()


def running(task: Task) -> Deployment | None:
    return (
        Deployment.objects.filter(
            task=task, cycle=task.cycle, production=True, outcome="", finished_at=None
        )
        .order_by("-id")
        .first()
    )


def last_succeeded(task: Task) -> Deployment | None:
    return (
        Deployment.objects.filter(
            task=task, cycle=task.cycle, production=True, outcome=Outcome.SUCCEEDED
        )
        .order_by("-finished_at", "-id")
        .first()
    )


def work_started_at(task: Task) -> datetime:
    """When the task's current cycle began: its creation, or its re-opening."""
    if task.cycle <= 1:
        return task.created_at
    reopened = (
        StageChange.objects.filter(task=task, cycle=task.cycle, to_stage=Stage.ANALYSIS)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return reopened or task.created_at


def _settle(deployment: Deployment, now: datetime) -> None:
    deployment.settled_at = now
    deployment.save()
    pk = deployment.pk
    transaction.on_commit(lambda: announce_settled(pk))


def announce_settled(deployment_id: int) -> None:
    """Tell the other layers, if the deployment is still settled as committed."""
    deployment = Deployment.objects.select_related("task").filter(pk=deployment_id).first()
    if deployment is None or deployment.settled_at is None:
        return
    for receiver, error in deployment_settled.send_robust(sender=Deployment, deployment=deployment):
        if isinstance(error, Exception):
            logger.error(
                "deployment %s: %r failed: %s", deployment_id, receiver, error, exc_info=error
            )
