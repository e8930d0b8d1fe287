"""DORA figures over a seeded history, checked against figures computed here independently."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

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
        rows.append(
            Deployment(
                task=tasks[repo],
                cycle=1,
                repo=repo,
                started_at=finished - timedelta(minutes=5),
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
    """The four keys by their definitions, straight from the rows."""
    rows = list(Deployment.objects.all())
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


def test_the_admin_page_charts_each_key_by_week(admin_client, make_task):
    seed(make_task, 60)
    page = admin_client.get("/admin/dora/", {"days": 28})
    assert page.status_code == 200
    assert [c["title"] for c in page.context["charts"]] == [
        "Deployment frequency",
        "Lead time for changes",
        "Change failure rate",
        "Time to restore",
    ]
    assert all(len(c["bars"]) == 4 for c in page.context["charts"])
    assert b"Change failure rate" in page.content


def test_the_admin_page_needs_a_login(client):
    assert client.get("/admin/dora/").status_code == 302
