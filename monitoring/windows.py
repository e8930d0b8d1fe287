"""Opening windows, and what other layers may ask about them."""

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from monitoring.config import current
from monitoring.models import MonitorWindow
from monitoring.outcomes import armed
from pipeline.models import StageChange, Task
from pipeline.signals import task_changed
from pipeline.stages import Stage
from pipeline.windows import WindowFacts

TICK_QUEUED = "stageboard:monitor-tick-queued"


def arm(sender, task: Task, change: StageChange, **kwargs) -> None:
    """On entering done (inside the engine's transaction): open the window of a monitored repo.

    Inside the transaction, so the window is active before the board hears of the change
    and shows Monitoring after Deploy from the first moment.
    """
    if change.to_stage != Stage.DONE:
        return
    config = current()
    if not config.monitors(task.repo):
        return
    now = timezone.now()
    window, opened = MonitorWindow.objects.get_or_create(
        task=task,
        cycle=task.cycle,
        defaults={
            "repo": task.repo,
            "opened_at": now,
            "closes_at": now + config.window,
            "next_tick_at": now,  # the first probe right away
        },
    )
    if opened:
        armed(task, window)
        transaction.on_commit(request_tick)


def request_tick() -> None:
    if cache.add(TICK_QUEUED, True, timeout=60):
        async_task("monitoring.ticks.monitor_tick", task_name="monitor tick")


def current_window(task: Task) -> MonitorWindow | None:
    return MonitorWindow.objects.filter(task=task, cycle=task.cycle).first()


def window_active(task: Task) -> bool:
    """Whether the task's post-deploy window is being watched right now."""
    return MonitorWindow.objects.filter(
        task=task, cycle=task.cycle, state=MonitorWindow.State.ACTIVE
    ).exists()


def window_facts(task: Task) -> WindowFacts | None:
    """What the board needs to know of the task's window (None: no window to show)."""
    window = current_window(task)
    if window is None or window.state == MonitorWindow.State.ABORTED:
        return None
    return WindowFacts(
        active=window.state == MonitorWindow.State.ACTIVE, verdict=window.verdict or None
    )


def announce(task: Task) -> None:
    """After a window's verdict commits, the board shows what it means."""
    transaction.on_commit(
        lambda: task_changed.send_robust(sender=MonitorWindow, task=task, change=None)
    )
