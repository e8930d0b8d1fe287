"""The Git events drain: works off stored events, oldest first, one by one.

As Plane's webhook drain (plane_integration.drain), the event table is the queue: a drain
is queued once per burst (`ingest.request_drain`) and runs every minute as a safety net.
A run claims a batch (pipeline.inbox.claim), processes each event (`apply.process_event`:
row lock, outcome check, the stage engine) and queues its successor when work is left.
Git events come in ones and tens, not thousands: no batch decisions are needed.
"""

import logging
import time
from collections import Counter

from django.core.cache import cache

from git_hosts.apply import process_event
from git_hosts.ingest import DRAIN_QUEUED, request_drain
from git_hosts.models import GitEvent
from pipeline import inbox

logger = logging.getLogger(__name__)

Outcome = GitEvent.Outcome
BATCH = 50
RUN_SECONDS = 5.0


def drain_git_events(max_seconds: float | None = None) -> dict:
    """Work off due events until none is left or `max_seconds` (RUN_SECONDS) pass."""
    cache.delete(DRAIN_QUEUED)  # events stored from now on queue a fresh run
    started = time.monotonic()
    deadline = started + (max_seconds or RUN_SECONDS)
    outcomes: Counter = Counter()
    while True:
        batch = inbox.claim(
            GitEvent, BATCH, state="outcome", pending=Outcome.PENDING, failed=Outcome.FAILED
        )
        for pk, _body in batch:
            outcomes[str(process_event(pk))] += 1
        if time.monotonic() >= deadline:
            if len(batch) == BATCH:
                request_drain(trust=False)
            break
        if len(batch) < BATCH:
            if inbox.settled(started):
                break
            time.sleep(inbox.SETTLE_SECONDS / 3)  # events stored on a trusted request
    if outcomes:
        logger.info(
            "git events drain: %s",
            dict(outcomes),
            extra={"event": "git_drain", "outcomes": dict(outcomes)},
        )
    return dict(outcomes)
