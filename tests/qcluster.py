"""Run queued django-q2 work in-process through the cluster's own functions.

The same pusher -> worker -> monitor path a running `qcluster` takes, without processes,
as django-q2's own tests do. One difference: a real worker closes "old" database
connections between tasks; here the worker shares the test's connection, whose open test
transaction Django would count as old on PostgreSQL, so that closing is held back.
"""

from contextlib import ExitStack
from multiprocessing import Event, Value
from unittest import mock

from django_q.brokers import get_broker
from django_q.monitor import monitor
from django_q.pusher import pusher
from django_q.queues import Queue
from django_q.scheduler import scheduler
from django_q.worker import worker


def keep_test_connection() -> ExitStack:
    stack = ExitStack()
    for module in ("worker", "monitor", "scheduler"):
        stack.enter_context(mock.patch(f"django_q.{module}.close_old_django_connections"))
    return stack


def run_queued_tasks(broker=None) -> int:
    """Process everything on the queue now; return how many tasks ran."""
    broker = broker or get_broker()
    task_queue, result_queue = Queue(), Queue()
    stop = Event()
    stop.set()  # one pass: take what is queued, then return
    ran = 0
    with keep_test_connection():
        while broker.queue_size():
            pusher(task_queue, stop, broker=broker)
            ran += task_queue.qsize()
            task_queue.put("STOP")
            worker(task_queue, result_queue, Value("b", -1))
            result_queue.put("STOP")
            monitor(result_queue, broker=broker)
    return ran


def run_scheduler(broker=None) -> None:
    """One pass of the cluster's scheduler: enqueue every schedule that is due."""
    with keep_test_connection():
        scheduler(broker=broker or get_broker())
