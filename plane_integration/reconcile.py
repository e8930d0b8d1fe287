"""The reconciler: sweeps Plane's work items and repairs where the board and the truth differ.

`reconcile(full=...)` is the one way in; `manage.py reconcile` and two django-q schedules
(incremental every RECONCILE_INTERVAL_MINUTES, full every RECONCILE_FULL_MINUTES) call it.
Per configured project, in order:

1. take the project's lease (a conditional UPDATE on its `ProjectSweep` row), so two runs,
   on one cluster or two, never sweep one project at once;
2. incremental: read the work items list newest change first, a page at a time, from the
   saved cursor, and stop at the first page that reaches items older than where the last
   complete sweep began (less a safety margin): a quiet board costs one call;
3. full (asked for, or one under way): read every page, then ask Plane for each task whose
   item the list did not show; a 404 means deleted or archived (`gone`);
4. per page, one query loads the tasks and board rows of its items; `reconcile_rules.decide`
   picks at most one repair per item, carried out through the same engine calls as the
   webhook's controls, or by making the board row due so the ordinary sync (and its guard)
   puts the truth back;
5. every Plane call is charged to the shared rate budget with half of each window left to
   the sync, and a run makes at most half a minute's worth of calls: then it stops with
   `complete = False`, keeps its cursors, and the next run resumes there.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from pipeline import switchboard
from pipeline.logs import log_event
from pipeline.models import Task
from plane_integration import board as boards
from plane_integration import control_actions, reconcile_rules, statuses
from plane_integration.client import PlaneClient, PlaneResult, time_limit
from plane_integration.models import (
    BoardStatus,
    PlaneProject,
    ProjectSweep,
    ReconcileRepair,
    ReconcileRun,
)
from plane_integration.states import cached_states, refresh_states

logger = logging.getLogger(__name__)

CALLER = "reconciler"
FIELDS = ("id", "name", "state", "updated_at", "sequence_id")
ORDER_BY = "-updated_at"
GONE_REASON = "work item deleted or archived in Plane"
GONE_BATCH = 50
LEASE_LOST = "another run took over the project's lease"
REFUSED = (403, 404)  # Plane's answer to a project the key may not read, or that is gone


@dataclass
class Sweep:
    """One run's shared state: its record, its client and what it may still spend."""

    run: ReconcileRun
    client: PlaneClient
    max_calls: int
    deadline: float | None
    sent_before: int = 0
    stopped: str = ""  # why the run yielded early
    notes: list[str] = field(default_factory=list)
    lease: ProjectSweep | None = None  # of the project being swept
    refused: set[int] = field(default_factory=set)  # projects Plane refused (403, 404)

    @property
    def calls(self) -> int:
        return self.client.sent - self.sent_before

    def may_call(self) -> bool:
        if self.calls >= self.max_calls:
            self.stopped = f"used its share of Plane's budget ({self.max_calls} calls)"
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.stopped = "ran out of time"
        return not self.stopped

    def holds_lease(self) -> bool:
        """Renew the project's lease before acting on what Plane answered; False (and stop)
        when another run has taken it over: a call outlived the lease."""
        renewed = ProjectSweep.objects.filter(pk=self.lease.pk, claim=self.lease.claim).update(
            claimed_until=_lease_until()
        )
        if not renewed:
            self.stopped = f"{LEASE_LOST} (a call outlived it)"
        return bool(renewed)

    def failed(self, project: PlaneProject, result: PlaneResult) -> None:
        if result.retry_after == 0:  # the client refused to start a call it had no time for
            self.stopped = "ran out of time"
        elif result.rate_limited:
            self.stopped = f"Plane's rate budget is spent ({result.error})"
        elif result.status in REFUSED:
            # This project only (not a member, or gone): said on the dashboard, and the
            # other projects' sweeps are not incomplete for it.
            self.refused.add(project.pk)
            why = f"Plane refused it ({result.error})"
            PlaneProject.objects.filter(pk=project.pk).update(refused=why)
            self.notes.append(f"{project.project_id}: {why}")
        else:
            self.notes.append(f"{project.project_id}: {result.error}")


def reconcile(
    *, full: bool, project_id: str | None = None, trigger: str = "command"
) -> ReconcileRun:
    """Run one sweep of the configured projects (or one of them) and record it."""
    kind = ReconcileRun.Kind.FULL if full else ReconcileRun.Kind.INCREMENTAL
    run = ReconcileRun.objects.create(kind=kind, trigger=trigger, started_at=timezone.now())
    limit = settings.PLANE_RATE_LIMIT_PER_MINUTE
    client = PlaneClient.from_settings(reserve=limit // 2)
    if client is None:
        return _finish(run, False, "Plane is not configured (PLANE_API_URL, PLANE_API_KEY)")
    deadline = None
    if trigger == "schedule":  # inside a q task: end well before the cluster's timeout
        deadline = time.monotonic() + settings.Q_CLUSTER["timeout"] / 2
    sweep = Sweep(run, client, max(1, limit // 2), deadline, sent_before=client.sent)
    projects = PlaneProject.objects.order_by("pk")
    if project_id:
        projects = projects.filter(project_id=project_id)
    complete = True
    with time_limit(deadline):  # no single call may outlive the run's deadline either
        for project in projects:
            if sweep.stopped:
                complete = False
                break
            lease = _claim(project)
            if lease is None:
                sweep.notes.append(f"{project.project_id}: another run is sweeping it")
                complete = False
                continue
            swept_from, sweep.lease = timezone.now(), lease
            try:
                swept = _sweep_project(sweep, project, lease, full)
                complete &= swept or project.pk in sweep.refused
            finally:
                _swept(sweep, project, swept_from)  # before the release: no other run has it
                _release(lease)
            run.projects += 1
    run.plane_calls = sweep.calls
    if "budget" in sweep.stopped:
        _resume_when_budget_allows(full)
    return _finish(run, complete and not sweep.stopped, "; ".join([sweep.stopped, *sweep.notes]))


def _resume_when_budget_allows(full: bool) -> None:
    """Stopped by the rate budget: run again once its window has passed, not at the next
    tick (one such resume waits at a time)."""
    from django_q.models import Schedule

    name = f"reconcile resume ({'full' if full else 'incremental'})"
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": "plane_integration.reconcile.scheduled_sweep",
            "kwargs": {"full": full},
            "schedule_type": Schedule.ONCE,
            "repeats": -1,
            "next_run": timezone.now() + timedelta(seconds=settings.PLANE_RATE_WINDOW_SECONDS),
        },
    )


def scheduled_sweep(full: bool = False) -> dict:
    """The schedules' entry point: does nothing while the switchboard turns sweeps off."""
    if not switchboard.get().reconcile_enabled:
        logger.info("reconciler: sweeps are switched off in the switchboard")
        return {"skipped": "reconcile_enabled is off"}
    return reconcile(full=full, trigger="schedule").as_record()


# --- one project ---------------------------------------------------------------------------


def _sweep_project(sweep: Sweep, project: PlaneProject, lease: ProjectSweep, full: bool) -> bool:
    if not full and not _incremental(sweep, project, lease):
        return False
    if full and lease.full_started_at is None:
        lease.full_started_at, lease.full_cursor, lease.full_listed = timezone.now(), "", False
        _save(lease)
    if lease.full_started_at is not None:  # asked for now, or under way since an earlier run
        return _full(sweep, project, lease)
    return True


def _incremental(sweep: Sweep, project: PlaneProject, lease: ProjectSweep) -> bool:
    if lease.incremental_started_at is None:
        lease.incremental_started_at, lease.incremental_cursor = timezone.now(), ""
    cutoff = None
    if lease.last_complete_started_at is not None:
        margin = timedelta(seconds=settings.RECONCILE_SAFETY_MARGIN_SECONDS)
        cutoff = lease.last_complete_started_at - margin
    while True:
        page = _read_page(sweep, project, lease.incremental_cursor, lease.incremental_started_at)
        if page is None:
            _save(lease)
            return False
        items, next_cursor = page
        oldest = min((_when(item) for item in items), default=None)
        reached_cutoff = cutoff is not None and (oldest is None or oldest < cutoff)
        if not next_cursor or reached_cutoff:
            _completed(lease, lease.incremental_started_at)
            lease.incremental_started_at, lease.incremental_cursor = None, ""
            _save(lease)
            return True
        lease.incremental_cursor = next_cursor
        _save(lease)


def _full(sweep: Sweep, project: PlaneProject, lease: ProjectSweep) -> bool:
    while not lease.full_listed:
        page = _read_page(sweep, project, lease.full_cursor, lease.full_started_at)
        if page is None:
            _save(lease)
            return False
        lease.full_cursor = page[1]
        lease.full_listed = not page[1]
        _save(lease)
    if not _confirm_gone(sweep, project, lease):
        return False
    _completed(lease, lease.full_started_at)
    lease.last_full_finished_at = timezone.now()
    lease.full_started_at, lease.full_cursor, lease.full_listed = None, "", False
    _save(lease)
    return True


def _read_page(
    sweep: Sweep, project: PlaneProject, cursor: str, sweep_started_at: datetime
) -> tuple[list[dict], str] | None:
    """Read and act on one page; (its items, the next cursor or ""), or None to stop."""
    if not sweep.may_call():
        return None
    read_at = timezone.now()
    result = sweep.client.work_items_page(
        project.workspace_slug,
        str(project.project_id),
        fields=FIELDS,
        order_by=ORDER_BY,
        cursor=cursor or None,
    )
    if not result.ok:
        sweep.failed(project, result)
        return None
    if project.refused:
        PlaneProject.objects.filter(pk=project.pk).update(refused="")
        project.refused = ""
    if not sweep.holds_lease():
        return None
    items = [item for item in result.data.get("results") or [] if isinstance(item, dict)]
    sweep.run.items_seen += len(items)
    _act_on(sweep, project, items, read_at, sweep_started_at)
    more = result.data.get("next_page_results") and result.data.get("next_cursor")
    return items, str(more) if more else ""


def _confirm_gone(sweep: Sweep, project: PlaneProject, lease: ProjectSweep) -> bool:
    """Ask Plane for each task's item the full list did not show; act on what it says."""
    unanswered: set[int] = set()
    while True:
        absent = list(
            BoardStatus.objects.select_related("task")
            .filter(task__project_id=project.project_id, task__created_at__lt=lease.full_started_at)
            .filter(Q(listed_at__isnull=True) | Q(listed_at__lt=lease.full_started_at))
            .exclude(gone_at__isnull=False, task__stage__in=reconcile_rules.FINISHED_STAGES)
            .exclude(pk__in=unanswered)
            .order_by("pk")[:GONE_BATCH]
        )
        if not absent:
            return True
        for row in absent:
            if not sweep.may_call():
                return False
            read_at = timezone.now()
            result = sweep.client.get_work_item(
                project.workspace_slug, str(project.project_id), str(row.task.work_item_id)
            )
            if not sweep.holds_lease():
                return False
            if result.status == 404:
                _gone(sweep, project, row.task)
            elif result.ok and isinstance(result.data, dict):
                # Still there: it changed while the list was read and slipped between pages.
                _act_on(sweep, project, [result.data], read_at, lease.full_started_at)
                unanswered.add(row.pk)
            elif result.rate_limited:
                sweep.failed(project, result)
                return False
            else:  # cannot tell now: the next full sweep asks again
                unanswered.add(row.pk)


# --- deciding and repairing ------------------------------------------------------------------


def _act_on(
    sweep: Sweep,
    project: PlaneProject,
    items: list[dict],
    read_at: datetime,
    sweep_started_at: datetime,
) -> None:
    """Decide and repair a page of listed items, with a constant number of queries."""
    listed = {}
    for item in items:
        try:
            listed[str(uuid.UUID(str(item.get("id"))))] = item
        except ValueError:
            continue
    if not listed:
        return
    states = _states(
        sweep, project, {str(i.get("state")) for i in listed.values()}, sweep_started_at
    )
    resolved = statuses.resolution_map(states, project.status_names)
    by_id = {state.id: state for state in states}
    tasks = {
        str(task.work_item_id): task
        for task in Task.objects.filter(work_item_id__in=list(listed)).select_related("board")
    }
    BoardStatus.objects.filter(task__in=tasks.values()).update(listed_at=read_at)
    _record_shown(tasks, listed, resolved, read_at)
    for work_item_id, item in listed.items():
        state_id = _state_of(item)
        if not state_id:
            continue  # a list without states tells nothing about the board
        task = tasks.get(work_item_id)
        row = getattr(task, "board", None) if task else None
        if row is not None and row.gone_at is not None:
            boards.mark_listed_again(row)  # restored in Plane: the sync sends to it again
            continue
        truth = None
        if task is not None:
            truth = reconcile_rules.Truth(
                stage=task.stage,
                desired_state_id=resolved.get(row.desired_key) if row else None,
                pending=_pending(row, read_at),
            )
        state = by_id.get(state_id)
        shown = reconcile_rules.Shown(state_id, state.group if state else None)
        kind = reconcile_rules.decide(shown, truth, resolved["to_analyse"])
        if kind is not None:
            name = state.name if state else state_id
            _repair(sweep, project, kind, work_item_id, item, task, row, name, resolved)


def _states(
    sweep: Sweep, project: PlaneProject, named: set[str], sweep_started_at: datetime
) -> list[statuses.State]:
    """The project's cached states, read again (once a sweep) if an item names a new one."""
    states = cached_states(project)
    unknown = named - {state.id for state in states} - {""}
    fresh = project.states_refreshed_at and project.states_refreshed_at >= sweep_started_at
    if unknown and not fresh and sweep.may_call() and refresh_states(project, sweep.client).ok:
        states = cached_states(project)
    return states


def _record_shown(tasks: dict, listed: dict, resolved: dict, read_at: datetime) -> None:
    """Record what each item showed, in one query, on rows the sync left alone since."""
    seen = []
    for work_item_id, task in tasks.items():
        row = getattr(task, "board", None)
        state_id = _state_of(listed[work_item_id])
        if row is None or not state_id or str(row.shown_state_id) == state_id:
            continue
        if row.synced_at is not None and row.synced_at >= read_at:
            continue  # the sync sent after the page was read: the page is older than it
        when = _when(listed[work_item_id])
        if when and row.shown_updated_at and when < row.shown_updated_at:
            continue  # a webhook already told of a newer state
        row.shown_state_id = state_id
        row.shown_key = statuses.key_showing(state_id, resolved, row.desired_key)
        row.shown_updated_at = when or row.shown_updated_at
        seen.append(row)
    if seen:
        BoardStatus.objects.bulk_update(seen, ["shown_state_id", "shown_key", "shown_updated_at"])


def _pending(row: BoardStatus | None, read_at: datetime) -> bool:
    """A send is pending, or the sync changed the row after the page was read (the page may
    show the item from before our own PATCH)."""
    if row is None:
        return False
    changed_since = row.synced_at is not None and row.synced_at >= read_at
    return row.pending or changed_since


def _repair(sweep, project, kind, work_item_id, item, task, row, shown_name, resolved) -> None:
    """Carry out one repair and record it, together."""
    with transaction.atomic():
        if kind == reconcile_rules.STARTED:
            why = "shows To Analyse but has no task (a missed webhook)"
            done, what = control_actions.start(
                project,
                work_item_id,
                str(item.get("name") or ""),
                None,
                caller=CALLER,
                why=why,
                sequence_id=item.get("sequence_id"),
            )
            to = "analysis"
        elif kind == reconcile_rules.REOPENED:
            why = f"shows To Analyse; the task was {task.stage}"
            done, what = control_actions.start(
                project, work_item_id, "", task, caller=CALLER, why=why
            )
            to = "analysis"
        elif kind == reconcile_rules.CANCELLED:
            why = f"moved to {shown_name}, a cancelled status, in Plane"
            done, what = control_actions.cancel(task, caller=CALLER, why=why)
            to = "cancelled"
        else:
            state_id = _state_of(item)
            key = statuses.key_showing(state_id, resolved)
            done = boards.mark_drifted(row, state_id, key)
            to = row.desired_key
            what = f"shows {shown_name}, the truth shows {to}: the sync puts it back"
        if done:
            task = task or Task.objects.for_work_item(work_item_id)
            _record(sweep, project, kind, work_item_id, task, shown_name, to, what)


def _gone(sweep: Sweep, project: PlaneProject, task: Task) -> None:
    """Plane answers 404: stop sending to the item; cancel its task unless finished."""
    sweep.run.repair_count += gone(project, task, sweep.run)


def gone(project: PlaneProject, task: Task, run: ReconcileRun | None) -> int:
    """The one way a deletion is handled, by a full sweep (`run`) or by the board sync (None):
    the row marked gone, an unfinished task cancelled, the repair recorded. Returns 1."""
    with transaction.atomic():
        boards.mark_gone(task)
        done, what = control_actions.cancel(task, caller=CALLER, why=GONE_REASON)
        if not done:
            what = f"{GONE_REASON}: the {task.stage} task is left as it is"
        record_repair(
            run, project, reconcile_rules.GONE, str(task.work_item_id), task, "", task.stage, what
        )
    return 1


def confirm_gone(task: Task) -> bool | None:
    """The sync's PATCH was answered 404: ask Plane once more (one GET, on the shared
    budget). True: a 404 again, handled exactly as a full sweep handles a deletion (`gone`);
    False: the item is there; None: Plane could not tell (the next full sweep asks)."""
    project = PlaneProject.objects.filter(project_id=task.project_id).first()
    client = PlaneClient.from_settings()
    if project is None or client is None:
        return None
    result = client.get_work_item(
        project.workspace_slug, str(project.project_id), str(task.work_item_id)
    )
    if result.status == 404:
        gone(project, task, None)
        return True
    if result.ok:
        return False
    return None


def _record(sweep, project, kind, work_item_id, task, shown, to, reason) -> None:
    if record_repair(sweep.run, project, kind, work_item_id, task, shown, to, reason):
        sweep.run.repair_count += 1


# A sweep's repair of an item that the last sweeps made too, this many times in a row, is
# stuck: putting it back does not hold (a status Plane keeps refusing, a row that cannot be
# sent). It is recorded once, marked stuck, and not again while it keeps coming back.
STUCK_AFTER = 3
STUCK_WINDOW = timedelta(hours=24)


def stuck_before(run, kind, work_item_id, to) -> tuple[bool, bool]:
    """(reported stuck already, stuck now) for a sweep's repair about to be recorded."""
    if run is None or kind != reconcile_rules.REASSERTED:
        return False, False
    since = timezone.now() - STUCK_WINDOW
    earlier = list(
        ReconcileRepair.objects.filter(
            work_item_id=work_item_id, kind=kind, run__isnull=False, at__gte=since
        )
        .order_by("-id")
        .values_list("to", "stuck")[: STUCK_AFTER - 1]
    )
    if earlier and earlier[0] == (to, True):
        return True, True
    same = [row for row in earlier if row[0] == to]
    return False, len(same) == STUCK_AFTER - 1


def record_repair(run, project, kind, work_item_id, task, shown, to, reason) -> bool:
    """Record a repair and log it; False when it is a stuck repair reported already."""
    told, stuck = stuck_before(run, kind, str(work_item_id), to)
    if told:
        return False
    ReconcileRepair.objects.create(
        run=run,
        work_item_id=work_item_id,
        project_id=project.project_id,
        task=task,
        kind=kind,
        shown=shown[:255],
        to=to,
        reason=reason,
        stuck=stuck,
    )
    log_event(
        logger,
        logging.WARNING if stuck else logging.INFO,
        {
            "event": "reconcile_repair",
            "run": run.pk if run else None,
            "work_item": work_item_id,
            "project": str(project.project_id),
            "kind": kind,
            "from": shown,
            "to": to,
            "reason": reason,
            "stuck": stuck,
        },
    )
    return True


# --- bookkeeping -----------------------------------------------------------------------------


def _claim(project: PlaneProject) -> ProjectSweep | None:
    try:
        lease, _ = ProjectSweep.objects.get_or_create(project=project)
    except IntegrityError:  # another run created it at the same moment
        lease = ProjectSweep.objects.get(project=project)
    now, claim = timezone.now(), uuid.uuid4().hex
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if not ProjectSweep.objects.filter(free, pk=lease.pk).update(
        claimed_until=_lease_until(), claim=claim
    ):
        return None
    lease.refresh_from_db()
    return lease


def _lease_until() -> datetime:
    # Outlives the q task that holds it (its timeout), so a killed run frees it in time;
    # a run renews it with every answer it acts on (Sweep.holds_lease).
    return timezone.now() + timedelta(seconds=settings.Q_CLUSTER["retry"])


def _save(lease: ProjectSweep) -> None:
    """Keep the sweep's progress, while the lease is still ours."""
    ProjectSweep.objects.filter(pk=lease.pk, claim=lease.claim).update(
        incremental_cursor=lease.incremental_cursor,
        incremental_started_at=lease.incremental_started_at,
        full_cursor=lease.full_cursor,
        full_started_at=lease.full_started_at,
        full_listed=lease.full_listed,
        last_complete_started_at=lease.last_complete_started_at,
        last_full_finished_at=lease.last_full_finished_at,
    )


def _swept(sweep: Sweep, project: PlaneProject, swept_from: datetime) -> None:
    """Log when this run held the project's lease: the spans of one project never overlap,
    except a run's that lost its lease (`lease_lost`), which acted on nothing after that."""
    swept_until = timezone.now()
    lost = sweep.stopped.startswith(LEASE_LOST)
    logger.info(
        "reconciler: run %s swept project %s from %s to %s%s",
        sweep.run.pk,
        project.project_id,
        swept_from.isoformat(),
        swept_until.isoformat(),
        f" ({sweep.stopped})" if lost else "",
        extra={
            "event": "reconcile_project",
            "run": sweep.run.pk,
            "project": str(project.project_id),
            "swept_from": swept_from.isoformat(),
            "swept_until": swept_until.isoformat(),
            "lease_lost": lost,
        },
    )


def _release(lease: ProjectSweep) -> None:
    ProjectSweep.objects.filter(pk=lease.pk, claim=lease.claim).update(claimed_until=None, claim="")


def _completed(lease: ProjectSweep, started_at: datetime) -> None:
    if lease.last_complete_started_at is None or started_at > lease.last_complete_started_at:
        lease.last_complete_started_at = started_at


def _uuid_text(value) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return ""


def _state_of(item: dict) -> str:
    """The item's state id ("" when it names none): a UUID, or an object with one."""
    state = item.get("state")
    return _uuid_text(state.get("id") if isinstance(state, dict) else state)


def _when(item: dict) -> datetime | None:
    raw = item.get("updated_at")
    try:
        when = parse_datetime(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if when is not None and timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)  # Plane keeps its times in UTC
    return when


def _finish(run: ReconcileRun, complete: bool, note: str) -> ReconcileRun:
    run.finished_at = timezone.now()
    run.complete = complete
    run.note = note.strip("; ")
    run.save()
    logger.info(
        "reconciler: %s sweep of %d project(s): %d items seen, %d Plane calls, %d repairs%s",
        run.kind,
        run.projects,
        run.items_seen,
        run.plane_calls,
        run.repair_count,
        "" if complete else f", incomplete ({run.note or 'see the run'})",
        extra={"event": "reconcile_run", "run": run.pk, "complete": complete},
    )
    return run
