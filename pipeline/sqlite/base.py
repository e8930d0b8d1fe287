"""SQLite, with writers queued on a file lock instead of SQLite's busy handler.

SQLite has one writer at a time. A writer that finds the lock taken is retried by SQLite's
busy handler, which sleeps 1, 2, 5, 10 ... up to 100 ms between tries: under a burst of
webhooks most of a write's latency was that sleeping, while the lock was already free.
Here every write transaction (`atomic`, which begins IMMEDIATE) and every write statement
in autocommit but a plain INSERT (`_queued`) first takes an exclusive lock on
`<database>-writer.lock` and releases it once it commits or rolls back, so a waiting writer
starts about as soon as the lock is free. SQLite's own lock and busy timeout stay
underneath: a write that does not come through here (another program, a tool, a plain
INSERT) is still safe, it just waits the old way.

A waiter polls the lock at short, growing intervals (up to 1 ms) rather than blocking in
the kernel: a blocking lock cannot time out, and a stuck holder must not stall every other
writer for good. After the database's `timeout` it goes on without the lock and leaves the
rest to SQLite. In-memory databases (the tests') have nothing to share and take no lock.
"""

import fcntl
import os
import time

from django.db.backends.sqlite3 import base

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriterLock:
    """An exclusive lock on a file, shared by every process and thread of the machine."""

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        self.fd: int | None = None
        self.held = False

    def acquire(self) -> None:
        if self.held:
            return
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.held = True
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # SQLite's busy timeout decides from here
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class CursorWrapper(base.SQLiteCursorWrapper):
    """Takes the writer lock around a write in autocommit. A write that returns rows
    (RETURNING) commits only once its rows are read, so they are read under the lock
    and handed out from memory."""

    writer_lock: WriterLock | None = None
    buffered: list | None = None

    def execute(self, query, params=None):
        self.buffered = None
        lock = self.writer_lock
        if lock is None or lock.held or self.connection.in_transaction or not _queued(query):
            return super().execute(query, params)
        lock.acquire()  # a write in autocommit: its own transaction
        try:
            super().execute(query, params)
            if self.description is not None:
                self.buffered = super().fetchall()
            return self
        finally:
            lock.release()

    def executemany(self, query, param_list):
        self.buffered = None
        lock = self.writer_lock
        if lock is None or lock.held or self.connection.in_transaction or not _queued(query):
            return super().executemany(query, param_list)
        lock.acquire()
        try:
            return super().executemany(query, param_list)
        finally:
            lock.release()

    def fetchone(self):
        if self.buffered is None:
            return super().fetchone()
        return self.buffered.pop(0) if self.buffered else None

    def fetchmany(self, size=None):
        if self.buffered is None:
            return super().fetchmany(size) if size is not None else super().fetchmany()
        size = self.arraysize if size is None else size
        rows, self.buffered = self.buffered[:size], self.buffered[size:]
        return rows

    def fetchall(self):
        if self.buffered is None:
            return super().fetchall()
        rows, self.buffered = self.buffered, []
        return rows


def _queued(query: str) -> bool:
    """Whether a statement in autocommit waits for the writer lock: every write but a plain
    INSERT. A plain INSERT (the inboxes' one write on the request path) holds SQLite's lock
    for microseconds and returns nothing to read under it, so the busy handler's first short
    sleep is cheaper than queueing: under a burst of webhooks, the lock's polling was a
    third of the web workers' samples (tests/benchmarks/webhook_ingest.py --profile)."""
    verb = query.lstrip()[:7].upper()
    if not verb.startswith(WRITES):
        return False
    return not verb.startswith("INSERT") or "RETURNING" in query.upper()


class DatabaseWrapper(base.DatabaseWrapper):
    writer_lock: WriterLock | None = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        if self.writer_lock is None and not self.is_in_memory_db():
            timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
            self.writer_lock = WriterLock(f"{self.settings_dict['NAME']}-writer.lock", timeout)
        return connection

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=CursorWrapper)
        cursor.writer_lock = self.writer_lock
        return cursor

    def _start_transaction_under_autocommit(self):
        if self.writer_lock is not None:
            self.writer_lock.acquire()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self.writer_lock is not None:
                self.writer_lock.close()
                self.writer_lock = None

    def _release_writer(self):
        if self.writer_lock is not None:
            self.writer_lock.release()
