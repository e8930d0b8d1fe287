"""The admin's DORA page: the five keys and a weekly bar chart per key, no JavaScript."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from pipeline.dora_report import dora_report


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


CHARTS = [
    ("Deployment frequency", "deploys a day", lambda f: f["deployment_frequency"]["per_day"]),
    ("Lead time for changes", "median hours", lambda f: _hours(f["lead_time"]["median_seconds"])),
    ("Change failure rate", "% of deploys", lambda f: _percent(f["change_failure_rate"]["rate"])),
    (
        "Failed deployment recovery time",
        "median hours",
        lambda f: _hours(f["failed_deployment_recovery_time"]["median_seconds"]),
    ),
    (
        "Deployment rework rate",
        "% of deploys",
        lambda f: _percent(f["deployment_rework_rate"]["rate"]),
    ),
]


def _percent(rate: float | None) -> float | None:
    return None if rate is None else rate * 100


def chart(weekly: list[dict], value) -> list[dict]:
    """Bars as widths in percent of the largest week's value (empty weeks show no bar)."""
    values = [value(week) for week in weekly]
    top = max((v for v in values if v is not None), default=0) or 1
    return [
        {
            "label": f"{week['since']:%d %b}",
            "value": v,
            "width": 0 if v is None else round(v / top * 100, 1),
        }
        for week, v in zip(weekly, values, strict=True)
    ]


def dora_view(request):
    if not request.user.has_perm("pipeline.view_task"):
        raise PermissionDenied
    try:
        days = min(366, max(1, int(request.GET.get("days", 30))))
    except ValueError:
        days = 30
    repo = request.GET.get("repo") or None
    report = dora_report(days=days, repo=repo)
    charts = [
        {"title": title, "unit": unit, "bars": chart(report["weekly"], value)}
        for title, unit, value in CHARTS
    ]
    context = {
        **admin.site.each_context(request),
        "title": "DORA metrics",
        "report": report,
        "charts": charts,
        "days": days,
        "repo": repo or "",
    }
    return TemplateResponse(request, "admin/pipeline/dora.html", context)
