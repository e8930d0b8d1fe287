"""Webhook deliveries: stored once when they arrive, processed in the background."""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from pipeline import inbox
from pipeline.models import StageChange, Task
from pipeline.text import clean_text
from pipeline.work_items import Unreadable
from plane_integration import board, control_actions, reconcile, reconcile_rules, statuses
from plane_integration.client import PlaneClient
from plane_integration.controls import Control, human_control
from plane_integration.models import BoardStatus, PlaneProject, ReconcileRepair, WebhookDelivery
from plane_integration.states import cached_states, claim_states_read, refresh_states
from plane_integration.webhook_payloads import Delivery, parse

logger = logging.getLogger(__name__)

State = WebhookDelivery.State
# A person who moves one item away from the truth more often than this within the window
# is not fought: the item is left to the operator (`reassert`).
DRIFT_LIMIT = 3
DRIFT_WINDOW = timedelta(hours=1)
CALLER_MAX_CHARS = StageChange._meta.get_field("caller").max_length


# Failures that a later attempt can cure: Plane or the database unreachable, a lock or
# serialisation timeout, a race on a unique key. Anything else (a value no column takes, a
# body that no longer parses, a bug) fails the same way every time, so it is recorded once
# and not retried; an operator can re-process the delivery after a fix.
TRANSIENT = (Unreadable, OperationalError, InterfaceError, IntegrityError)


def uuid_or_none(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def project_uuid(delivery: Delivery) -> str | None:
    return uuid_or_none(delivery.project_id)


# Storing a delivery asks for a drain (plane_integration.drain), as a desired status asks for
# a board sync: the request lives here, with what is stored, and the drain imports both.
DRAIN = "plane_integration.drain.drain_deliveries"
DRAIN_QUEUED = "stageboard:webhook-drain-queued"


def request_drain(*, trust: bool = True) -> None:
    """Queue a drain unless one is queued and has not started yet (`inbox.request_run`;
    a drain queuing its successor does not trust)."""
    inbox.request_run(DRAIN, DRAIN_QUEUED, name="webhook drain", trust=trust)


def store(delivery: Delivery, body: bytes, delivery_id: str) -> tuple[int, str, bool]:
    """Store a verified delivery once; (its id, its state, stored now). One INSERT: the
    delivery table is the queue (plane_integration.drain), so a stored pending delivery is
    queued work.

    A repeat is refused by the unique dedupe key, also when copies arrive at the same
    moment. Once the row commits, a drain is asked for (at most one waits at a time).
    """
    echo = bool(settings.PLANE_BOT_USER_ID) and delivery.actor_id == settings.PLANE_BOT_USER_ID
    fields = {
        "dedupe_key": delivery.dedupe_key,
        "delivery_id": clean_text(delivery_id)[:100],
        "event": delivery.event,
        "action": delivery.action,
        "work_item_id": uuid_or_none(delivery.work_item_id),
        "body": body,
        "state": State.IGNORED if echo else State.PENDING,
        "reason": "an echo of Stageboard's own change (actor is the bot user)" if echo else "",
    }
    try:
        if connection.in_atomic_block:  # a savepoint, so a repeat leaves the caller's intact
            with transaction.atomic():
                pk = inbox.insert(WebhookDelivery, fields)
        else:  # autocommit: the INSERT is its own transaction, no BEGIN/COMMIT round trips
            pk = inbox.insert(WebhookDelivery, fields)
    except IntegrityError:
        pk, state = WebhookDelivery.objects.values_list("pk", "state").get(
            dedupe_key=delivery.dedupe_key
        )
        return pk, state, False
    if not echo:
        # Robust: the delivery is stored whatever happens here (a cache outage, say), so
        # the answer stays 202 and the drain's schedule picks it up within a minute.
        transaction.on_commit(request_drain, robust=True)
    return pk, fields["state"], True


def process_delivery(pk: int) -> str:
    """Act on one stored delivery. Steps, in one transaction:

    1. lock the delivery's row; leave it unless it is pending or failed (another worker
       processed it, or an operator's re-process raced the queue);
    2. decide which human control it is and apply it through the stage engine;
    3. record processed or ignored, with the reason.

    Before the transaction, Plane is asked for the project's states if the delivery names
    one the cache does not know: the rate budget's record of that call, and any
    Retry-After, must commit whatever happens next, and no row lock (nor SQLite's write
    lock) may wait on the network.

    A failure rolls the transaction back and records failed with the reason. A transient
    one (`TRANSIENT`) gets a `retry_at` (Q_RETRY seconds on), so a drain works it off
    again, up to Q_MAX_ATTEMPTS attempts in all; any other would fail the same way again,
    so it ends there. An operator can re-process either from the admin. Either way the
    delivery's claim is released.
    """
    try:
        pending = WebhookDelivery.objects.filter(pk=pk).first()
        if pending is not None and pending.state in (State.PENDING, State.FAILED):
            learn_states(parse(bytes(pending.body)))
        with transaction.atomic():
            row = WebhookDelivery.objects.select_for_update().get(pk=pk)
            if row.state not in (State.PENDING, State.FAILED):
                return row.state
            row.state, row.reason = apply(parse(bytes(row.body)))
            row.attempts += 1
            row.processed_at = timezone.now()
            row.claimed_until = row.retry_at = None
            row.save(
                update_fields=[
                    "state", "reason", "attempts", "processed_at", "claimed_until", "retry_at"
                ]
            )  # fmt: skip
    except Exception as exc:
        attempts = (
            WebhookDelivery.objects.filter(pk=pk).values_list("attempts", flat=True).first() or 0
        ) + 1
        retried = isinstance(exc, TRANSIENT) and attempts < settings.Q_CLUSTER["max_attempts"]
        retry_at = timezone.now() + timedelta(seconds=settings.Q_CLUSTER["retry"])
        WebhookDelivery.objects.filter(pk=pk).update(
            state=State.FAILED,
            reason=clean_text(f"{type(exc).__name__}: {exc}"),
            attempts=F("attempts") + 1,
            claimed_until=None,
            retry_at=retry_at if retried else None,
        )
        logger.exception(
            "webhook delivery %s failed (%s)", pk, "to be retried" if retried else "not retried"
        )
        return State.FAILED
    logger.info(
        "webhook delivery %s %s: %s",
        pk,
        row.state,
        row.reason,
        extra={"event": "webhook", "delivery": pk, "state": row.state, "reason": row.reason},
    )
    return row.state


def reprocess(rows) -> int:
    """Queue deliveries again (an operator's action); returns how many."""
    pks = [row.pk for row in rows]
    count = WebhookDelivery.objects.filter(pk__in=pks).update(
        state=State.PENDING, reason="queued again by an operator", retry_at=None
    )
    if count:
        transaction.on_commit(request_drain)
    return count


def not_a_control(delivery: Delivery, project: PlaneProject | None) -> str | None:
    """Why a delivery cannot be a board control, decided from its body and its project
    alone, or None. Such a delivery changes nothing (no task, no board row, no states
    read), so a drain records whole batches of them at once (plane_integration.drain)."""
    if not delivery.is_work_item:
        return f"{delivery.event} events are not board controls"
    if project is None:
        return f"project {delivery.project_id} is not a configured Plane project"
    if uuid_or_none(delivery.work_item_id) is None:
        return f"the work item id {delivery.work_item_id!r} is not a UUID"
    moves = delivery.action == "created" or delivery.is_state_change
    if not moves and delivery.new_state_id is None:
        # Neither a move nor a creation (a priority, a name...): what the states are is moot,
        # and no unknown state asks for them to be read (learn_states).
        return human_control(delivery, to_analyse_state_id=None, new_state_group=None)[1]
    return None


def apply(delivery: Delivery) -> tuple[str, str]:
    """Apply a delivery's human control, if it is one; return (state, reason)."""
    project = None
    if delivery.is_work_item:
        project = PlaneProject.objects.filter(project_id=project_uuid(delivery)).first()
    why_not = not_a_control(delivery, project)
    if why_not:
        return State.IGNORED, why_not
    work_item_id = uuid_or_none(delivery.work_item_id)
    task = Task.objects.for_work_item(work_item_id)
    states = cached_states(project)
    resolved = statuses.resolution_map(states, project.status_names)
    seen = uuid_or_none(delivery.new_state_id)
    recorded = False
    if task and delivery.is_state_change and seen:
        prefer = getattr(getattr(task, "board", None), "desired_key", "")
        key = statuses.key_showing(seen, resolved, prefer)
        recorded = board.record_seen(task, seen, key, delivery.updated_at)

    control, why = human_control(
        delivery,
        to_analyse_state_id=resolved["to_analyse"],
        new_state_group=state_group(delivery, states),
    )
    caller = f"plane:{delivery.actor_name or 'unknown'}"[:CALLER_MAX_CHARS]
    if control is Control.START:
        kind, what = control_actions.start(
            project,
            work_item_id,
            delivery.name,
            task,
            caller=caller,
            why=why,
            sequence_id=delivery.sequence_id,
        )
        return (State.PROCESSED if kind else State.IGNORED), what
    if control is Control.CANCEL:
        kind, what = control_actions.cancel(task, caller=caller, why=why)
        return (State.PROCESSED if kind else State.IGNORED), what
    if task and delivery.is_state_change and seen and recorded:
        what = reassert(project, task, seen, resolved, states)
        if what:
            return State.PROCESSED, f"{why}; {what}"
    return State.IGNORED, why


def reassert(project, task, seen: str, resolved: dict, states) -> str | None:
    """A person moved the item to a status that is no control and not the desired one:
    make the row due at once, so the ordinary sync (budgeted, coalesced, guarded) puts the
    truth back, and record the repair. After DRIFT_LIMIT such moves of one item within
    DRIFT_WINDOW, stop fighting: the row is left to the operator (`drift_left_at`, shown
    on the dashboard) until the truth changes or the item is moved back. Returns what was
    done, or None."""
    row = BoardStatus.objects.filter(task=task).first()
    if row is None or row.gone_at or row.pending:
        return None
    desired = resolved.get(row.desired_key)
    if desired is None:
        return None
    if desired == seen:
        # Moved back to what Stageboard shows (what the dashboard asks the operator to do):
        # the item is guarded again.
        cleared = BoardStatus.objects.filter(pk=row.pk, drift_left_at__isnull=False).update(
            drift_left_at=None
        )
        return "moved back to what Stageboard shows: put back again when moved" if cleared else None
    if row.drift_left_at:
        return None
    name = next((s.name for s in states if s.id == seen), seen)
    since = timezone.now() - DRIFT_WINDOW
    moves = ReconcileRepair.objects.filter(
        work_item_id=task.work_item_id, kind=ReconcileRepair.Kind.REASSERTED, at__gte=since
    ).count()
    if moves >= DRIFT_LIMIT:
        BoardStatus.objects.filter(pk=row.pk, drift_left_at__isnull=True).update(
            drift_left_at=timezone.now()
        )
        logger.warning(
            "a person keeps moving %s (to %s): left to the operator",
            task.label,
            name,
            extra={"event": "person_drift", "work_item": str(task.work_item_id)},
        )
        return f"moved away {moves + 1} times within an hour: left to the operator"
    if not board.mark_drifted(row, seen, statuses.key_showing(seen, resolved)):
        return None
    what = f"shows {name}, the truth shows {row.desired_key}: the sync puts it back"
    reconcile.record_repair(
        None, project, reconcile_rules.REASSERTED, str(task.work_item_id), task, name,
        row.desired_key, what,
    )  # fmt: skip
    return what


def learn_states(delivery: Delivery) -> None:
    """Read the project's states again if they do not know the delivery's state, at most
    once per PLANE_STATES_REFRESH_SECONDS: ids that stay unknown would otherwise spend
    the whole API budget on reads."""
    if not (delivery.is_work_item and delivery.new_state_id):
        return
    project = PlaneProject.objects.filter(project_id=project_uuid(delivery)).first()
    if project is None or any(s.id == delivery.new_state_id for s in cached_states(project)):
        return
    client = PlaneClient.from_settings()
    if client is None or not claim_states_read(project):
        return  # read lately (a negative cache): the id stays unknown, so not a control
    result = refresh_states(project, client)
    if not result.ok:
        # Without the states a control cannot be told from drift: fail, to be retried.
        raise Unreadable(f"cannot read the states of {project}: {result.error}")


def state_group(delivery: Delivery, states: list[statuses.State]) -> str | None:
    sent = delivery.state_in_data
    if sent and sent.get("id") == delivery.new_state_id and sent.get("group"):
        return str(sent["group"])
    return next((s.group for s in states if s.id == delivery.new_state_id), None)
