"""The floor of webhook ingest: a separate, minimal Django application that does the least an
ingest can do and nothing of Stageboard's.

No installed apps, no middleware, no ORM. One view: read the body, check the hex
HMAC-SHA256 of the body against `X-Plane-Signature` with `hmac.compare_digest`, INSERT (a
unique hash of the body, the body) and answer 202. On SQLite (WAL, `synchronous=NORMAL`,
`BEGIN IMMEDIATE`, a 20 s busy timeout, one connection per thread); on PostgreSQL (one
psycopg connection per thread, autocommit). Run it as the benchmark does:

    FLOOR_DATABASE=/tmp/floor.sqlite3 FLOOR_SECRET=... \\
        gunicorn tests.benchmarks.floor_app:application -k gthread -w 2 --threads 4 -c /dev/null

FLOOR_DATABASE is a SQLite file or a postgres:// URL. `-c /dev/null` keeps gunicorn from
reading Stageboard's gunicorn.conf.py.
"""

import hashlib
import hmac
import os
import sqlite3
import threading

import django
from django.conf import settings

DATABASE = os.environ.get("FLOOR_DATABASE", "/tmp/stageboard-floor.sqlite3")
SECRET = os.environ.get("FLOOR_SECRET", "").encode()
POSTGRES = DATABASE.startswith(("postgres://", "postgresql://"))

settings.configure(
    DEBUG=False,
    SECRET_KEY="floor",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    DATABASES={},
    USE_TZ=True,
    DATA_UPLOAD_MAX_MEMORY_SIZE=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

local = threading.local()


def connect():
    if POSTGRES:
        import psycopg

        return psycopg.connect(DATABASE, autocommit=True)
    connection = sqlite3.connect(DATABASE, timeout=20, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def create_table() -> None:
    blob = "bytea" if POSTGRES else "blob"
    with connect() as connection:
        connection.execute("DROP TABLE IF EXISTS floor_delivery")
        connection.execute(f"CREATE TABLE floor_delivery (key text PRIMARY KEY, body {blob})")


def count() -> int:
    connection = connect()
    try:
        return connection.execute("SELECT count(*) FROM floor_delivery").fetchone()[0]
    finally:
        connection.close()


def store(key: str, body: bytes) -> None:
    connection = getattr(local, "connection", None)
    if connection is None:
        connection = local.connection = connect()
    if POSTGRES:
        connection.execute(
            "INSERT INTO floor_delivery (key, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (key, body),
        )
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "INSERT OR IGNORE INTO floor_delivery (key, body) VALUES (?, ?)", (key, body)
        )
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def webhook(request):
    body = request.body
    sent = request.headers.get("X-Plane-Signature", "")
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sent):
        return HttpResponse(b'{"detail": "signature"}', status=403)
    store(hashlib.sha256(body).hexdigest(), body)
    return HttpResponse(b'{"status": "accepted"}', status=202, content_type="application/json")


urlpatterns = [path("webhooks/plane/", webhook)]
application = get_wsgi_application()
