"""The board sync: push each work item's latest desired status to Plane.

Runs as a django-q task, queued when a desired status changes and on a schedule (for
retries and anything a queue run missed). For each due row, in order:
1. claim it with a conditional UPDATE (only one worker sends for a work item), for
   no longer than the run can still act on it (`claim_length`);
2. read the desired key and its version, then call the setter (which skips the PATCH
   when Plane already shows the state);
3. mark that version synced, conditionally: if the truth changed meanwhile the row
   stays due and the next run sends the newer key;
4. on failure keep the row due with a backoff, and leave it for a later run (one attempt
   per row per run, so a failing Plane is not hammered); when rate-limited, wait for the
   budget if the run has time left, since every further send would be refused too.
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from plane_integration import reconcile
from plane_integration.board import SYNC_QUEUED
from plane_integration.client import time_limit
from plane_integration.models import BoardStatus
from plane_integration.setters import Result, set_issue_stage_state

logger = logging.getLogger(__name__)

CALLER = "board-sync"
# No longer than the scheduled sync's interval (`schedules.py`: every minute): a longer
# backoff kept a row that failed through a long outage unsent for up to ten minutes after
# Plane recovered. A run still makes one attempt per row, and the budget bounds the rate.
MAX_BACKOFF = timedelta(minutes=1)


@dataclass
class SyncReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    deferred: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def due(now) -> Q:
    claimable = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return Q(next_attempt_at__lte=now, gone_at__isnull=True) & claimable


def sync_board(max_seconds: float | None = None) -> dict:
    """Send what is due until done or `max_seconds` (default: half the q task timeout) pass."""
    cache.delete(SYNC_QUEUED)  # changes from now on queue a fresh run
    deadline = time.monotonic() + (max_seconds or settings.Q_CLUSTER["timeout"] / 2)
    report = SyncReport()
    tried: set[int] = set()
    while time.monotonic() < deadline:
        now = timezone.now()
        candidates = BoardStatus.objects.filter(due(now)).exclude(pk__in=tried)
        pk = candidates.order_by("next_attempt_at").values_list("pk", flat=True).first()
        if pk is None:
            break
        claim = now + claim_length(deadline)
        if not BoardStatus.objects.filter(due(now), pk=pk).update(claimed_until=claim):
            continue  # another worker claimed it first
        row = BoardStatus.objects.select_related("task").get(pk=pk)
        wait = sync_one(row, report, deadline=deadline)
        if wait is None:
            tried.add(pk)
        elif time.monotonic() + wait >= deadline:
            break
        else:
            time.sleep(wait)
    report.deferred = BoardStatus.objects.filter(next_attempt_at__isnull=False).count()
    logger.info(
        "board sync: %s, %d still to send", report.outcomes or "nothing due", report.deferred
    )
    return {"outcomes": report.outcomes, "deferred": report.deferred}


def claim_length(deadline: float) -> timedelta:
    """How long a row stays claimed: until the run's `deadline` (monotonic), by which every
    Plane call of the run has ended (`time_limit`), plus half the q task timeout for the
    writes after it.

    As a q task the run's deadline is half the timeout, so the claim ends when the cluster
    would have stopped the run: a worker killed mid-send leaves its row free by the time
    its task is redelivered (Q_RETRY > Q_TIMEOUT), not minutes later. Called directly with
    a longer `max_seconds`, the claim grows with the run.
    """
    left = max(0.0, deadline - time.monotonic())
    return timedelta(seconds=left + settings.Q_CLUSTER["timeout"] / 2)


def sync_one(
    row: BoardStatus, report: SyncReport, *, deadline: float | None = None
) -> float | None:
    """Send one claimed row; return seconds to wait when rate-limited, else None.

    Every Plane call it makes ends by `deadline` (monotonic), so a hanging Plane cannot
    keep the run past its q task timeout.
    """
    version = row.desired_version
    with time_limit(deadline):
        outcome = set_issue_stage_state(
            row.task, row.desired_key, caller=CALLER, reason=f"desired v{version}"
        )
    report.count(str(outcome.result))
    now = timezone.now()
    release = {"claimed_until": None, "last_outcome": str(outcome.result)}
    mine = BoardStatus.objects.filter(pk=row.pk)
    if outcome.done:
        finished = mine.filter(desired_version=version).update(
            **release,
            synced_version=version,
            synced_at=now,
            next_attempt_at=None,
            attempts=0,
            last_error="" if outcome.result is not Result.SKIPPED else outcome.why,
        )
        if not finished:  # the truth moved on while we sent: stay due for the newer key
            mine.update(**release)
        return None
    confirmed = None
    if outcome.item_gone:
        # One GET confirms it: then the deletion is handled at once, exactly as a full
        # sweep handles it (the task cancelled, the repair recorded), not an hour later.
        with time_limit(deadline):
            confirmed = reconcile.confirm_gone(row.task)
    if outcome.item_gone and confirmed is not False:
        # Retrying a deleted item would never end. Unconfirmed (Plane could not tell), a
        # full sweep confirms it later; an item that comes back is sent to again.
        mine.update(**release, gone_at=now, next_attempt_at=None, last_error=outcome.why)
        logger.warning(
            "board sync: work item %s answered 404 (deleted or archived): not sent again",
            row.task.work_item_id,
            extra={"event": "board_gone", "work_item": str(row.task.work_item_id)},
        )
        return None
    if outcome.retry_after is not None:
        # Not a failure of this row: the budget is spent. Keep its place in the queue.
        mine.update(**release, next_attempt_at=now + timedelta(seconds=outcome.retry_after))
        return outcome.retry_after
    attempts = row.attempts + 1
    backoff = settings.PLANE_SYNC_RETRY_SECONDS * 2 ** (attempts - 1)
    retry_at = now + min(timedelta(seconds=backoff), MAX_BACKOFF)
    failed = mine.filter(desired_version=version).update(
        **release, attempts=attempts, last_error=outcome.why, next_attempt_at=retry_at
    )
    if not failed:  # a newer key is waiting; it deserves its own first attempt now
        mine.update(**release)
    return None
