"""GET /metrics: parsed by Prometheus's own parser, and equal to what the database holds."""

import uuid

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring.models import MonitorWindow
from operations.notify import notify
from pipeline.models import Deployment
from plane_integration.budget import RateBudget
from plane_integration.models import BoardStatus, WebhookDelivery

pytestmark = pytest.mark.django_db

TOKEN = "metrics-secret-token"


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_BEARER_TOKEN = TOKEN

    def get() -> dict:
        answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert answer.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(answer.content.decode()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    return get


def test_metrics_match_the_database(scrape, make_task):
    done = make_task(stage="done")
    make_task(stage="development")
    make_task(stage="development")
    now = timezone.now()
    for outcome in ("succeeded", "succeeded", "rolled_back", ""):
        Deployment.objects.create(task=done, cycle=1, repo="shop", outcome=outcome)
    MonitorWindow.objects.create(
        task=done, cycle=1, repo="shop", opened_at=now, closes_at=now, state="active"
    )
    other = make_task(stage="done")
    MonitorWindow.objects.create(
        task=other,
        cycle=1,
        repo="shop",
        opened_at=now,
        closes_at=now,
        state="closed",
        verdict="DEGRADED",
    )
    WebhookDelivery.objects.create(dedupe_key="a", event="issue", body=b"{}", state="failed")
    BoardStatus.objects.create(
        task=done, desired_key="done", desired_at=now, next_attempt_at=now, attempts=2
    )
    BoardStatus.objects.create(task=other, desired_key="done", desired_at=now, next_attempt_at=now)
    budget = RateBudget("plane_api_k", limit=5, window=60)
    budget.acquire()
    budget.acquire()
    budget.block(3)
    notify("reconciler_missed", "missed")

    got = scrape()
    assert got[("stageboard_tasks", (("stage", "development"),))] == 2
    assert got[("stageboard_tasks", (("stage", "done"),))] == 2
    assert got[("stageboard_tasks", (("stage", "cancelled"),))] == 0
    assert got[("stageboard_deployments", (("outcome", "succeeded"),))] == 2
    assert got[("stageboard_deployments", (("outcome", "rolled_back"),))] == 1
    assert got[("stageboard_deployments", (("outcome", "running"),))] == 1
    assert got[("stageboard_monitor_windows_active", ())] == 1
    assert got[("stageboard_monitor_verdicts", (("verdict", "DEGRADED"),))] == 1
    assert got[("stageboard_monitor_verdicts", (("verdict", "HEALTHY"),))] == 0
    assert got[("stageboard_webhook_deliveries", (("state", "failed"),))] == 1
    assert got[("stageboard_board_rows_pending", ())] == 2
    assert got[("stageboard_board_rows_failing", ())] == 1
    assert got[("stageboard_plane_requests_total", ())] == 2
    assert got[("stageboard_plane_rate_limited_total", ())] == 1
    assert got[("stageboard_notifications", (("state", "pending"),))] == 1
    assert got[("stageboard_q_queue_length", ())] >= 0


def test_reconciler_repairs_are_counted_by_kind(scrape):
    from plane_integration.models import ReconcileRepair, ReconcileRun

    run = ReconcileRun.objects.create(kind="full", trigger="command", started_at=timezone.now())
    for kind in ("started", "started", "gone"):
        ReconcileRepair.objects.create(
            run=run, work_item_id=uuid.uuid4(), project_id=uuid.uuid4(), kind=kind, reason="x"
        )
    got = scrape()
    assert got[("stageboard_reconciler_repairs_total", (("kind", "started"),))] == 2
    assert got[("stageboard_reconciler_repairs_total", (("kind", "gone"),))] == 1
    assert got[("stageboard_reconciler_repairs_total", (("kind", "reasserted"),))] == 0


def test_metrics_need_the_token_or_a_staff_login(client, admin_client, settings):
    settings.METRICS_BEARER_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert admin_client.get("/metrics").status_code == 200
    settings.METRICS_BEARER_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_the_scrape_takes_the_same_queries_for_any_amount_of_data(
    scrape, make_task, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    task = make_task(stage="done")
    with CaptureQueriesContext(connection) as few:
        scrape()
    Deployment.objects.bulk_create(
        Deployment(task=task, cycle=1, outcome="failed") for _ in range(300)
    )
    with django_assert_max_num_queries(len(few.captured_queries)):
        scrape()
