"""Inboxes: tables that store what a sender delivered, once, and are the queue a drain works
off. The Plane webhook (plane_integration) and the Git hosts (git_hosts) keep one each.

An inbox model has `body`, `claimed_until` and `retry_at` columns and a state column whose
pending and failed values the drain picks up. Three things are shared here so there is one
way to do each:
- `insert`: the one INSERT on the request path;
- `request_run`: queue a q task at most once per burst (a cache flag), and `settled`;
- `claim`: take a batch of due rows with one UPDATE ... RETURNING.
"""

import functools
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

_broker = None
# request_run(trust=True): how long a process believes a queued run without asking, and
# how long a drain claims at least (`settled`), with room for a slow commit in between.
FLAG_TRUST_SECONDS = 0.1
SETTLE_SECONDS = 0.3
_asked: dict[str, float] = {}  # flag -> when this process last found it set or set it


def insert(model, values: dict):
    """INSERT one row and return it: the statement `objects.create` would send, with each
    value prepared by its field as the ORM does, but without the ORM's query compiler
    (which cost more than the INSERT itself). Model signals are not sent; none listens."""
    fields, sql, returning = _insert_plan(model, connection.vendor)
    row = model(**values)  # fills in the defaults
    now = timezone.now()
    params = []
    for field, stamped in fields:
        value = now if stamped else getattr(row, field.attname)
        if stamped:
            setattr(row, field.attname, now)
        params.append(None if value is None else field.get_db_prep_save(value, connection))
    try:
        row.pk = _execute_insert(sql, params, returning)
    except (OperationalError, InterfaceError):
        # The webhook handler (pipeline.wsgi) skips Django's health check, a round trip
        # before every request: this INSERT is the check. A connection kept from an
        # earlier request that died meanwhile gets the INSERT once more on a new one.
        if connection.in_atomic_block or connection.is_usable():
            raise  # not a dead connection: the database refused, or is away
        connection.close()
        row.pk = _execute_insert(sql, params, returning)
    row._state.adding = False
    return row


@functools.cache
def _insert_plan(model, vendor: str) -> tuple[list, str, str]:
    """A model's INSERT, once per process: its columns (with whether each is stamped
    with the time, `auto_now_add`), the SQL and its RETURNING clause. SQLite tells the new
    id without RETURNING, whose row would keep the statement (and the database's write
    lock) open until it is read."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    returning = "" if vendor == "sqlite" else f" RETURNING {quote('id')}"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}){returning}"
    )
    return [(f, getattr(f, "auto_now_add", False)) for f in fields], sql, returning


def _execute_insert(sql: str, params: list, returning: str) -> int:
    with _insert_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] if returning else cursor.lastrowid


def _insert_cursor():
    """Django's cursor; on PostgreSQL one whose values are bound by the server, not quoted
    into the SQL text by the client as Django's cursors do: the body goes as bytes, not as
    an escaped literal that the client builds and the server parses again (the quoting was
    the largest part of the web's CPU in the INSERT, measured with py-spy). It is wrapped
    as Django wraps its own: errors, query logging and execute wrappers apply."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = ServerBindingCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def request_run(
    func: str, flag: str, *, name: str, flag_ttl: int = 60, trust: bool = False
) -> None:
    """Queue the q task `func` unless one is queued and has not started yet (it deletes
    `flag` when it starts). The flag outlives a queued run's wait in a busy queue; if the
    run were lost, the task's schedule runs one within a minute anyway.

    With `trust`, a process that queued a run or found one queued believes it for
    FLAG_TRUST_SECONDS without asking the cache again (a file or Redis round trip for
    every delivery of a burst). That run starts after this process last asked, and a
    drain claims until SETTLE_SECONDS after its start (`settled`), so a row stored within
    the trusted time is claimed by it. A drain queuing its successor does not trust."""
    global _broker
    now = time.monotonic()
    if trust and now - _asked.get(flag, -FLAG_TRUST_SECONDS) < FLAG_TRUST_SECONDS:
        return
    _asked[flag] = now
    if cache.add(flag, True, timeout=flag_ttl):
        from django_q.brokers import get_broker  # the web process imports it only when needed
        from django_q.tasks import async_task

        _broker = _broker or get_broker()  # one broker object per process, not one per call
        async_task(func, task_name=name, broker=_broker)


def settled(started: float) -> bool:
    """Whether a drain that started at `started` (time.monotonic()) and found nothing due
    may stop: not before SETTLE_SECONDS, so it sees every row stored while a process
    trusted its queued request (`request_run`)."""
    return time.monotonic() - started >= SETTLE_SECONDS


def claim(model, size: int, *, state: str, pending: str, failed: str) -> list[tuple[int, bytes]]:
    """Claim up to `size` due rows, oldest first (pending, or failed with `retry_at` come),
    until the q timeout has passed; return their (pk, body). On PostgreSQL the rows are
    picked FOR UPDATE SKIP LOCKED; SQLite has one writer at a time."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    quote = connection.ops.quote_name
    table, column = quote(model._meta.db_table), quote(state)
    lock = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    sql = (
        f"UPDATE {table} SET claimed_until = %s WHERE id IN ("
        f"SELECT id FROM {table} WHERE ({column} = %s OR ({column} = %s AND retry_at <= %s))"
        f" AND (claimed_until IS NULL OR claimed_until < %s) ORDER BY id LIMIT %s{lock}"
        f") RETURNING id, body"
    )
    lease = now + timedelta(seconds=settings.Q_CLUSTER["timeout"])
    params = [adapt(lease), pending, failed, adapt(now), adapt(now), size]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return sorted((pk, bytes(body)) for pk, body in rows)
