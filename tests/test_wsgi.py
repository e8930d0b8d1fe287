"""The WSGI application as gunicorn serves it (pipeline.wsgi): /webhooks/ goes to a handler
with no middleware but the JSON errors and its own URLconf, everything else to the site."""

import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from django.db import connection

from pipeline.wsgi import application
from plane_integration.models import WebhookDelivery
from plane_integration.webhook_payloads import signature
from tests.test_webhooks import SECRET, captured, fixture_project

pytestmark = pytest.mark.django_db(transaction=True)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def shipped(settings):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_API_URL = ""
    server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_captured_deliveries_are_stored_through_the_webhook_handler(shipped):
    fixture_project()
    deliveries = captured()
    for name, body, headers in deliveries:
        answer = requests.post(f"{shipped}/webhooks/plane/", data=body, headers=headers, timeout=10)
        assert answer.status_code in (200, 202), (name, answer.text)
        assert answer.json()["status"] in ("accepted", "duplicate")
        # None of the site's middleware ran: no session, CSRF or clickjacking header.
        assert "X-Frame-Options" not in answer.headers and "Set-Cookie" not in answer.headers
    bodies = {bytes(b) for b in WebhookDelivery.objects.values_list("body", flat=True)}
    assert bodies == {body for _, body, _ in deliveries}


def test_the_webhook_handler_answers_errors_as_json(shipped):
    body = b'{"event": "issue", "action": "updated", "data": {}}'
    wrong = requests.post(
        f"{shipped}/webhooks/plane/", data=body, headers={"X-Plane-Signature": "0" * 64}
    )
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "The X-Plane-Signature does not match."}
    unknown = requests.post(f"{shipped}/webhooks/nowhere/", data=body)
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "No API endpoint at /webhooks/nowhere/."}
    assert requests.get(f"{shipped}/webhooks/plane/").status_code == 405
    # Without the slash: answered as with it, not redirected (a redirect would lose the body).
    garbled = b"{not json"
    signed = {"X-Plane-Signature": signature(garbled, SECRET)}
    shape = requests.post(f"{shipped}/webhooks/plane", data=garbled, headers=signed)
    assert shape.status_code == 400 and "detail" in shape.json()
    assert not WebhookDelivery.objects.exists()


def test_the_rest_of_the_site_keeps_its_middleware(shipped):
    admin = requests.get(f"{shipped}/admin/", allow_redirects=False)
    assert admin.status_code == 302 and "/login/" in admin.headers["Location"]
    assert admin.headers["X-Frame-Options"] == "DENY"
    assert requests.get(f"{shipped}/healthz").status_code in (200, 503)
    api = requests.get(f"{shipped}/api/tasks/")
    assert api.status_code in (401, 403) and "detail" in api.json()


def test_a_webhook_on_a_connection_that_died_is_stored_on_a_new_one(shipped):
    """The webhook handler skips Django's health check; the INSERT finds the dead
    connection and is sent again on a new one, instead of answering 503."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")
    fixture_project()
    (name, body, headers), *_ = captured()
    first = requests.post(f"{shipped}/webhooks/plane/", data=body, headers=headers, timeout=10)
    assert first.status_code == 202  # the server's thread now keeps a connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchall(), "no other connection to end"
    other = body.replace(b'"', b' "', 1)  # another body: not a repeat
    headers = {**headers, "X-Plane-Signature": signature(other, SECRET)}
    second = requests.post(f"{shipped}/webhooks/plane/", data=other, headers=headers, timeout=10)
    assert second.status_code == 202, second.text
    assert WebhookDelivery.objects.filter(body=other).exists()
