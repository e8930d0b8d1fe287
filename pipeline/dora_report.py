"""DORA figures from the delivery record: one query, whatever the number of deployments."""

from datetime import timedelta

from django.db.models.functions import Coalesce
from django.utils import timezone

from pipeline import dora
from pipeline.models import Deployment


def dora_report(*, days: int, repo: str | None = None, now=None) -> dict:
    until = now or timezone.now()
    since = until - timedelta(days=days)
    rows = Deployment.objects.filter(finished_at__gte=since, finished_at__lte=until).exclude(
        outcome=""
    )
    if repo:
        rows = rows.filter(repo=repo)
    facts = [
        dora.DeployFact(repo=r, finished_at=f, outcome=o, lead_from=lead)
        for r, f, o, lead in rows.annotate(
            lead_from=Coalesce("committed_at", "work_started_at")
        ).values_list("repo", "finished_at", "outcome", "lead_from")
    ]
    # `until` is inclusive here: a deploy finished this very instant belongs to the period.
    figures = dora.report(facts, since, until + timedelta(microseconds=1), repo=repo or None)
    figures["until"] = until
    figures["days"] = days
    return figures
