"""The delivery table is the queue: one INSERT a delivery, one drain a burst, batches."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from pipeline.models import Task
from plane_integration.drain import BATCH, claim, drain_deliveries
from plane_integration.models import WebhookDelivery
from plane_integration.webhook_payloads import signature
from tests.concurrency import at_once
from tests.qcluster import run_queued_tasks
from tests.test_webhooks import BOT, SECRET, issue_update, pipeline_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_BOT_USER_ID = BOT
    settings.PLANE_API_URL = ""


def post(client, payload):
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/plane/",
        data=body,
        content_type="application/json",
        HTTP_X_PLANE_SIGNATURE=signature(body, SECRET),
        HTTP_X_PLANE_DELIVERY=str(uuid.uuid4()),
    )


def priority_change(project):
    return issue_update(project, "high", field="priority")


def test_an_accepted_delivery_costs_one_query_once_a_drain_is_queued(client):
    project, _ = pipeline_project()
    assert post(client, priority_change(project)).status_code == 202  # queues the drain
    with CaptureQueriesContext(connection) as queries:
        answer = post(client, priority_change(project))
    assert (answer.status_code, answer.json()["state"]) == (202, "pending")
    sql = [q["sql"] for q in queries.captured_queries if q["sql"] != "SELECT 1"]
    assert len(sql) == 1 and sql[0].startswith("INSERT INTO"), sql


def test_a_burst_queues_one_drain_which_works_it_all_off(client):
    project, ids = pipeline_project()
    moved = issue_update(project, ids["To Analyse"])
    for _ in range(30):
        assert post(client, priority_change(project)).status_code == 202
    assert post(client, moved).status_code == 202
    assert OrmQ.objects.count() == 1  # one queued drain for 31 deliveries
    run_queued_tasks()  # the drain, then the board sync the new task asked for
    assert WebhookDelivery.objects.filter(state="ignored").count() == 30
    assert WebhookDelivery.objects.filter(state="processed").count() == 1
    assert set(WebhookDelivery.objects.values_list("attempts", "claimed_until")) == {(1, None)}
    assert Task.objects.get().stage == "analysis"
    ignored = WebhookDelivery.objects.filter(state="ignored").first()
    assert ignored.reason == "priority changed: not a board control"
    # The next burst queues a fresh drain: the flag went when the drain started.
    assert post(client, priority_change(project)).status_code == 202
    assert OrmQ.objects.count() == 1


def test_a_batch_of_deliveries_that_are_not_controls_takes_a_few_queries(client):
    project, _ = pipeline_project()
    other = pipeline_project()[0]
    for n in range(BATCH):
        payload = priority_change(project if n % 2 else other)
        if n % 10 == 0:
            payload["data"]["project"] = str(uuid.uuid4())  # not configured
        post(client, payload)
    with CaptureQueriesContext(connection) as queries:
        outcomes = drain_deliveries()
    assert outcomes == {"ignored": BATCH}
    # claim, the projects, one UPDATE per distinct reason (2), the empty claim at the end.
    # The unconfigured projects give 20 reasons: still a bounded number, not one per delivery.
    assert len(queries) <= 3 + 1 + 20 + 1, [q["sql"][:80] for q in queries.captured_queries]
    assert not WebhookDelivery.objects.filter(state="pending").exists()


def test_a_claim_keeps_other_drains_off_until_it_runs_out(client):
    project, _ = pipeline_project()
    for _ in range(5):
        post(client, priority_change(project))
    claimed = claim(BATCH)  # a drain that dies right after its claim
    assert len(claimed) == 5
    assert claim(BATCH) == []
    assert drain_deliveries() == {}
    assert WebhookDelivery.objects.filter(state="pending").count() == 5
    WebhookDelivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert drain_deliveries() == {"ignored": 5}


def test_a_drain_stops_when_its_time_is_up_and_queues_the_rest(client):
    project, _ = pipeline_project()
    for _ in range(3):
        post(client, priority_change(project))
    OrmQ.objects.all().delete()
    assert drain_deliveries(max_seconds=1e-9) == {}
    assert WebhookDelivery.objects.filter(state="pending").count() == 3
    assert OrmQ.objects.count() == 1  # its successor
    assert run_queued_tasks() == 1
    assert not WebhookDelivery.objects.filter(state="pending").exists()


def test_an_operators_reprocess_queues_a_drain(client):
    from plane_integration.ingest import reprocess

    project, _ = pipeline_project()
    post(client, priority_change(project))
    run_queued_tasks()
    assert reprocess(WebhookDelivery.objects.all()) == 1
    assert run_queued_tasks() == 1
    assert WebhookDelivery.objects.get().attempts == 2


@pytest.mark.postgres
def test_drains_at_once_never_work_on_one_delivery_twice(client, make_task):
    project, ids = pipeline_project()
    items = [make_task(stage="done", project_id=project.project_id) for _ in range(20)]
    for task in items:  # controls, processed one by one: re-open each task
        post(client, issue_update(project, ids["To Analyse"], item=str(task.work_item_id)))
    for _ in range(3 * BATCH):
        post(client, priority_change(project))
    at_once(drain_deliveries, count=4)
    drain_deliveries()
    counts = dict.fromkeys(("pending", "failed"), 0)
    for state in WebhookDelivery.objects.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    assert (counts["pending"], counts["failed"]) == (0, 0)
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}
    for task in items:
        task.refresh_from_db()
        assert (task.stage, task.cycle) == ("analysis", 2)  # re-opened once, not twice


def test_a_delivery_is_accepted_when_no_drain_can_be_asked_for(client, monkeypatch):
    project, _ = pipeline_project()

    def cache_down(*args, **kwargs):
        raise ConnectionError("the cache is down")

    monkeypatch.setattr("plane_integration.drain.cache.add", cache_down)
    answer = post(client, priority_change(project))
    assert (answer.status_code, answer.json()["status"]) == (202, "accepted")
    assert OrmQ.objects.count() == 0
    monkeypatch.undo()
    assert drain_deliveries() == {"ignored": 1}  # as the schedule's drain would
