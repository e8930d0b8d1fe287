"""The monitor's tick: probe every due window, count, judge, and act on verdicts.

A run, in order:
1. queue again any action that was claimed but never started (its queue entry was lost);
2. claim the due windows with one conditional UPDATE and a token of this run, so that
   another run (another worker, another machine) takes other windows or none;
3. probe all claimed windows and read all their checks at once in threads (network only);
4. for each window, in its own transaction under its row lock: abort it if its task left
   done; else record the probes, the checks' measurements (and their baselines, the first
   time) and the counts, judge, and either schedule the next tick or
   claim the verdict with a conditional UPDATE (only the run whose UPDATE changed the row
   acts) and queue its action in the same transaction;
5. while windows stay active and the run has time left, sleep until the next is due
   (at once, when a pass left due windows for the next).
"""

import logging
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django_q.tasks import async_task

from monitoring import outcomes
from monitoring.analysis import Tally, assess, judge_window
from monitoring.checks import CheckReading, DeployFacts, read_check
from monitoring.classifier import ProbeResult, Verdict
from monitoring.config import MonitorConfig, current
from monitoring.models import (
    Check,
    CheckBaseline,
    CheckMeasurement,
    MonitoredRepo,
    MonitorWindow,
    Probe,
)
from monitoring.probes import Measurement, probe_health, read_error_rate
from monitoring.windows import TICK_QUEUED, announce
from pipeline.models import Deployment
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


@dataclass(frozen=True)
class Watch:
    """What one window is measured by in this pass (read before the threads start)."""

    repo: MonitoredRepo | None
    checks: list[Check]
    facts: DeployFacts
    deploy_started_at: datetime
    baselines: dict[str, float]

    @property
    def health(self) -> bool:
        """A repo with checks and no health URL is judged by its checks alone."""
        return bool(self.repo is None or self.repo.health_url or not self.checks)


def tick_due(config: MonitorConfig, *, stopped_by: datetime | None = None) -> dict:
    """One pass; `stopped_by`: when the cluster stops this run (None: called directly)."""
    now = timezone.now()
    token = uuid.uuid4().hex
    # One job is a health probe and an error-rate read, or one check's baseline and value:
    # two reads one after the other, each up to the timeout.
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
    ids = jobs_within(list(oldest_first.values_list("pk", "repo")[:per_pass]), per_pass)
    MonitorWindow.objects.filter(due, pk__in=ids).update(claimed_until=lease, claim_token=token)
    windows = list(MonitorWindow.objects.filter(claim_token=token, state=State.ACTIVE))
    if not windows:
        return {"ticked": 0, "verdicts": 0, "aborted": 0}
    watches = watches_of(windows)

    def probe(window: MonitorWindow) -> list[Measurement]:
        repo = watches[window.pk].repo
        if not watches[window.pk].health:
            return []
        found = [probe_health(repo.health_url if repo else "", config.probe_timeout)]
        rate = read_error_rate(repo.error_rate_url if repo else "", config.probe_timeout)
        return found + ([rate] if rate else [])

    def read(job: tuple[MonitorWindow, Check]) -> CheckReading:
        window, check = job
        watch = watches[window.pk]
        baseline = watch.baselines.get(check.name)
        try:
            return read_check(
                check, watch.facts, watch.deploy_started_at, baseline, config.probe_timeout
            )
        except Exception as exc:
            # One check's surprise (an answer no provider case foresaw) must not stop the
            # tick of every window: it is that check's unmeasured reading.
            logger.exception("check %s of %s could not be read", check.name, window.repo)
            return CheckReading(check.name, None, f"could not be read: {exc!r}"[:500])

    check_jobs = [(w, c) for w in windows for c in watches[w.pk].checks]
    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(windows) + len(check_jobs))) as pool:
        probing = pool.map(probe, windows)
        reading = pool.map(read, check_jobs)
        measured, readings = list(probing), defaultdict(list)
        for (window, _), found in zip(check_jobs, reading, strict=True):
            readings[window.pk].append(found)
    report = {"ticked": 0, "verdicts": 0, "aborted": 0}
    for window, measurements in zip(windows, measured, strict=True):
        outcome = apply_tick(
            window.pk, token, measurements, config, watches[window.pk], readings[window.pk]
        )
        report["ticked"] += 1
        report["verdicts"] += outcome == "verdict"
        report["aborted"] += outcome == "aborted"
    return report


def jobs_within(due: list[tuple[int, str]], budget: int) -> list[int]:
    """The oldest due windows whose jobs (a probe, and one per check) fit in the budget.

    At least one, so a repo with more checks than the budget is still watched.
    """
    per_repo = dict(
        Check.objects.filter(repo__name__in={repo for _, repo in due})
        .values_list("repo__name")
        .annotate(n=Count("pk"))
        .values_list("repo__name", "n")
    )
    ids, jobs = [], 0
    for pk, repo in due:
        jobs += 1 + per_repo.get(repo, 0)
        if ids and jobs > budget:
            break
        ids.append(pk)
    return ids


def watches_of(windows: list[MonitorWindow]) -> dict[int, Watch]:
    """Each window's repo, checks, deploy facts and stored baselines, in four queries."""
    names = {w.repo for w in windows}
    repos = {r.name: r for r in MonitoredRepo.objects.filter(name__in=names)}
    checks = defaultdict(list)
    for check in Check.objects.filter(repo__name__in=names).select_related("repo"):
        checks[check.repo.name].append(check)
    deploys = {
        d.window_id: d
        for d in Deployment.objects.filter(window_id__in=[w.pk for w in windows]).only(
            "window_id", "environment", "commit_sha", "started_at"
        )
    }
    baselines = defaultdict(dict)
    for window_id, name, value in CheckBaseline.objects.filter(window__in=windows).values_list(
        "window_id", "check_name", "value"
    ):
        baselines[window_id][name] = value
    watches = {}
    for window in windows:
        deploy = deploys.get(window.pk)
        watches[window.pk] = Watch(
            repo=repos.get(window.repo),
            checks=checks.get(window.repo, []),
            facts=DeployFacts(
                repo=window.repo,
                environment=deploy.environment if deploy else "production",
                commit_sha=deploy.commit_sha if deploy else "",
            ),
            # A deploy started outside the API has no start: the window's opening is the
            # nearest moment we know, and its baseline then includes the deploy itself.
            deploy_started_at=(deploy.started_at if deploy else None) or window.opened_at,
            baselines=baselines[window.pk],
        )
    return watches


def record_checks(
    window: MonitorWindow, watch: Watch, readings: list[CheckReading], now: datetime
) -> list[Tally]:
    """Store the checks' measurements (and first baselines); each check's tally so far."""
    baselines = dict(watch.baselines)
    new = [r for r in readings if r.baseline_asked and r.baseline is not None]
    CheckBaseline.objects.bulk_create(
        [
            CheckBaseline(
                window=window,
                check_name=r.name,
                value=r.baseline,
                evaluated_at=watch.deploy_started_at,
                minutes=next(c.baseline_minutes for c in watch.checks if c.name == r.name),
            )
            for r in new
        ],
        ignore_conflicts=True,  # another run stored it first: the same number
    )
    baselines.update({r.name: r.baseline for r in new})
    rows, failed_now = [], {}
    by_name = {r.name: r for r in readings}
    for check in watch.checks:
        reading = by_name.get(check.name)
        if reading is None:
            continue
        baseline = baselines.get(check.name)
        result, why = assess(reading.value, check.limit, baseline)
        if result is ProbeResult.UNMEASURED and reading.value is not None:
            why = f"no baseline: {reading.baseline_error or 'not known yet'}"
        elif result is ProbeResult.UNMEASURED:
            why = reading.error or why
        if result is ProbeResult.FAILURE:
            failed_now[check.name] = reading.value
        rows.append(
            CheckMeasurement(
                window=window,
                check_name=check.name,
                at=now,
                value=reading.value,
                baseline=baseline,
                bound=check.limit.bound(baseline),
                condition=check.limit.describe(baseline)[:120],
                result=result,
                error=why[:1000],
            )
        )
    CheckMeasurement.objects.bulk_create(rows)
    return tallies_of(window, watch.checks, baselines, failed_now)


def tallies_of(
    window: MonitorWindow,
    checks: list[Check],
    baselines: dict[str, float],
    last_failed: dict[str, float] | None = None,
) -> list[Tally]:
    unmeasured = Q(result=ProbeResult.UNMEASURED)
    counted = {
        row["check_name"]: row
        for row in CheckMeasurement.objects.filter(window=window)
        .order_by()
        .values("check_name")
        .annotate(
            measured=Count("pk", filter=~unmeasured),
            failed=Count("pk", filter=Q(result=ProbeResult.FAILURE)),
            unmeasured=Count("pk", filter=unmeasured),
        )
    }
    tallies = []
    for check in checks:
        row = counted.get(check.name, {})
        tallies.append(
            Tally(
                name=check.name,
                limit=check.limit,
                failure_limit=check.failure_limit,
                measured=row.get("measured", 0),
                failed=row.get("failed", 0),
                unmeasured=row.get("unmeasured", 0),
                baseline=baselines.get(check.name),
                last_failed_value=(last_failed or {}).get(check.name),
            )
        )
    return tallies


def apply_tick(
    window_id: int,
    token: str,
    measurements: list[Measurement],
    config: MonitorConfig,
    watch: Watch,
    readings: list[CheckReading] = (),
) -> str:
    """Record one window's measurements and judge it; returns what happened."""
    repo = watch.repo
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
        tallies = record_checks(window, watch, list(readings), now)
        verdict, why = judge_window(
            counts, config.rules, tallies, closing=now >= window.closes_at, health=watch.health
        )
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
