"""The database unavailable to the webhook endpoint: Plane gets an error status (so it
delivers again), nothing is half-written, and the same delivery is accepted afterwards."""

import hashlib
import hmac
import json
import uuid
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client
from django_q.models import OrmQ

from plane_integration.models import WebhookDelivery

SECRET = "plane_wh_faults"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_BOT_USER_ID = "b0700000-0000-4000-8000-000000000001"
    settings.PLANE_API_URL = ""


def delivery() -> bytes:
    return json.dumps(
        {
            "event": "issue",
            "action": "updated",
            "webhook_id": str(uuid.uuid4()),
            "workspace_id": str(uuid.uuid4()),
            "data": {"id": str(uuid.uuid4()), "name": "Fix login", "project": str(uuid.uuid4())},
            "activity": {
                "field": "state",
                "old_value": str(uuid.uuid4()),
                "new_value": str(uuid.uuid4()),
                "actor": {"id": "0a11ce00-0000-4000-8000-000000000002", "display_name": "a"},
            },
        }
    ).encode()


def post(body: bytes):
    # A real server answers an exception with a response, never by raising at Plane.
    client = Client(raise_request_exception=False)
    return client.post(
        "/webhooks/plane/",
        data=body,
        content_type="application/json",
        HTTP_X_PLANE_SIGNATURE=hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        HTTP_X_PLANE_DELIVERY=str(uuid.uuid4()),
    )


def refuse_first_write(*args, **kwargs):
    raise OperationalError("could not connect to server: Connection refused")


def test_a_database_outage_answers_an_error_and_writes_nothing(db):
    body = delivery()
    # The database is gone when the delivery's one INSERT (the whole of storing) is sent.
    with mock.patch("pipeline.inbox.insert", side_effect=refuse_first_write):
        answer = post(body)
    assert answer.status_code == 503
    assert answer["Content-Type"].startswith("application/json")
    assert "database" in answer.json()["detail"]
    assert answer["Retry-After"]
    assert WebhookDelivery.objects.count() == 0  # nothing half-written
    assert OrmQ.objects.count() == 0

    again = post(body)  # Plane's retry of the same delivery, once the database is back
    assert again.status_code == 202, again.content
    row = WebhookDelivery.objects.get()
    assert row.state == WebhookDelivery.State.PENDING  # the table is the queue: it is work
    assert post(body).status_code == 200  # and it is a repeat from now on
