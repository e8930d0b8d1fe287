"""django-q2's `qcluster`, sized for a small machine: without the web's system checks, with
the task modules loaded before the fork, with the sentinel in this process (`run_sentinel`)
and the pusher and monitor as its threads (`ThreadedSentinel`): two processes, not five.

Django runs the system checks before a management command. Some of them load what only the
web serves, and it would then sit in each of the cluster's processes (sentinel, pusher,
monitor, workers: about 14 MB each time, measured): the `urls` checks import the URLconf
(the admin, DRF, drf-spectacular, every view), the `admin` checks import every middleware and
every template tag library (DRF's brings markdown, pygments, yaml, psycopg), DRF's pagination
check imports the pagination class and DRF's renderers. The web processes load all of it
anyway, and `manage.py check` (or `migrate`) runs every check at deploy; the cluster runs the
others (models, database, caches, Stageboard's own).
"""

import contextlib
import gc
import os
import signal
import threading
import uuid

from django.conf import settings
from django.core import checks
from django_q.brokers import get_broker
from django_q.cluster import Sentinel, get_mp_context
from django_q.management.commands.qcluster import Command as QClusterCommand
from django_q.monitor import monitor
from django_q.pusher import pusher

WEB_ONLY_TAGS = {
    checks.Tags.urls,
    checks.Tags.admin,
    checks.Tags.templates,
    checks.Tags.staticfiles,
}
WEB_ONLY_MODULES = ("rest_framework", "drf_spectacular")


def web_only(check) -> bool:
    return bool(WEB_ONLY_TAGS.intersection(getattr(check, "tags", ()))) or (
        check.__module__.startswith(WEB_ONLY_MODULES)
    )


def warm_up():
    """Load before the fork what every cluster process would load after it: the task
    modules (the schedules' and the drains the apps registered in `pipeline.drains`) and the
    ORM paths of the broker and the results. Loaded once and shared, not once in each process
    (measured: about 4 MB less)."""
    from importlib import import_module

    from django.db import DatabaseError, connections
    from django_q.brokers import get_broker
    from django_q.models import OrmQ, Schedule, Success, Task

    from pipeline import drains

    try:
        funcs = set(Schedule.objects.values_list("func", flat=True)) | set(drains.registered())
        for func in funcs:
            with contextlib.suppress(ImportError):  # a schedule naming a gone module fails later
                import_module(func.rsplit(".", 1)[0])
        broker = get_broker()
        broker.ping()
        broker.queue_size()  # not dequeue(): that would claim a task
        OrmQ.objects.exists()
        Task.objects.exists()
        Success.objects.exists()
    except DatabaseError:
        pass  # not migrated yet, or the database is away: the cluster reports it itself
    connections.close_all()


class Command(QClusterCommand):
    def check(self, *args, **kwargs):
        registry = checks.registry.registry
        registered = registry.registered_checks
        registry.registered_checks = {c for c in registered if not web_only(c)}
        try:
            return super().check(*args, **kwargs)
        finally:
            registry.registered_checks = registered

    def handle(self, *args, **options):
        if options.get("run_once") or options.get("cluster_name"):
            return super().handle(*args, **options)
        yield_the_cpu()
        warm_up()
        # The cluster forks its pusher, monitor and workers from this process: take
        # everything loaded so far out of the cyclic GC, so a collection does not copy each
        # shared page into each process.
        gc.freeze()
        run_sentinel()


def yield_the_cpu():
    """Lower this process's priority to Q_NICE (never raise it: an unprivileged process
    cannot, and a supervisor's own nice value is kept when it is lower still). The workers
    fork from this process and inherit it."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if settings.Q_NICE > current:
        os.setpriority(os.PRIO_PROCESS, 0, settings.Q_NICE)


class ThreadedSentinel(Sentinel):
    """django-q2's Sentinel with the pusher and the monitor as threads of the sentinel's
    process instead of processes of their own.

    Both spend their lives waiting (the pusher polls the broker every `poll` seconds, the
    monitor waits on the result queue), and each process of theirs held about 20 MB of
    pages of its own. Their code is django-q2's own; the guard loop sees a dead thread as
    it sees a dead process and starts another. Only the workers, which run the tasks and
    are stopped for a timeout, stay processes. Each thread gets a broker of its own: the
    ORM broker's database connections are per thread."""

    def spawn_pusher(self) -> threading.Thread:
        return self.thread(pusher, self.task_queue, self.event_out, get_broker())

    def spawn_monitor(self) -> threading.Thread:
        return self.thread(monitor, self.result_queue, get_broker())

    @staticmethod
    def thread(target, *args) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=f"q-{target.__name__}")
        thread.daemon = True
        thread.pid = os.getpid()  # what the cluster's status reports for it
        thread.start()
        return thread


def run_sentinel():
    """django-q2's cluster with its sentinel in this process.

    django-q2's `Cluster` forks a sentinel and then only waits for a signal to stop it: one
    Python process with a copy of every page the others touch (about 7 MB, measured), doing
    nothing. Here the sentinel (which spawns, guards and stops the pusher, monitor and
    workers, runs the scheduler and reports the status) runs in the command's own process,
    and SIGTERM or SIGINT sets its stop event as `Cluster.stop` does. The workers it forks
    get the signal handling the sentinel gives them in django-q2 (SIGTERM ends them, SIGINT
    is ignored).
    """
    context = get_mp_context()
    stop_event, start_event = context.Event(), context.Event()
    sentinel = ThreadedSentinel(stop_event, start_event, uuid.uuid4(), start=False)

    def stop(signum, frame):
        # Not stop_event.set() here: the handler runs in the thread that may be inside
        # stop_event.wait(), and setting it from there can deadlock on its condition.
        threading.Thread(target=stop_event.set, daemon=True).start()

    def in_child():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    os.register_at_fork(after_in_child=in_child)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sentinel.start()  # returns once the cluster has stopped
