"""Each pull request as one link on its work item, below the board's priority.

A `PullRequestLink` is due until Plane shows the link. `send_links` (a q task, queued when
a link is recorded and run every minute) sends the due ones through the board
(`pipeline.work_items.add_link`, which leaves the rate budget to the statuses first): it
claims each with a conditional UPDATE, and on a failure keeps the link due with a doubling
backoff. A stage move never waits for a link: they are separate work.

Sending twice is harmless: Plane answers "URL already exists for this Issue", which is
success here.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from git_hosts.models import PullRequestLink
from pipeline import inbox
from pipeline.work_items import add_link

QUEUED = "stageboard:git-links-queued"
CLAIM = timedelta(seconds=90)
MAX_BACKOFF = timedelta(minutes=30)


def request_links() -> None:
    inbox.request_run("git_hosts.links.send_links", QUEUED, name="pull request links")


def _due(now) -> Q:
    return Q(linked_at__isnull=True, next_attempt_at__lte=now)


def send_links(max_seconds: float | None = None) -> dict:
    cache.delete(QUEUED)
    deadline = time.monotonic() + (max_seconds or settings.Q_CLUSTER["timeout"] / 2)
    report = {"linked": 0, "skipped": 0, "failed": 0}
    tried: set[int] = set()
    while time.monotonic() < deadline:
        now = timezone.now()
        pk = (
            PullRequestLink.objects.filter(_due(now))
            .exclude(pk__in=tried)
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            break
        tried.add(pk)
        # The claim: push the next attempt past the claim's end; only one worker wins.
        if not PullRequestLink.objects.filter(_due(now), pk=pk).update(next_attempt_at=now + CLAIM):
            continue
        if not send_one(pk, report):
            break
    return report


def send_one(pk: int, report: dict) -> bool:
    """Send one claimed link; False when the budget is spent (end the run)."""
    link = PullRequestLink.objects.select_related("pull_request__git_repo", "task").get(pk=pk)
    pr = link.pull_request
    outcome = add_link(link.task, pr.url, pr.label)
    now = timezone.now()
    mine = PullRequestLink.objects.filter(pk=pk)
    if outcome.ok:
        mine.update(linked_at=now, next_attempt_at=None, last_error="")
        report["linked"] += 1
        return True
    if outcome.skipped:  # no Plane or no project: nothing to link to, until that changes
        mine.update(next_attempt_at=None, last_error=outcome.error)
        report["skipped"] += 1
        return True
    if outcome.retry_after is not None:
        mine.update(next_attempt_at=now + timedelta(seconds=outcome.retry_after))
        return False
    attempts = link.attempts + 1
    backoff = min(timedelta(seconds=15 * 2 ** (attempts - 1)), MAX_BACKOFF)
    mine.update(attempts=attempts, last_error=outcome.error, next_attempt_at=now + backoff)
    report["failed"] += 1
    return True
