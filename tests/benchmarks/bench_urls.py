import hashlib

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from pipeline.urls import urlpatterns as stageboard
from plane_integration.webhook_payloads import signature_ok

FLOOR_TABLE = "bench_floor_delivery"


@csrf_exempt
def floor(request):
    """The least an ingest can do behind the same middleware: check the signature, store
    the body once (one INSERT into a table with a unique key), answer 202. The baseline."""
    body = request.body
    if not signature_ok(
        body, settings.PLANE_WEBHOOK_SECRET, request.headers.get("X-Plane-Signature")
    ):
        return HttpResponse(b'{"detail": "signature"}', status=403, content_type="application/json")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FLOOR_TABLE} (dedupe_key, body) VALUES (%s, %s)",
            [hashlib.sha256(body).hexdigest(), body],
        )
    return HttpResponse(b'{"status": "accepted"}', status=202, content_type="application/json")


def create_floor_table() -> None:
    """(Re)create the floor's table: an id, a unique key, the body."""
    if connection.vendor == "postgresql":
        key, blob = "id bigserial PRIMARY KEY", "bytea"
    else:
        key, blob = "id integer PRIMARY KEY AUTOINCREMENT", "blob"
    columns = f"{key}, dedupe_key varchar(100) UNIQUE NOT NULL, body {blob}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} ({columns})")


def floor_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {FLOOR_TABLE}")
        return cursor.fetchone()[0]


urlpatterns = [path("floor/", floor), *stageboard]
