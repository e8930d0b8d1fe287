"""DORA's four keys from a list of deploy facts. Pure: no Django, no database.

Definitions (where DORA leaves room, the choice is ours and documented):
- a *deploy* is an attempt that reached the environment: succeeded, rolled back, degraded
  (alert only) or inconclusive. Failed and aborted attempts never went out; they are
  counted apart, as attempts.
- deployment frequency: deploys in the period per day (and per week).
- lead time for changes: from the commit time when given, else from the start of the
  task's work, to the finish of a succeeded deploy; median and 90th percentile
  (nearest rank), in seconds.
- change failure rate: rolled back or degraded deploys over all deploys.
- time to restore: from a rolled-back or degraded deploy to the next succeeded deploy of
  the same repo, median in seconds; failures not restored yet are counted apart.
"""

import math
import statistics
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

SUCCEEDED = "succeeded"
FAILURES = frozenset({"rolled_back", "degraded_alert_only"})
REACHED = frozenset({SUCCEEDED, "inconclusive", *FAILURES})
OUTCOMES = ("succeeded", "failed", "rolled_back", "degraded_alert_only", "inconclusive", "aborted")


@dataclass(frozen=True)
class DeployFact:
    repo: str
    finished_at: datetime
    outcome: str
    lead_from: datetime | None  # committed_at, else the start of the task's work


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with `share` of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figures(facts: list[DeployFact], since: datetime, until: datetime) -> dict:
    """The four keys for deploys finished in [since, until), with the counts they rest on.

    `facts` may hold later deploys too: they can restore a failure of the period.
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
        "time_to_restore": {
            "restored": len(restores),
            "unrestored": unrestored,
            "median_seconds": median(restores),
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
    facts: list[DeployFact], since: datetime, until: datetime, *, repo: str | None = None
) -> dict:
    """Figures overall (or for `repo`) and per repo, and the overall figures per week."""
    repos = sorted({f.repo for f in facts if since <= f.finished_at < until})
    if repo is not None:
        facts = [f for f in facts if f.repo == repo]
        repos = [repo] if repo in repos else []
    return {
        "since": since,
        "until": until,
        "repo": repo,
        "overall": figures(facts, since, until),
        "repos": {
            name: figures([f for f in facts if f.repo == name], since, until) for name in repos
        },
        "weekly": [
            {"since": start, "until": end, **figures(facts, start, end)}
            for start, end in weeks(since, until)
        ],
    }
