"""DORA's five keys from a list of deploy facts. Pure: no Django, no database.

Definitions (where DORA leaves room, the choice is ours and documented):
- a *deploy* is an attempt that reached the environment: succeeded, rolled back, degraded
  (alert only) or inconclusive. Failed and aborted attempts never went out; they are
  counted apart, as attempts. Only production deploys are facts: the caller leaves out
  the others (`Deployment.production`, e.g. staging).
- a deploy belongs to the period it *finished* in; it was *made* at its start
  (`started_at`), else, when we never saw it start, at its finish.
- deployment frequency: deploys in the period per day (and per week).
- lead time for changes: from `lead_from` (the first commit of the change when the Git
  host told us, else the task's start) to the finish of a succeeded deploy; median and
  90th percentile (nearest rank), in seconds.
- change failure rate: rolled back, rollback failed or degraded deploys over all deploys.
- failed deployment recovery time (DORA's new name for time to restore; the report keeps
  `time_to_restore` as an alias with the same content for one release): from a rolled-back
  or degraded deploy (a failed rollback included: it restored nothing) to the next succeeded
  deploy of the same repo, median in seconds;
  failures not recovered yet are counted apart (`unrestored`).
- deployment rework rate: deploys of the period that are *rework* over all deploys of the
  period. A deploy is rework when it was made (its start) after the finish of a *bad*
  deploy of the same repo and environment and at most `rework_hours` later (the bound is
  inclusive). Bad is `failed`, `rolled_back`, `rollback_failed` or `degraded_alert_only`:
  a `failed` attempt never reached the environment, yet the deploy made to follow it is
  rework all the same.
  `inconclusive` (nothing showed it went wrong) and `aborted` (stopped, not failed) are not
  bad. Only deploys can be rework (a failed attempt after a failed attempt is not), a
  deploy is never its own cause, and the bad deploy may have finished before the period.
"""

import math
import statistics
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

SUCCEEDED = "succeeded"
FAILURES = frozenset({"rolled_back", "rollback_failed", "degraded_alert_only"})
REACHED = frozenset({SUCCEEDED, "inconclusive", *FAILURES})
# What a deploy made soon after is rework for: failures, and failed attempts.
BAD = frozenset({"failed", *FAILURES})
REWORK_HOURS = 24.0
OUTCOMES = (
    "succeeded",
    "failed",
    "rolled_back",
    "rollback_failed",
    "degraded_alert_only",
    "inconclusive",
    "aborted",
)


@dataclass(frozen=True)
class DeployFact:
    repo: str
    finished_at: datetime
    outcome: str
    lead_from: datetime | None  # committed_at, else the start of the task's work
    environment: str = "production"
    started_at: datetime | None = None  # None when we never saw the deploy start

    @property
    def made_at(self) -> datetime:
        return self.started_at or self.finished_at


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with `share` of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(
    facts: list[DeployFact],
    since: datetime,
    until: datetime,
    *,
    rework_hours: float = REWORK_HOURS,
) -> dict:
    """The five keys for deploys finished in [since, until), with the counts they rest on.

    `facts` may hold later deploys too: they can restore a failure of the period; and
    earlier ones: a bad deploy up to `rework_hours` before a deploy's start makes it rework.
    """
    in_period = [f for f in facts if since <= f.finished_at < until]
    by_outcome = dict.fromkeys(OUTCOMES, 0)
    for fact in in_period:
        by_outcome[fact.outcome] = by_outcome.get(fact.outcome, 0) + 1
    deploys = sum(by_outcome[o] for o in REACHED)
    failures = sum(by_outcome[o] for o in FAILURES)
    days = max((until - since).total_seconds() / 86400, 1e-9)

    leads = [
        (f.finished_at - f.lead_from).total_seconds()
        for f in in_period
        if f.outcome == SUCCEEDED and f.lead_from is not None
    ]
    restores, unrestored = _restores(facts, in_period)
    rework = _rework(facts, in_period, timedelta(hours=rework_hours))
    recovery = {
        "restored": len(restores),
        "unrestored": unrestored,
        "median_seconds": median(restores),
    }
    return {
        "deploys": deploys,
        "attempts": len(in_period),
        "by_outcome": by_outcome,
        "deployment_frequency": {
            "per_day": deploys / days,
            "per_week": deploys / days * 7,
        },
        "lead_time": {
            "count": len(leads),
            "median_seconds": median(leads),
            "p90_seconds": percentile(leads, 0.9),
        },
        "change_failure_rate": {
            "failures": failures,
            "deploys": deploys,
            "rate": failures / deploys if deploys else None,
        },
        "failed_deployment_recovery_time": recovery,
        # Deprecated alias of failed_deployment_recovery_time, for one release.
        "time_to_restore": dict(recovery),
        "deployment_rework_rate": {
            "rework": rework,
            "deploys": deploys,
            "rate": rework / deploys if deploys else None,
            "hours": rework_hours,
        },
    }


def _restores(facts: list[DeployFact], in_period: list[DeployFact]) -> tuple[list[float], int]:
    successes: dict[str, list[datetime]] = defaultdict(list)
    for fact in facts:
        if fact.outcome == SUCCEEDED:
            successes[fact.repo].append(fact.finished_at)
    for times in successes.values():
        times.sort()
    restores, unrestored = [], 0
    for fact in in_period:
        if fact.outcome not in FAILURES:
            continue
        times = successes[fact.repo]
        at = bisect_right(times, fact.finished_at)
        if at < len(times):
            restores.append((times[at] - fact.finished_at).total_seconds())
        else:
            unrestored += 1
    return restores, unrestored


def _rework(facts: list[DeployFact], in_period: list[DeployFact], hours: timedelta) -> int:
    bad: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for fact in facts:
        if fact.outcome in BAD:
            bad[fact.repo, fact.environment].append(fact.finished_at)
    for times in bad.values():
        times.sort()
    rework = 0
    for fact in in_period:
        if fact.outcome not in REACHED:
            continue
        times = bad.get((fact.repo, fact.environment), [])
        # The last bad finish strictly before this deploy was made (never itself: a
        # deploy's start is at or before its finish).
        at = bisect_left(times, fact.made_at) - 1
        if at >= 0 and fact.made_at - times[at] <= hours:
            rework += 1
    return rework


def weeks(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """Seven-day buckets from `since`; the last one ends at `until` (and takes in a
    remainder of under a second rather than making it a week of its own)."""
    buckets, start = [], since
    while start < until:
        end = min(start + timedelta(days=7), until)
        if until - end < timedelta(seconds=1):
            end = until
        buckets.append((start, end))
        start = end
    return buckets


def report(
    facts: list[DeployFact],
    since: datetime,
    until: datetime,
    *,
    repo: str | None = None,
    rework_hours: float = REWORK_HOURS,
) -> dict:
    """Figures overall (or for `repo`) and per repo, and the overall figures per week."""
    repos = sorted({f.repo for f in facts if since <= f.finished_at < until})
    if repo is not None:
        facts = [f for f in facts if f.repo == repo]
        repos = [repo] if repo in repos else []
    hours = {"rework_hours": rework_hours}
    return {
        "since": since,
        "until": until,
        "repo": repo,
        "overall": figures(facts, since, until, **hours),
        "repos": {
            name: figures([f for f in facts if f.repo == name], since, until, **hours)
            for name in repos
        },
        "weekly": [
            {"since": start, "until": end, **figures(facts, start, end, **hours)}
            for start, end in weeks(since, until)
        ],
    }


# --- DORA's performance bands ---------------------------------------------------------------
# From the 2023 Accelerate State of DevOps report's performance clusters (elite, high, medium,
# low), read as thresholds: a figure belongs to the best band whose bound it meets. The
# report names ranges ("between once per day and once per week"); where its low cluster
# overlaps the medium one (deployment frequency), "low" is what falls below medium. The 2024
# report's clusters are not monotone in the change failure rate (medium 10%, high 20%), so
# the 2023 bands are the ones used. Deployment rework rate has no published bands yet.
HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0
MONTH = 30 * DAY
BANDS: dict[str, list[tuple[str, float]]] = {
    # deploys per week: elite is on demand (daily or more), high daily to weekly,
    # medium weekly to monthly, low less often
    "deployment_frequency": [("elite", 7.0), ("high", 1.0), ("medium", 7 / 30)],
    # lead time for changes, seconds: under a day, a week, a month
    "lead_time": [("elite", DAY), ("high", WEEK), ("medium", MONTH)],
    # change failure rate, a share of deploys: 5%, 10%, 15%
    "change_failure_rate": [("elite", 0.05), ("high", 0.10), ("medium", 0.15)],
    # failed deployment recovery time, seconds: under an hour, a day, a week
    "failed_deployment_recovery_time": [("elite", HOUR), ("high", DAY), ("medium", WEEK)],
}
HIGHER_IS_BETTER = {"deployment_frequency"}


def band(key: str, value: float | None) -> str | None:
    """DORA's band for one figure (`elite`, `high`, `medium`, `low`), None without a value
    or without published bands."""
    if value is None or key not in BANDS:
        return None
    for name, bound in BANDS[key]:
        if key in HIGHER_IS_BETTER and value >= bound:
            return name
        if key not in HIGHER_IS_BETTER and value <= bound:
            return name
    return "low"


def duration(seconds: float | None) -> str:
    """A duration in a unit that fits: `42 min`, `5.5 h`, `3.2 days`."""
    if seconds is None:
        return "-"
    if seconds < HOUR:
        return f"{max(seconds / 60, 0):.0f} min"
    if seconds < 2 * DAY:
        return f"{seconds / HOUR:.1f} h".replace(".0 h", " h")
    return f"{seconds / DAY:.1f} days".replace(".0 days", " days")
