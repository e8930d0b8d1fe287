"""Each task's board status: what it should show (desired) and what it was seen showing.

The truth changes -> `record_desired` derives the key (one mapping, `mapping.status_key`)
and, when it differs from the one recorded, bumps the desired version and asks for a
sync. The sync (`plane_integration.sync`) pushes the latest desired key per work item.
"""

import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from pipeline import windows
from pipeline.models import Task
from pipeline.stages import Stage
from plane_integration.mapping import WindowFacts, status_key
from plane_integration.models import BoardStatus, PlaneProject

# Set while a sync run is queued, so a burst of changes queues one run, not one per change.
SYNC_QUEUED = "stageboard:board-sync-queued"
SYNC_QUEUED_TTL = 60


# What the setter says of a task whose project is not registered (`setters._show`).
UNREGISTERED = "is not a configured Plane project"


def unregistered_project(project_id) -> str | None:
    """With a Plane configured, why a task in `project_id` could never be shown, or None."""
    if not (settings.PLANE_API_URL and settings.PLANE_API_KEY):
        return None
    try:
        known = PlaneProject.objects.filter(project_id=uuid.UUID(str(project_id))).exists()
    except ValueError:
        known = False
    if known:
        return None
    return (
        f"Project {project_id} is not registered with Stageboard, so its work items' "
        f"statuses could never be shown. Register it first: "
        f"manage.py plane_project add {project_id} --repo NAME"
    )


def failing() -> Q:
    """Board rows whose status does not reach Plane: a sync that failed and waits for its
    retry, or one that can never be sent (the task's project is not registered)."""
    retrying = Q(attempts__gt=0, next_attempt_at__isnull=False)
    unsendable = Q(last_outcome="skipped", last_error__contains=UNREGISTERED)
    return Q(gone_at__isnull=True) & (retrying | unsendable)


def window_facts(task: Task) -> WindowFacts | None:
    """The task's post-deploy window, as the monitor keeps it (the board only reads it)."""
    if task.stage != Stage.DONE:
        return None
    return windows.window_facts(task)


def truth_key(task: Task) -> str:
    return status_key(task.stage, task.deploy_phase, window_facts(task))


def record_desired(task: Task) -> BoardStatus:
    """Record the status the truth asks for; queue a sync when it is new.

    The truth is read afresh under the board row's lock, not taken from `task`: hooks of
    two quick changes can run in either order, and the later one must not record the
    earlier truth.
    """
    now = timezone.now()
    with transaction.atomic():
        board, created = BoardStatus.objects.select_for_update().get_or_create(
            task=task, defaults={"desired_key": "", "desired_at": now}
        )
        key = truth_key(Task.objects.get(pk=task.pk))
        if board.desired_key == key:
            return board
        board.desired_key = key
        board.desired_version += 1
        board.desired_at = now
        # A work item that has gone (deleted or archived) is sent nothing more.
        board.next_attempt_at = now if board.gone_at is None else None
        board.attempts = 0
        board.drift_left_at = None  # a new truth: worth showing, whoever moved the old one
        # Only the desire: what Plane shows and who holds the row are the sync's to write.
        board.save(
            update_fields=[
                "desired_key",
                "desired_version",
                "desired_at",
                "next_attempt_at",
                "attempts",
                "drift_left_at",
            ]
        )
        if board.gone_at is None:
            transaction.on_commit(request_sync)
    return board


def record_shown(task: Task, state_id: str | uuid.UUID, key: str) -> None:
    """Plane now shows `state_id` (the key we sent) on the task's work item.

    A key other than the desired one (a setter called directly) makes the row due again,
    so the sync puts the truth back: the board is indication, and converges to it.
    """
    updated = BoardStatus.objects.filter(task=task).update(shown_state_id=state_id, shown_key=key)
    if updated:
        BoardStatus.objects.filter(task=task, next_attempt_at__isnull=True).exclude(
            desired_key=key
        ).update(next_attempt_at=timezone.now())
        return
    # A setter called for a task the sync never saw: start its row from the truth.
    truth, now = truth_key(task), timezone.now()
    BoardStatus.objects.get_or_create(
        task=task,
        defaults={
            "desired_key": truth,
            "desired_at": now,
            "shown_state_id": state_id,
            "shown_key": key,
            "next_attempt_at": None if truth == key else now,
        },
    )


def record_seen(task: Task, state_id: str, key: str, updated_at=None) -> bool:
    """Plane reported the work item in `state_id`, which shows `key` ("" when it shows no
    key of ours): what the board shows now, from a webhook or a reconciler sweep.

    `updated_at` is Plane's time of that state: a report older than the one recorded (a
    late delivery) changes nothing. Returns whether it was recorded.
    """
    rows = BoardStatus.objects.filter(task=task)
    if updated_at is None:
        return bool(rows.update(shown_state_id=state_id, shown_key=key))
    newer = Q(shown_updated_at__isnull=True) | Q(shown_updated_at__lte=updated_at)
    return bool(
        rows.filter(newer).update(
            shown_state_id=state_id, shown_key=key, shown_updated_at=updated_at
        )
    )


def mark_drifted(board: BoardStatus, state_id: str, key: str) -> bool:
    """The board shows `state_id` instead of the desired status: record what it shows and
    make the row due, so the ordinary sync (and its guard) puts the truth back.

    Conditional on the row being as `board` was read: nothing pending, same versions. A
    row that changed meanwhile (a new desire, a send) is the sync's already; returns False.
    """
    updated = BoardStatus.objects.filter(
        pk=board.pk,
        drift_left_at__isnull=True,  # left to the operator: not fought over
        next_attempt_at__isnull=True,
        desired_version=board.desired_version,
        synced_version=board.synced_version,
        gone_at__isnull=True,
    ).update(shown_state_id=state_id, shown_key=key, next_attempt_at=timezone.now(), attempts=0)
    if updated:
        transaction.on_commit(request_sync)
    return bool(updated)


def mark_gone(task: Task) -> None:
    """Plane answers 404 for the work item (deleted or archived): stop sending to it."""
    BoardStatus.objects.filter(task=task, gone_at__isnull=True).update(
        gone_at=timezone.now(), next_attempt_at=None, claimed_until=None
    )


def mark_listed_again(board: BoardStatus) -> None:
    """A work item marked gone is in Plane's list again (restored): send to it again."""
    updated = BoardStatus.objects.filter(pk=board.pk, gone_at__isnull=False).update(
        gone_at=None, next_attempt_at=timezone.now(), attempts=0
    )
    if updated:
        transaction.on_commit(request_sync)


def shown_state_id(task: Task) -> str | None:
    shown = BoardStatus.objects.filter(task=task).values_list("shown_state_id", flat=True).first()
    return str(shown) if shown else None


def request_sync() -> None:
    if cache.add(SYNC_QUEUED, True, timeout=SYNC_QUEUED_TTL):
        async_task("plane_integration.sync.sync_board", task_name="board sync")
