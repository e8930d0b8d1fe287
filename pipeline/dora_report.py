"""DORA figures from the delivery record: one query, whatever the number of deployments.

Only production deploys count (`Deployment.production`): a deploy to staging is no fact.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipeline import dora
from pipeline.models import Deployment


def dora_report(
    *, days: int, repo: str | None = None, now=None, since: datetime | None = None
) -> dict:
    """The figures for the last `days` days (or from `since`) up to now."""
    until = now or timezone.now()
    since = since or until - timedelta(days=days)
    hours = settings.DORA_REWORK_HOURS
    finished = Deployment.objects.filter(production=True, finished_at__lte=until).exclude(
        outcome=""
    )
    if repo:
        finished = finished.filter(repo=repo)
    # Rework looks back from each deploy's start: also take in what finished up to the
    # hours before the earliest start of the period's deploys (a subquery, not a query).
    earliest = (
        finished.filter(finished_at__gte=since)
        .annotate(made=Coalesce("started_at", "finished_at"))
        .order_by("made")
        .values("made")[:1]
    )
    lookback = ExpressionWrapper(
        Subquery(earliest) - timedelta(hours=hours), output_field=DateTimeField()
    )
    rows = finished.filter(Q(finished_at__gte=since) | Q(finished_at__gte=lookback))
    facts = [
        dora.DeployFact(
            repo=r, finished_at=f, outcome=o, lead_from=lead, environment=e, started_at=s
        )
        for r, f, o, lead, e, s in rows.annotate(
            lead_from=Coalesce("committed_at", "work_started_at")
        ).values_list("repo", "finished_at", "outcome", "lead_from", "environment", "started_at")
    ]
    # `until` is inclusive here: a deploy finished this very instant belongs to the period.
    figures = dora.report(
        facts, since, until + timedelta(microseconds=1), repo=repo or None, rework_hours=hours
    )
    figures["until"] = until
    figures["days"] = days
    return figures


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 of `moment`'s week, in the time zone the admin shows (TIME_ZONE)."""
    local = timezone.localtime(moment)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, datetime.min.time(), tzinfo=local.tzinfo)


def dora_weeks_report(*, weeks: int, repo: str | None = None, now=None) -> dict:
    """The figures for `weeks` whole weeks (Monday to Monday) and the week under way, which
    is reported as it stands (its `partial` is true), never extrapolated to seven days."""
    until = now or timezone.now()
    this_week = week_start(until)
    since = this_week - timedelta(weeks=weeks)
    report = dora_report(days=0, repo=repo, now=until, since=since)
    report["days"] = (until - since).days
    for week in report["weekly"]:
        week["partial"] = week["until"] - week["since"] < timedelta(days=7)
    whole = [w for w in report["weekly"] if not w["partial"]]
    report["whole_weeks"] = len(whole)
    deploys = sum(w["deploys"] for w in whole)
    report["per_whole_week"] = deploys / len(whole) if whole else None
    return report
