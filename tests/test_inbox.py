"""pipeline.inbox: a web process trusts a queued drain for a moment without asking the
cache, a drain claims long enough to see every row stored on that trust, and the request
path's INSERT writes the row the ORM would."""

import threading
import time
import uuid

import pytest
from django.core.cache import cache
from django.core.cache.backends.filebased import FileBasedCache
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from pipeline import inbox
from plane_integration.drain import drain_deliveries
from plane_integration.ingest import DRAIN_QUEUED, request_drain
from plane_integration.models import WebhookDelivery
from tests.test_webhook_drain import post, priority_change, webhook_settings  # noqa: F401
from tests.test_webhooks import pipeline_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def trusting(monkeypatch):
    """The shipped timings (tests/conftest.py turns them off for every other test)."""
    monkeypatch.setattr(inbox, "FLAG_TRUST_SECONDS", 0.1)
    monkeypatch.setattr(inbox, "SETTLE_SECONDS", 0.3)
    monkeypatch.setattr(inbox, "_asked", {})


def test_a_burst_asks_the_cache_once_per_trusted_moment(trusting, monkeypatch):
    asked = []
    add = FileBasedCache.add

    def spying_add(backend, key, *args, **kwargs):
        asked.append(key)
        return add(backend, key, *args, **kwargs)

    monkeypatch.setattr(FileBasedCache, "add", spying_add)
    for _ in range(20):
        request_drain()
    assert asked == [DRAIN_QUEUED] and OrmQ.objects.count() == 1
    cache.delete(DRAIN_QUEUED)  # the drain started: a new request queues a new one...
    request_drain()
    assert OrmQ.objects.count() == 1  # ...but not within the trusted moment
    time.sleep(0.1)
    request_drain()
    assert asked == [DRAIN_QUEUED] * 2 and OrmQ.objects.count() == 2
    request_drain(trust=False)  # a drain's own request always asks
    assert len(asked) == 3


def test_a_drain_claims_what_is_stored_on_a_trusted_request(trusting, client):
    project, _ = pipeline_project()
    assert post(client, priority_change(project)).status_code == 202  # queues the drain
    late = []

    def store_while_the_drain_runs():
        time.sleep(0.05)  # the drain found nothing new and would have stopped
        late.append(post(client, priority_change(project)))

    drain_deliveries()  # the first delivery, worked off
    cache.delete(DRAIN_QUEUED)
    inbox._asked[DRAIN_QUEUED] = time.monotonic()  # this process trusts a queued drain
    writer = threading.Thread(target=store_while_the_drain_runs)
    writer.start()
    started = time.monotonic()
    outcomes = drain_deliveries()
    writer.join()
    assert late[0].status_code == 202 and OrmQ.objects.count() == 1  # no new drain asked for
    assert outcomes == {"ignored": 1}
    assert time.monotonic() - started >= inbox.SETTLE_SECONDS
    assert not WebhookDelivery.objects.filter(state="pending").exists()


def _row(pk):
    return WebhookDelivery.objects.filter(pk=pk).values().get()


def _compare_with_the_orm(pk, values):
    made = WebhookDelivery.objects.create(**{**values, "dedupe_key": values["dedupe_key"] + "o"})
    ours, orms = _row(pk), _row(made.pk)
    for row in (ours, orms):
        del row["id"], row["dedupe_key"]
        assert bytes(row.pop("body")) == values["body"]  # bytes exactly, NUL included
        stamped = row.pop("received_at")
        assert abs(timezone.now() - stamped).total_seconds() < 60
    assert ours == orms


EXAMPLE = {
    "dedupe_key": "k" * 64,
    "delivery_id": "d-1",
    "event": "issue",
    "action": "updated",
    "work_item_id": uuid.UUID("0b6c0a3c-7a53-4b1e-9d1e-6c1c4f1e2a10"),
    "body": b'{"a":"\\u00e9"}\x00\xff',
}


def test_insert_stores_the_row_the_orm_would_outside_a_transaction():
    """The request path's way: the driver's own cursor (production has no query log)."""
    pk = inbox.insert(WebhookDelivery, EXAMPLE)
    assert isinstance(pk, int) and pk == WebhookDelivery.objects.get(dedupe_key="k" * 64).pk
    _compare_with_the_orm(pk, EXAMPLE)


def test_insert_in_a_transaction_goes_through_djangos_cursor_and_rolls_back_with_it():
    with (
        CaptureQueriesContext(connection) as captured,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        inbox.insert(WebhookDelivery, EXAMPLE)
        raise RuntimeError("the caller fails after the INSERT")
    assert any(q["sql"].startswith("INSERT") for q in captured.captured_queries)
    assert not WebhookDelivery.objects.exists()  # nothing half-written
    with transaction.atomic():
        pk = inbox.insert(WebhookDelivery, EXAMPLE)
    _compare_with_the_orm(pk, EXAMPLE)


def test_insert_refuses_an_unknown_field_before_writing_anything():
    with pytest.raises(TypeError, match="WebhookDelivery has no field colour"):
        inbox.insert(WebhookDelivery, {**EXAMPLE, "colour": "red"})
    assert not WebhookDelivery.objects.exists()


def test_insert_keeps_the_unique_constraint():
    inbox.insert(WebhookDelivery, EXAMPLE)
    with pytest.raises(IntegrityError):
        inbox.insert(WebhookDelivery, EXAMPLE)
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's prepared statements")
def test_on_postgresql_the_webhook_insert_is_prepared_and_nothing_else_is():
    """DATABASE_PREPARED_STATEMENTS (on by default): the INSERT is planned once per
    connection after a few runs; Django's client-bound queries stay unprepared."""
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 5
    for n in range(8):
        inbox.insert(WebhookDelivery, {**EXAMPLE, "dedupe_key": f"k{n}"})
        WebhookDelivery.objects.filter(dedupe_key=f"k{n}").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert all(statement.startswith("INSERT INTO") for statement in prepared)  # inboxes only
    assert any('"plane_integration_webhookdelivery"' in statement for statement in prepared)
