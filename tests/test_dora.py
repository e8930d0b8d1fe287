"""DORA figures over a seeded history, checked against figures computed here independently."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from pipeline import dora
from pipeline.dora_report import dora_report
from pipeline.models import Deployment

pytestmark = pytest.mark.django_db

REPOS = ("shop", "billing", "search")
OUTCOMES = (
    ["succeeded"] * 12
    + ["failed"] * 2
    + ["rolled_back"] * 2
    + ["degraded_alert_only"]
    + ["inconclusive"]
    + ["aborted"]
)
ENVIRONMENTS = ("production", "production-eu")


def seed(make_task, count: int, seed_value: int = 7, *, now=None) -> None:
    rng = random.Random(seed_value)
    now = now or timezone.now()
    tasks = {repo: make_task(stage="done", repo=repo) for repo in REPOS}
    rows = []
    for _ in range(count):
        repo = rng.choice(REPOS)
        finished = now - timedelta(seconds=rng.randint(60, 45 * 86400))
        started_work = finished - timedelta(seconds=rng.randint(600, 9 * 86400))
        committed = finished - timedelta(seconds=rng.randint(60, 86400))
        staging = rng.random() < 0.15
        rows.append(
            Deployment(
                task=tasks[repo],
                cycle=1,
                repo=repo,
                environment="staging" if staging else rng.choice(ENVIRONMENTS),
                production=not staging,
                started_at=None if rng.random() < 0.2 else finished - timedelta(minutes=5),
                finished_at=finished,
                outcome=rng.choice(OUTCOMES),
                work_started_at=started_work,
                committed_at=committed if rng.random() < 0.3 else None,
            )
        )
    Deployment.objects.bulk_create(rows)


def nearest_rank(values, share):
    values = sorted(values)
    rank = -(-len(values) * share // 1)  # ceil without math
    return values[int(rank) - 1]


def middle(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def expected(repo, since):
    """The five keys by their definitions, straight from the (production) rows."""
    rows = list(Deployment.objects.filter(production=True))
    mine = [d for d in rows if repo in (None, d.repo) and d.finished_at >= since]
    reached = [d for d in mine if d.outcome not in ("failed", "aborted")]
    failures = [d for d in mine if d.outcome in ("rolled_back", "degraded_alert_only")]
    leads = [
        (d.finished_at - (d.committed_at or d.work_started_at)).total_seconds()
        for d in mine
        if d.outcome == "succeeded"
    ]
    restores, unrestored = [], 0
    for failure in failures:
        later = [
            d.finished_at
            for d in rows
            if d.repo == failure.repo
            and d.outcome == "succeeded"
            and d.finished_at > failure.finished_at
        ]
        if later:
            restores.append((min(later) - failure.finished_at).total_seconds())
        else:
            unrestored += 1
    bad = [d for d in rows if d.outcome in ("failed", "rolled_back", "degraded_alert_only")]
    rework = [
        d
        for d in reached
        if any(
            (b.repo, b.environment) == (d.repo, d.environment)
            and b.finished_at
            < (d.started_at or d.finished_at)
            <= b.finished_at + timedelta(hours=24)
            for b in bad
        )
    ]
    return {
        "deploys": len(reached),
        "attempts": len(mine),
        "per_day": len(reached) / 30,
        "lead_median": middle(leads),
        "lead_p90": nearest_rank(leads, 0.9),
        "failures": len(failures),
        "rate": len(failures) / len(reached),
        "restore_median": middle(restores),
        "restored": len(restores),
        "unrestored": unrestored,
        "rework": len(rework),
        "rework_rate": len(rework) / len(reached),
    }


def observed(figures):
    return {
        "deploys": figures["deploys"],
        "attempts": figures["attempts"],
        "per_day": figures["deployment_frequency"]["per_day"],
        "lead_median": figures["lead_time"]["median_seconds"],
        "lead_p90": figures["lead_time"]["p90_seconds"],
        "failures": figures["change_failure_rate"]["failures"],
        "rate": figures["change_failure_rate"]["rate"],
        "restore_median": figures["time_to_restore"]["median_seconds"],
        "restored": figures["time_to_restore"]["restored"],
        "unrestored": figures["time_to_restore"]["unrestored"],
        "rework": figures["deployment_rework_rate"]["rework"],
        "rework_rate": figures["deployment_rework_rate"]["rate"],
    }


def close(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a)


def test_dora_figures_match_the_definitions_overall_and_per_repo(api, make_task):
    seed(make_task, 240)
    answer = api.get("/api/metrics/dora/", {"days": 30})
    assert answer.status_code == 200
    body = answer.json()
    since = timezone.now() - timedelta(days=30)
    # The API's period ends when it answered: a second's slack for the frequency only.
    assert close(observed(body["overall"]), expected(None, since)) or close(
        observed(body["overall"]), expected(None, since - timedelta(seconds=1))
    )
    assert sorted(body["repos"]) == sorted(REPOS)
    for repo in REPOS:
        assert close(observed(body["repos"][repo]), expected(repo, since))
    one = api.get("/api/metrics/dora/", {"days": 30, "repo": "shop"}).json()
    assert close(observed(one["overall"]), expected("shop", since))
    assert list(one["repos"]) == ["shop"]
    assert len(body["weekly"]) == 5  # 4 weeks and 2 days
    assert sum(w["attempts"] for w in body["weekly"]) == body["overall"]["attempts"]
    assert (
        sum(w["deployment_rework_rate"]["rework"] for w in body["weekly"])
        == (body["overall"]["deployment_rework_rate"]["rework"])
    )
    assert body["overall"]["deployment_rework_rate"]["rework"] > 0
    assert body["overall"]["deployment_rework_rate"]["hours"] == 24
    for figures in [body["overall"], *body["repos"].values(), *body["weekly"]]:
        assert figures["failed_deployment_recovery_time"] == figures["time_to_restore"]


def test_dora_takes_the_same_queries_for_any_number_of_deployments(
    api, make_task, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seed(make_task, 200, seed_value=1)
    with CaptureQueriesContext(connection) as few:
        api.get("/api/metrics/dora/", {"days": 30})
    seed(make_task, 800, seed_value=2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        answer = api.get("/api/metrics/dora/", {"days": 30})
    assert answer.json()["overall"]["attempts"] > 200


@pytest.mark.parametrize("days", ["0", "400", "thirty"])
def test_dora_refuses_a_bad_period(api, days):
    answer = api.get("/api/metrics/dora/", {"days": days})
    assert answer.status_code == 400 and "days" in answer.json()


def test_no_deploys_are_figures_of_none_not_errors(api):
    body = api.get("/api/metrics/dora/").json()
    assert body["overall"]["deploys"] == 0
    assert body["overall"]["change_failure_rate"]["rate"] is None
    assert body["overall"]["lead_time"]["median_seconds"] is None


def test_the_admin_page_charts_each_key_over_whole_weeks(admin_client, make_task):
    seed(make_task, 60)
    page = admin_client.get("/admin/dora/", {"weeks": 4})
    assert page.status_code == 200
    assert [c["title"] for c in page.context["charts"]] == [
        "Deployment frequency",
        "Lead time for changes",
        "Change failure rate",
        "Failed deployment recovery time",
        "Deployment rework rate",
    ]
    report = page.context["report"]
    assert report["since"].weekday() == 0 and report["since"].hour == 0  # a Monday, 00:00
    assert report["whole_weeks"] == 4
    for c in page.context["charts"]:
        assert [bar["partial"] for bar in c["bars"]][:4] == [False] * 4
        assert len(c["bars"]) in (4, 5)  # and the week under way, unless it just began
    html = page.content.decode()
    assert "Time to restore" not in html
    cfr = report["overall"]["change_failure_rate"]
    assert f"{cfr['failures']} of {cfr['deploys']} deploys failed" in html
    rework = report["overall"]["deployment_rework_rate"]
    assert f"{rework['rework']} of {rework['deploys']} (within 24 h of a failed" in html
    recovery = report["overall"]["failed_deployment_recovery_time"]
    assert f"{recovery['unrestored']} not recovered yet" in html
    assert "2023 State of DevOps" in html


def test_the_admin_page_offers_the_repos_that_exist(admin_client, make_task):
    seed(make_task, 10)
    page = admin_client.get("/admin/dora/", {"repo": "shop"})
    assert page.context["repos"] == sorted(REPOS)
    assert page.context["repo"] == "shop"
    assert '<option value="shop" selected>' in page.content.decode()
    unknown = admin_client.get("/admin/dora/", {"repo": "Shop"})
    assert unknown.context["repo"] == ""  # no such repo: all of them


def test_the_week_under_way_is_partial_and_not_extrapolated(make_task):
    from pipeline.dora_report import dora_weeks_report

    task = make_task(stage="done", repo="shop")
    wednesday = datetime(2025, 3, 12, 12, tzinfo=UTC)
    for days_ago in (0.5, 1, 8):  # two this week, one the week before
        Deployment.objects.create(
            task=task, cycle=1, repo="shop", outcome="succeeded",
            finished_at=wednesday - timedelta(days=days_ago),
        )  # fmt: skip
    report = dora_weeks_report(weeks=2, now=wednesday)
    assert report["since"] == datetime(2025, 2, 24, tzinfo=UTC)
    weekly = report["weekly"]
    assert [(w["partial"], w["deploys"]) for w in weekly] == [(False, 0), (False, 1), (True, 2)]
    assert report["per_whole_week"] == 0.5  # the partial week's two are not extrapolated


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("deployment_frequency", 10, "elite"),
        ("deployment_frequency", 2, "high"),
        ("deployment_frequency", 0.5, "medium"),
        ("deployment_frequency", 0.1, "low"),
        ("lead_time", 3600, "elite"),
        ("lead_time", 3 * 86400, "high"),
        ("lead_time", 20 * 86400, "medium"),
        ("lead_time", 90 * 86400, "low"),
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.1, "high"),
        ("change_failure_rate", 0.15, "medium"),
        ("change_failure_rate", 0.4, "low"),
        ("failed_deployment_recovery_time", 600, "elite"),
        ("failed_deployment_recovery_time", 5 * 3600, "high"),
        ("failed_deployment_recovery_time", 3 * 86400, "medium"),
        ("failed_deployment_recovery_time", 30 * 86400, "low"),
        ("deployment_rework_rate", 0.1, None),
        ("lead_time", None, None),
    ],
)
def test_each_figure_sits_in_doras_band(key, value, expected):
    assert dora.band(key, value) == expected


def test_durations_read_in_a_unit_that_fits():
    assert [dora.duration(s) for s in (90, 3 * 3600, 5.5 * 3600, 3 * 86400, 3.25 * 86400)] == [
        "2 min",
        "3 h",
        "5.5 h",
        "3 days",
        "3.2 days",
    ]
    assert dora.duration(None) == "-"


def test_the_admin_page_needs_a_login(client):
    assert client.get("/admin/dora/").status_code == 302


# --- Deployment rework rate, from facts (pure) -----------------------------------------------

T0 = datetime(2025, 3, 3, 12, tzinfo=UTC)


def fact(hour: float, outcome="succeeded", *, repo="shop", env="production", started=True):
    """A deploy finished `hour` hours after T0, started five minutes before (or unseen)."""
    finished = T0 + timedelta(hours=hour)
    return dora.DeployFact(
        repo=repo,
        finished_at=finished,
        outcome=outcome,
        lead_from=None,
        environment=env,
        started_at=finished - timedelta(minutes=5) if started else None,
    )


REWORK_CASES = {
    "rolled back, then a deploy within the hours": ([fact(0, "rolled_back"), fact(2)], 1, 2),
    "degraded, then a deploy beyond the hours": (
        [fact(0, "degraded_alert_only"), fact(25)],
        0,
        2,
    ),
    "started exactly the hours after: within": (
        [fact(0, "rolled_back"), fact(24 + 5 / 60)],
        1,
        2,
    ),
    "failed attempt, then a deploy: rework of a deploy that never went out": (
        [fact(0, "failed"), fact(1)],
        1,
        1,
    ),
    "failed attempt after a failed attempt: no deploy, no rework": (
        [fact(0, "failed"), fact(1, "failed")],
        0,
        0,
    ),
    "a bad deploy after a bad deploy is rework itself": (
        [fact(0, "rolled_back"), fact(1, "rolled_back"), fact(2)],
        2,
        3,
    ),
    "another repo is not rework": ([fact(0, "rolled_back"), fact(1, repo="billing")], 0, 2),
    "another environment is not rework": (
        [fact(0, "rolled_back"), fact(1, env="production-eu")],
        0,
        2,
    ),
    "inconclusive is not bad": ([fact(0, "inconclusive"), fact(1)], 0, 2),
    "aborted is not bad": ([fact(0, "aborted"), fact(1)], 0, 1),
    "succeeded is not bad": ([fact(0), fact(1)], 0, 2),
    "started before the bad one finished: not made after it": (
        [fact(0, "rolled_back"), fact(0.05)],
        0,
        2,
    ),
    "never seen starting: made at its finish": (
        [fact(0, "rolled_back"), fact(23.99, started=False), fact(24.05, started=False)],
        1,
        3,
    ),
}


@pytest.mark.parametrize("facts, rework, deploys", REWORK_CASES.values(), ids=REWORK_CASES)
def test_deployment_rework_rate(facts, rework, deploys):
    figures = dora.figures(facts, T0 - timedelta(days=1), T0 + timedelta(days=7))
    assert figures["deployment_rework_rate"] == {
        "rework": rework,
        "deploys": deploys,
        "rate": rework / deploys if deploys else None,
        "hours": 24.0,
    }


def test_rework_looks_back_before_the_period_and_takes_its_hours():
    facts = [fact(-3, "rolled_back"), fact(2), fact(30)]
    since, until = T0, T0 + timedelta(days=7)
    assert dora.figures(facts, since, until)["deployment_rework_rate"]["rework"] == 1
    hours = dora.figures(facts, since, until, rework_hours=1)["deployment_rework_rate"]
    assert (hours["rework"], hours["hours"]) == (0, 1)
    week = dora.report(facts, since, until, rework_hours=36)["weekly"][0]
    assert week["deployment_rework_rate"]["rework"] == 2


def test_failed_deployment_recovery_time_keeps_time_to_restore_as_an_alias():
    facts = [fact(0, "rolled_back"), fact(3), fact(5, "degraded_alert_only")]
    figures = dora.figures(facts, T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert figures["failed_deployment_recovery_time"] == {
        "restored": 1,
        "unrestored": 1,
        "median_seconds": 3 * 3600,
    }
    assert figures["time_to_restore"] == figures["failed_deployment_recovery_time"]


# --- From the delivery record -------------------------------------------------------------------


def deployment(task, hours_ago: float, outcome="succeeded", *, now, **fields):
    finished = now - timedelta(hours=hours_ago)
    return Deployment.objects.create(
        task=task,
        cycle=1,
        repo=task.repo,
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
        outcome=outcome,
        work_started_at=finished - timedelta(hours=4),
        **fields,
    )


def test_non_production_deploys_count_in_no_dora_figure(make_task):
    now = timezone.now()
    task = make_task(stage="done", repo="shop")
    other = make_task(stage="done", repo="staging-only")
    deployment(task, 50, "rolled_back", now=now)
    deployment(task, 49, now=now)  # restores, and is rework
    for hours_ago, outcome in [(48, "rolled_back"), (47, "failed"), (46, "succeeded")]:
        deployment(task, hours_ago, outcome, now=now, environment="staging", production=False)
    deployment(other, 10, "degraded_alert_only", now=now, environment="staging", production=False)

    figures = dora_report(days=30, now=now)
    overall = figures["overall"]
    assert (overall["deploys"], overall["attempts"]) == (2, 2)
    assert overall["change_failure_rate"]["failures"] == 1
    assert overall["failed_deployment_recovery_time"]["median_seconds"] == 3600
    assert overall["lead_time"]["count"] == 1
    assert overall["deployment_rework_rate"]["rework"] == 1
    assert list(figures["repos"]) == ["shop"]
    assert dora_report(days=30, repo="staging-only", now=now)["overall"]["attempts"] == 0


def test_the_report_looks_back_the_rework_hours_before_the_period(make_task, settings):
    now = timezone.now()
    task = make_task(stage="done", repo="shop")
    deployment(task, 24 * 7 + 2, "failed", now=now)  # before the period
    deployment(task, 24 * 7 - 1, now=now)  # in it, 3 hours later: rework
    deployment(task, 24 * 7 + 30, "rolled_back", now=now)  # long before
    week = dora_report(days=7, now=now)["overall"]
    assert (week["attempts"], week["deployment_rework_rate"]["rework"]) == (1, 1)
    settings.DORA_REWORK_HOURS = 2.5
    rate = dora_report(days=7, now=now)["overall"]["deployment_rework_rate"]
    assert (rate["rework"], rate["hours"]) == (0, 2.5)
