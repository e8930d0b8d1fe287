"""SQLite writers queue on a file lock (pipeline/sqlite), not on SQLite's busy handler."""

import fcntl
import os
import threading
import time

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

HOLD = 0.44  # just after one of the busy handler's retries: its next comes ~90 ms later


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


def test_a_waiting_writer_starts_as_soon_as_the_lock_is_free(database):
    handler, _ = database
    holder = handler["default"]
    holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    with holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (v) VALUES (%s)", ["first"])
    finished = []

    def write():
        waiter = handler["default"]  # its own connection: the handler is per thread
        with waiter.cursor() as cursor:
            cursor.execute("INSERT INTO t (v) VALUES (%s)", ["second"])  # autocommit
        finished.append(time.monotonic())
        waiter.close()

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(HOLD)
    holder.commit()
    released = time.monotonic()
    holder.set_autocommit(True)
    thread.join(10)
    assert finished, "the waiting write never finished"
    # SQLite's busy handler would have slept until its next retry, ~90 ms after this.
    assert finished[0] - released < 0.04
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
