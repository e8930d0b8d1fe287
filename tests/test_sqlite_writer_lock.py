"""SQLite writers queue on a file lock (pipeline/sqlite), not on SQLite's busy handler."""

import fcntl
import os
import threading
import time

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

from pipeline.sqlite.base import WriterLock

HOLD = 0.3  # long enough for a writer that did not wait to have written


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A SQLite file of its own (not the test database), through Stageboard's backend."""
    with django_db_blocker.unblock():
        yield from open_database(tmp_path)


def open_database(tmp_path):
    path = tmp_path / "db.sqlite3"
    options = {"transaction_mode": "IMMEDIATE", "timeout": 5}
    handler = ConnectionHandler(
        {"default": {"ENGINE": "pipeline.sqlite", "NAME": str(path), "OPTIONS": options}}
    )
    setup = handler["default"]
    with setup.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, v text)")
    yield handler, f"{path}-writer.lock"
    handler.close_all()


def locked(lock_path: str) -> bool:
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_write_transaction_holds_the_lock_until_it_commits(database):
    handler, lock_path = database
    holder = handler["default"]
    holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", ["a"])
    assert locked(lock_path)
    holder.commit()
    holder.set_autocommit(True)
    assert not locked(lock_path)


def test_a_waiting_writer_queues_on_the_lock_and_writes_once_it_is_free(database, monkeypatch):
    handler, _ = database
    holder = handler["default"]
    holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", ["first"])
    waited = threading.Event()
    acquire = WriterLock.acquire

    def spying_acquire(lock):
        if threading.current_thread() is not threading.main_thread():
            waited.set()
        acquire(lock)

    monkeypatch.setattr(WriterLock, "acquire", spying_acquire)
    finished = []

    def write():
        waiter = handler["default"]  # its own connection: the handler is per thread
        with waiter.cursor() as cursor:
            cursor.execute("UPDATE t SET v = %s WHERE v = %s", ["second", "first"])  # autocommit
        finished.append(True)
        waiter.close()

    thread = threading.Thread(target=write)
    thread.start()
    assert waited.wait(10), "the UPDATE did not queue on the writer lock"
    time.sleep(HOLD)
    assert not finished, "the UPDATE wrote while another transaction held the lock"
    holder.commit()
    holder.set_autocommit(True)
    thread.join(10)
    assert finished, "the waiting write never finished"
    with holder.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY id")
        assert [v for (v,) in cursor.fetchall()] == ["second"]


def test_a_plain_insert_in_autocommit_leaves_the_lock_to_sqlite(database, monkeypatch):
    """The inboxes' INSERT on the request path: SQLite's own lock and busy handler order
    it, and it is stored once the other writer commits."""
    handler, lock_path = database
    holder = handler["default"]
    holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", ["first"])
    calls = []
    monkeypatch.setattr(WriterLock, "acquire", lambda lock: calls.append(lock))
    stored = []

    def write():
        waiter = handler["default"]
        with waiter.cursor() as cursor:
            cursor.execute("INSERT INTO t (v) VALUES (%s)", ["second"])
            stored.append(cursor.lastrowid)
        waiter.close()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(HOLD)
    assert not stored, "the INSERT wrote while another transaction held SQLite's lock"
    holder.commit()
    holder.set_autocommit(True)
    thread.join(10)
    assert stored == [2] and calls == []
    assert locked(lock_path) is False
    with holder.cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY id")
        assert [v for (v,) in cursor.fetchall()] == ["first", "second"]


def test_returning_rows_are_read_under_the_lock_and_committed(database):
    handler, lock_path = database
    writer = handler["default"]
    with writer.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s), (%s) RETURNING id, v", ["x", "y"])
        assert not locked(lock_path)  # released: the statement is done, its rows in memory
        assert cursor.fetchone() == (1, "x")
        assert cursor.fetchall() == [(2, "y")]
    other = ConnectionHandler({"default": dict(writer.settings_dict)})["default"]
    with other.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM t")
        assert cursor.fetchone() == (2,)
    other.close()


def test_an_in_memory_database_takes_no_lock(db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    connection.ensure_connection()
    assert connection.writer_lock is None
