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
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    models,
)
from django.utils import timezone

_broker = None
# request_run(trust=True): how long a process believes a queued run without asking, and
# how long a drain claims at least (`settled`), with room for a slow commit in between.
FLAG_TRUST_SECONDS = 0.1
SETTLE_SECONDS = 0.3
_asked: dict[str, float] = {}  # flag -> when this process last found it set or set it


def insert(model, values: dict) -> int:
    """INSERT one row and return its id: the statement `objects.create(**values)` would
    send, each value prepared by its field as the ORM prepares it, but without building a
    model instance or running the ORM's query compiler (which together cost more than the
    INSERT itself). Model signals are not sent; none listens."""
    conn = connections[DEFAULT_DB_ALIAS]  # once: each use of `connection` looks it up again
    plan = _insert_plan(model, conn.vendor)
    unknown = values.keys() - plan.names
    if unknown:
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    now = timezone.now()
    params = []
    for name, field, stamped, text, default in plan.columns:
        if stamped:
            value = now
        elif name in values:
            value = values[name]
        elif default is not _EACH_ROW:
            params.append(default)
            continue
        else:
            value = field.get_default()
        if value is None or (text and isinstance(value, str)):
            params.append(value)  # what the field would send: the value as it is
        else:
            params.append(field.get_db_prep_save(value, conn))
    try:
        return _execute_insert(conn, plan, params)
    except (OperationalError, InterfaceError):
        # The webhook handler (pipeline.wsgi) skips Django's health check, a round trip
        # before every request: this INSERT is the check. A connection kept from an
        # earlier request that died meanwhile gets the INSERT once more on a new one.
        if conn.in_atomic_block or conn.is_usable():
            raise  # not a dead connection: the database refused, or is away
        conn.close()
        return _execute_insert(conn, plan, params)


class _Plan(NamedTuple):
    names: frozenset  # the fields a row may be given
    # (attname, field, stamped with the time, text sent as it is, the prepared default
    # or _EACH_ROW when the default is made for each row)
    columns: list
    sql: str  # for Django's cursor: %s placeholders
    driver_sql: str  # for the driver's: SQLite's are ?
    returning: bool


_EACH_ROW = object()


def _prepared_default(field, conn):
    """A fixed default (a constant, or none: "" or NULL) as the field sends it, prepared
    once; a callable default is called for each row, as the ORM calls it."""
    if field.has_default() and callable(field.default):
        return _EACH_ROW
    return field.get_db_prep_save(field.get_default(), conn)


def _text_as_is(field) -> bool:
    """Whether the field sends text as it is: a text field prepared as Django prepares
    one (it only checks that the value is text), not a subclass that converts it."""
    cls = type(field)
    return any(
        isinstance(field, base)
        and cls.to_python is base.to_python
        and cls.get_prep_value is base.get_prep_value
        and cls.get_db_prep_value is models.Field.get_db_prep_value
        and cls.get_db_prep_save is models.Field.get_db_prep_save
        for base in (models.CharField, models.TextField)
    )


@functools.cache
def _insert_plan(model, vendor: str) -> _Plan:
    """A model's INSERT, once per process: its columns, the SQL and whether it returns the
    id. SQLite tells the new id without RETURNING, whose row would keep the statement (and
    the database's write lock) open until it is read."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    conn = connections[DEFAULT_DB_ALIAS]
    quote = conn.ops.quote_name
    returning = vendor != "sqlite"
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
        + (f" RETURNING {quote('id')}" if returning else "")
    )
    columns = [
        (
            f.attname,
            f,
            getattr(f, "auto_now_add", False),
            _text_as_is(f),
            _prepared_default(f, conn),
        )
        for f in fields
    ]
    driver_sql = sql.replace("%s", "?") if vendor == "sqlite" else sql
    return _Plan(frozenset(f.attname for f in fields), columns, sql, driver_sql, returning)


def _execute_insert(conn, plan: _Plan, params: list) -> int:
    """Send the INSERT; return the new id.

    Outside a transaction, with no query log or execute wrapper in place (the request
    path in production), on the driver's own cursor under Django's error translation:
    Django's cursor wrappers cost as much as the driver's execute (measured in
    tests/benchmarks/webhook_ingest.py). Otherwise on Django's cursor, so a transaction's
    checks, a test's query capture and execute wrappers see it as any other query.

    On PostgreSQL the cursor is one whose values are bound by the server, not quoted into
    the SQL text by the client as Django's cursors do: the body goes as bytes, not as an
    escaped literal that the client builds and the server parses again (the quoting was
    the largest part of the INSERT's CPU, measured with py-spy)."""
    if conn.in_atomic_block or conn.queries_logged or conn.execute_wrappers:
        with _django_cursor(conn) as cursor:
            cursor.execute(plan.sql, params)
            return cursor.fetchone()[0] if plan.returning else cursor.lastrowid
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    with conn.wrap_database_errors:
        if conn.vendor == "sqlite":
            return conn.connection.execute(plan.driver_sql, params).lastrowid
        with _server_binding_cursor(conn.connection) as cursor:
            cursor.execute(plan.driver_sql, params)
            return cursor.fetchone()[0]


def _django_cursor(conn):
    if conn.vendor != "postgresql":
        return conn.cursor()
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    raw = _server_binding_cursor(conn.connection)
    if conn.queries_logged:
        return conn.make_debug_cursor(raw)
    return conn.make_cursor(raw)


def _server_binding_cursor(driver_connection):
    from django.db.backends.postgresql.base import ServerBindingCursor  # needs psycopg

    return ServerBindingCursor(driver_connection)


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
