"""The admin's DORA page: the five keys over whole weeks, each beside DORA's performance band,
and a weekly bar chart per key, no JavaScript."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from pipeline import dora
from pipeline.dora_report import dora_weeks_report
from pipeline.models import Deployment, Task

WEEKS_DEFAULT, WEEKS_MAX = 4, 52


def _percent(rate: float | None) -> float | None:
    return None if rate is None else rate * 100


def _shown_percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}".removesuffix(".0") + "%"


# title, what a bar shows, the bar's value, how the value reads
CHARTS = [
    ("Deployment frequency", "deploys in the week", lambda f: f["deploys"], str),
    (
        "Lead time for changes",
        "median",
        lambda f: f["lead_time"]["median_seconds"],
        dora.duration,
    ),
    (
        "Change failure rate",
        "% of deploys",
        lambda f: _percent(f["change_failure_rate"]["rate"]),
        lambda v: f"{v:.1f}".removesuffix(".0") + "%",
    ),
    (
        "Failed deployment recovery time",
        "median",
        lambda f: f["failed_deployment_recovery_time"]["median_seconds"],
        dora.duration,
    ),
    (
        "Deployment rework rate",
        "% of deploys",
        lambda f: _percent(f["deployment_rework_rate"]["rate"]),
        lambda v: f"{v:.1f}".removesuffix(".0") + "%",
    ),
]


def chart(weekly: list[dict], value, shown) -> list[dict]:
    """Bars as widths in percent of the largest week's value (empty weeks show no bar); the
    week under way is marked partial and shows what it has so far."""
    values = [value(week) for week in weekly]
    top = max((v for v in values if v is not None), default=0) or 1
    bars = []
    for week, v in zip(weekly, values, strict=True):
        label = f"{week['since']:%d %b}"
        if week.get("partial"):
            days = (week["until"] - week["since"]).total_seconds() / 86400
            label += f" (partial: {days:.1f} of 7 days)"
        bars.append(
            {
                "label": label,
                "value": v,
                "shown": "-" if v is None else shown(v),
                "partial": bool(week.get("partial")),
                "width": 0 if v is None else round(v / top * 100, 1),
            }
        )
    return bars


def known_repos() -> list[str]:
    """The repos there are to choose from: every repo a task or a deployment names."""
    names = set(Task.objects.exclude(repo="").values_list("repo", flat=True).distinct())
    names |= set(Deployment.objects.exclude(repo="").values_list("repo", flat=True).distinct())
    return sorted(names)


def headline(report: dict) -> list[dict]:
    """Each key's figure as people read it, with the counts it rests on and DORA's band."""
    f = report["overall"]
    per_week = report["per_whole_week"]
    cfr, rework = f["change_failure_rate"], f["deployment_rework_rate"]
    recovery, lead = f["failed_deployment_recovery_time"], f["lead_time"]
    weeks = report["whole_weeks"]
    return [
        {
            "key": "deployment_frequency",
            "title": "Deployment frequency",
            "value": "-" if per_week is None else f"{per_week:.1f}".removesuffix(".0") + " a week",
            "detail": f"over {weeks} whole week(s); the week under way is not counted",
            "band": dora.band("deployment_frequency", per_week),
        },
        {
            "key": "lead_time",
            "title": "Lead time for changes (median)",
            "value": dora.duration(lead["median_seconds"]),
            "detail": f"p90 {dora.duration(lead['p90_seconds'])}, over {lead['count']} deploy(s)"
            if lead["count"]
            else "no deploy with a known start",
            "band": dora.band("lead_time", lead["median_seconds"]),
        },
        {
            "key": "change_failure_rate",
            "title": "Change failure rate",
            "value": _shown_percent(cfr["rate"]),
            "detail": f"{cfr['failures']} of {cfr['deploys']} deploys failed, rolled back or "
            "degraded",
            "band": dora.band("change_failure_rate", cfr["rate"]),
        },
        {
            "key": "failed_deployment_recovery_time",
            "title": "Failed deployment recovery time (median)",
            "value": dora.duration(recovery["median_seconds"]),
            "detail": f"over {recovery['restored']} recovered; "
            f"{recovery['unrestored']} not recovered yet",
            "band": dora.band("failed_deployment_recovery_time", recovery["median_seconds"]),
        },
        {
            "key": "deployment_rework_rate",
            "title": "Deployment rework rate",
            "value": _shown_percent(rework["rate"]),
            "detail": f"{rework['rework']} of {rework['deploys']} (within "
            f"{rework['hours']:g} h of a failed, rolled-back or degraded deploy)",
            "band": None,
        },
    ]


def dora_view(request):
    if not request.user.has_perm("pipeline.view_task"):
        raise PermissionDenied
    try:
        weeks = min(WEEKS_MAX, max(1, int(request.GET.get("weeks", WEEKS_DEFAULT))))
    except ValueError:
        weeks = WEEKS_DEFAULT
    repos = known_repos()
    repo = request.GET.get("repo") or None
    if repo not in repos:
        repo = None
    report = dora_weeks_report(weeks=weeks, repo=repo)
    charts = [
        {"title": title, "unit": unit, "bars": chart(report["weekly"], value, shown)}
        for title, unit, value, shown in CHARTS
    ]
    context = {
        **admin.site.each_context(request),
        "title": "DORA metrics",
        "report": report,
        "headline": headline(report),
        "charts": charts,
        "weeks": weeks,
        "repo": repo or "",
        "repos": repos,
    }
    return TemplateResponse(request, "admin/pipeline/dora.html", context)
