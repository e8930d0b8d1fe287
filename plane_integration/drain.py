"""The webhook drain: works off stored deliveries in batches.

The delivery table is the queue. Storing a delivery is one INSERT; a drain task is queued
once per burst, not once per delivery (`ingest.request_drain`: a cache flag, as the board
sync's `request_sync`), and a schedule runs it every minute as a safety net (a lost flag,
retries whose `retry_at` came).

A drain run, until nothing is due or its time is up:
1. claims a batch of due deliveries with one UPDATE ... RETURNING (on PostgreSQL the rows
   are picked FOR UPDATE SKIP LOCKED; SQLite has one writer at a time), setting
   `claimed_until`, so two drains never work on the same delivery;
2. parses them and reads the batch's projects, and the tasks of the work items it moves,
   in one query each. A delivery whose outcome is "ignored" with no effect is decided here:
   not a control by its body or project (`ingest.not_a_control`: a priority change, an
   unconfigured project ...), or a move of a work item without a task that is no control
   (drift, decided on the cached states exactly as `ingest.apply` would). They are recorded
   with one UPDATE per distinct reason;
3. processes the others one by one, in order (`ingest.process_delivery`: row lock, state
   check, the stage engine), which releases each claim. Once one delivery of a work item
   goes this way, its later ones in the batch do too: the first may create its task.

A run is short (`RUN_SECONDS`) and queues its successor when work is left, so a stopping
cluster waits for at most one short run per worker, and the rest is worked off after the
restart: nothing accepted is lost, since a claim runs out by itself.
"""

import logging
import time
from collections import Counter, defaultdict

from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from pipeline import inbox
from pipeline.models import Task
from plane_integration import statuses
from plane_integration.controls import Control, human_control
from plane_integration.ingest import (
    DRAIN_QUEUED,
    not_a_control,
    process_delivery,
    project_uuid,
    request_drain,
    state_group,
    uuid_or_none,
)
from plane_integration.models import PlaneProject, WebhookDelivery
from plane_integration.states import cached_states
from plane_integration.webhook_payloads import ShapeError, parse

logger = logging.getLogger(__name__)

State = WebhookDelivery.State
BATCH = 200
# Short runs: SIGTERM waits for a worker's current task, and a run is the unit of that.
RUN_SECONDS = 2.0
FILL_SECONDS = 0.25


def drain_deliveries(max_seconds: float | None = None) -> dict:
    """Work off due deliveries until none is left or `max_seconds` (RUN_SECONDS) pass."""
    cache.delete(DRAIN_QUEUED)  # deliveries stored from now on queue a fresh run
    started = time.monotonic()
    deadline = started + (max_seconds or RUN_SECONDS)
    outcomes: Counter = Counter()
    left = False
    while True:
        if time.monotonic() >= deadline:
            left = True
            break
        batch = claim(BATCH)
        if not batch:
            if inbox.settled(started):
                break
            time.sleep(inbox.SETTLE_SECONDS / 3)  # rows stored on a trusted request
            continue
        work_off(batch, outcomes)
        if len(batch) < BATCH and time.monotonic() + FILL_SECONDS < deadline:
            # Deliveries are still arriving one by one: let a batch gather instead of
            # paying a claim and a task for every few of them.
            time.sleep(FILL_SECONDS)
    if left:
        request_drain(trust=False)
    if outcomes:
        logger.info(
            "webhook drain: %s%s",
            dict(outcomes),
            ", more left for the next run" if left else "",
            extra={"event": "webhook_drain", "outcomes": dict(outcomes)},
        )
    return dict(outcomes)


def claim(size: int) -> list[tuple[int, bytes]]:
    """Claim up to `size` due deliveries, oldest first; return their (pk, body)."""
    return inbox.claim(
        WebhookDelivery, size, state="state", pending=State.PENDING, failed=State.FAILED
    )


def work_off(batch: list[tuple[int, bytes]], outcomes: Counter) -> None:
    """Decide a claimed batch: what is ignored without effect in bulk, the rest singly."""
    parsed, singly = [], []
    for pk, body in batch:
        try:
            parsed.append((pk, parse(body)))
        except ShapeError:
            singly.append(pk)  # stored before the parser changed: recorded as it fails
    wanted = {project_uuid(d) for _, d in parsed if d.is_work_item} - {None}
    projects = {}
    if wanted:
        for project in PlaneProject.objects.filter(project_id__in=wanted):
            projects[str(project.project_id)] = project
    ignored: dict[str, list[int]] = defaultdict(list)
    moves = []
    for pk, delivery in parsed:
        why_not = not_a_control(delivery, projects.get(project_uuid(delivery) or ""))
        if why_not:
            ignored[why_not].append(pk)
        else:
            moves.append((pk, delivery))
    if moves:
        decide_moves(moves, projects, ignored, singly)
    now = timezone.now()
    for reason, pks in ignored.items():
        outcomes[State.IGNORED] += WebhookDelivery.objects.filter(
            pk__in=pks, state__in=(State.PENDING, State.FAILED)
        ).update(
            state=State.IGNORED,
            reason=reason,
            attempts=F("attempts") + 1,
            processed_at=now,
            claimed_until=None,
            retry_at=None,
        )
    for pk in sorted(singly):
        outcomes[process_delivery(pk)] += 1


def decide_moves(moves, projects, ignored, singly) -> None:
    """Moves and creations in configured projects: a work item without a task whose new
    state is cached and is no control is ignored (what `ingest.apply` decides for it,
    with no effect); anything else is processed singly."""
    items = {uuid_or_none(d.work_item_id) for _, d in moves}
    with_task = {str(i) for i in Task.objects.filter(work_item_id__in=items).values_list(
        "work_item_id", flat=True
    )}  # fmt: skip
    known: dict[str, tuple] = {}
    for pk, delivery in moves:
        item = uuid_or_none(delivery.work_item_id)
        if item in with_task:
            singly.append(pk)
            continue
        project = projects[project_uuid(delivery)]
        if project.pk not in known:
            states = cached_states(project)
            resolved = statuses.resolution_map(states, project.status_names)
            known[project.pk] = (states, resolved, {s.id for s in states})
        states, resolved, state_ids = known[project.pk]
        if delivery.new_state_id and delivery.new_state_id not in state_ids:
            singly.append(pk)  # learn_states reads the states first
            with_task.add(item)
            continue
        control, why = human_control(
            delivery,
            to_analyse_state_id=resolved["to_analyse"],
            new_state_group=state_group(delivery, states),
        )
        if control is Control.NONE:
            ignored[why].append(pk)
        else:
            singly.append(pk)
            with_task.add(item)  # it may create the task: its later deliveries go singly too
