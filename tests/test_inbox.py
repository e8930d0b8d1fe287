"""pipeline.inbox: a web process trusts a queued drain for a moment without asking the
cache, and a drain claims long enough to see every row stored on that trust."""

import threading
import time

import pytest
from django.core.cache import cache
from django.core.cache.backends.filebased import FileBasedCache
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
