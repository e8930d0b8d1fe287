"""The monitor's tick: probe every due window, count, judge, and act on verdicts.

A run, in order:
1. queue again any action that was claimed but never started (its queue entry was lost);
2. claim the due windows with one conditional UPDATE and a token of this run, so that
   another run (another worker, another machine) takes other windows or none;
3. probe all claimed windows at once in threads (network only);
4. for each window, in its own transaction under its row lock: abort it if its task left
   done; else record the probes and counts, judge, and either schedule the next tick or
   claim the verdict with a conditional UPDATE (only the run whose UPDATE changed the row
   acts) and queue its action in the same transaction;
5. while windows stay active and the run has time left, sleep until the next is due
   (at once, when a pass left due windows for the next).
"""

import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django_q.tasks import async_task

from monitoring import outcomes
from monitoring.classifier import ProbeResult, Verdict, judge
from monitoring.config import MonitorConfig, current
from monitoring.models import MonitoredRepo, MonitorWindow, Probe
from monitoring.probes import Measurement, probe_health, read_error_rate
from monitoring.windows import TICK_QUEUED, announce
from pipeline.stages import Stage

logger = logging.getLogger(__name__)

State = MonitorWindow.State
Action = MonitorWindow.Action
ActionState = MonitorWindow.ActionState
PROBE_THREADS = 64
# A pass probes at most what its threads finish in this long even if every endpoint hangs
# until the timeout; the run's loop takes the rest in further passes.
PASS_SECONDS = 30
STALE_PENDING = timedelta(minutes=5)


def monitor_tick(max_seconds: float | None = None) -> dict:
    """Tick what is due, for `max_seconds` (0: one pass); without it, as the q task.

    As the q task, the cluster stops the run at its timeout (django-q2 raises in the task
    then, and kills the worker soon after), so no lease it takes need outlive that moment.
    """
    cache.delete(TICK_QUEUED)
    timeout = settings.Q_CLUSTER["timeout"]
    as_q_task = max_seconds is None
    deadline = time.monotonic() + (timeout - 10 if as_q_task else max_seconds)
    stopped_by = timezone.now() + timedelta(seconds=timeout) if as_q_task else None
    report = {"ticked": 0, "verdicts": 0, "aborted": 0}
    requeue_lost_actions()
    while True:
        config = current()
        for key, value in tick_due(config, stopped_by=stopped_by).items():
            report[key] += value
        wait = seconds_to_next_tick()
        if wait is None or time.monotonic() + wait >= deadline:
            return report
        time.sleep(wait)


def seconds_to_next_tick() -> float | None:
    """Seconds until a window is due that this run could claim.

    A window another run holds is claimable only when its lease ends: counting it as due
    at its tick time made the loop spin on queries for as long as the other run held it.
    """
    ready = Greatest("next_tick_at", Coalesce("claimed_until", "next_tick_at"))
    nxt = (
        MonitorWindow.objects.filter(state=State.ACTIVE, next_tick_at__isnull=False)
        .annotate(ready=ready)
        .order_by("ready")
        .values_list("ready", flat=True)
        .first()
    )
    return None if nxt is None else max(0.0, (nxt - timezone.now()).total_seconds())


def tick_due(config: MonitorConfig, *, stopped_by: datetime | None = None) -> dict:
    """One pass; `stopped_by`: when the cluster stops this run (None: called directly)."""
    now = timezone.now()
    token = uuid.uuid4().hex
    # Health probe and error-rate read, one after the other, each up to the timeout.
    per_window = 2 * config.probe_timeout
    per_pass = PROBE_THREADS * max(1, int(PASS_SECONDS // per_window))
    # The lease covers the whole pass (probes, then the writes), so no other run probes a
    # window this one may still record; but it ends when this run is stopped, after which
    # it records nothing: a killed worker's windows are due again when its task comes back.
    # (A run that outlives its lease still writes nothing: apply_tick checks the token.)
    lease = now + timedelta(seconds=PASS_SECONDS + per_window + 30)
    if stopped_by is not None:
        lease = min(lease, stopped_by)
    due = Q(state=State.ACTIVE, next_tick_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    oldest_first = MonitorWindow.objects.filter(due).order_by("next_tick_at")
    ids = list(oldest_first.values_list("pk", flat=True)[:per_pass])
    MonitorWindow.objects.filter(due, pk__in=ids).update(claimed_until=lease, claim_token=token)
    windows = list(MonitorWindow.objects.filter(claim_token=token, state=State.ACTIVE))
    if not windows:
        return {"ticked": 0, "verdicts": 0, "aborted": 0}
    repos = {r.name: r for r in MonitoredRepo.objects.filter(name__in={w.repo for w in windows})}

    def measure(window: MonitorWindow) -> list[Measurement]:
        repo = repos.get(window.repo)
        found = [probe_health(repo.health_url if repo else "", config.probe_timeout)]
        rate = read_error_rate(repo.error_rate_url if repo else "", config.probe_timeout)
        return found + ([rate] if rate else [])

    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(windows))) as pool:
        measured = list(pool.map(measure, windows))
    report = {"ticked": 0, "verdicts": 0, "aborted": 0}
    for window, measurements in zip(windows, measured, strict=True):
        outcome = apply_tick(window.pk, token, measurements, config, repos.get(window.repo))
        report["ticked"] += 1
        report["verdicts"] += outcome == "verdict"
        report["aborted"] += outcome == "aborted"
    return report


def apply_tick(
    window_id: int,
    token: str,
    measurements: list[Measurement],
    config: MonitorConfig,
    repo: MonitoredRepo | None,
) -> str:
    """Record one window's measurements and judge it; returns what happened."""
    now = timezone.now()
    with transaction.atomic():
        window = (
            # Only the window's row: the engine locks the task's row for its own changes.
            MonitorWindow.objects.select_for_update(of=("self",))
            .select_related("task")
            .filter(pk=window_id, claim_token=token, state=State.ACTIVE)
            .first()
        )
        if window is None:
            return "lost"  # closed or taken over meanwhile
        task = window.task
        if task.stage != Stage.DONE or task.cycle != window.cycle:
            # Cancelled or re-opened during the window: stop, and tell the board nothing.
            why = f"the task left done (now {task.stage}) during the window"
            MonitorWindow.objects.filter(pk=window_id, state=State.ACTIVE).update(
                state=State.ABORTED,
                closed_at=now,
                closed_by="monitor",
                verdict_reason=why,
                next_tick_at=None,
                claimed_until=None,
                action=Action.NONE,
            )
            outcomes.aborted(task, window.cycle, why)
            return "aborted"
        counts = window.counts
        probes = []
        for m in measurements:
            if m.kind == Probe.Kind.HEALTH:
                counts = counts.after(m.result, m.status)
            elif m.result is ProbeResult.SUCCESS:
                counts = replace(counts, source_ratio=m.value)
            probes.append(
                Probe(
                    window=window,
                    kind=m.kind,
                    at=now,
                    result=m.result,
                    status_code=m.status,
                    latency_ms=m.latency_ms,
                    value=m.value,
                    error=m.error[:1000],
                )
            )
        Probe.objects.bulk_create(probes)
        verdict, why = judge(counts, config.rules, closing=now >= window.closes_at)
        fields = {
            "consecutive_failures": counts.consecutive_failures,
            "probes_measured": counts.measured,
            "server_errors": counts.server_errors,
            "probes_unmeasured": counts.unmeasured,
            "source_ratio": counts.source_ratio,
            "probes_total": window.probes_total + sum(p.kind == Probe.Kind.HEALTH for p in probes),
            "claimed_until": None,
            "claim_token": "",
        }
        if verdict is None:
            MonitorWindow.objects.filter(pk=window_id).update(
                **fields, next_tick_at=max(now + config.tick, now)
            )
            return "watching"
        MonitorWindow.objects.filter(pk=window_id).update(**fields)
        return "verdict" if close(window, verdict, why, config, repo) else "lost"


def close(
    window: MonitorWindow,
    verdict: Verdict,
    why: str,
    config: MonitorConfig,
    repo: MonitoredRepo | None,
    *,
    by: str = "monitor",
) -> bool:
    """Claim the verdict (conditional UPDATE) and queue its action; False if already claimed."""
    action = action_for(verdict, window.repo, config, repo)
    claimed = MonitorWindow.objects.filter(pk=window.pk, state=State.ACTIVE).update(
        state=State.CLOSED,
        verdict=verdict,
        verdict_reason=why,
        closed_at=timezone.now(),
        closed_by=by,
        next_tick_at=None,
        claimed_until=None,
        claim_token="",
        action=action,
        action_state=ActionState.DONE if action == Action.NONE else ActionState.PENDING,
    )
    if not claimed:
        return False
    window.refresh_from_db()
    outcomes.judged(window)
    if action != Action.NONE:
        queue_action(window.pk, repo)
    announce(window.task)
    logger.info("window %s of %s closed: %s (%s)", window.pk, window.repo, verdict, why)
    return True


def action_for(
    verdict: Verdict, repo_name: str, config: MonitorConfig, repo: MonitoredRepo | None
) -> str:
    if verdict == Verdict.HEALTHY:
        return Action.NONE
    if verdict == Verdict.INCONCLUSIVE:
        return Action.ALERT_ONLY  # it could not measure: an alert, never a rollback
    if config.alert_only(repo_name) or repo is None or repo.alert_only or not repo.has_rollback:
        return Action.ALERT_ONLY
    return Action.ROLLBACK


def queue_action(window_id: int, repo: MonitoredRepo | None) -> None:
    # Its own q task with room for the hook's timeout; in the caller's transaction.
    timeout = (repo.rollback_timeout if repo else 0) + 60
    async_task(
        "monitoring.actions.run_action",
        window_id,
        task_name=f"monitor action {window_id}",
        timeout=timeout,
    )


def requeue_lost_actions() -> None:
    """An action claimed with its verdict but never started (its queue entry was lost)."""
    stale = timezone.now() - STALE_PENDING
    for window in MonitorWindow.objects.filter(
        action_state=ActionState.PENDING, closed_at__lt=stale
    ):
        repo = MonitoredRepo.objects.filter(name=window.repo).first()
        queue_action(window.pk, repo)
