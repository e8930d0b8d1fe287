"""One notification per fact, enforced by the database: two workers that see the same
approval wait at once record it once (PostgreSQL: real concurrent transactions)."""

import pytest

from operations.models import Notification
from operations.notify import notify
from tests.concurrency import at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def told():
    return notify("approval_waiting", "shop: Checkout awaits approval", once_key="approval:42")


def test_two_workers_telling_the_same_fact_record_it_once():
    results = at_once(told, count=4)
    assert sum(r is not None for r in results) == 1
    assert Notification.objects.filter(once_key="approval:42").count() == 1
    assert Notification.objects.get(once_key="approval:42").occurrences == 1


def test_a_fact_folded_into_a_waiting_notification_is_counted_once():
    notify("approval_waiting", "another deploy awaits approval", once_key="approval:1")
    at_once(told, count=4)
    waiting = Notification.objects.get(once_key="approval:1")
    assert waiting.occurrences == 2  # the first fact, and the raced one once
    assert Notification.objects.filter(once_key="approval:42").count() == 1
