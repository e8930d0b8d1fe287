"""An operator's decisions on a post-deploy window: one code path for the admin, the
dashboard and `manage.py ops`. Each records who and why in the task's history."""

from django.utils import timezone

from monitoring import outcomes
from monitoring.classifier import Verdict
from monitoring.config import current
from monitoring.models import MonitorWindow
from monitoring.ticks import close
from monitoring.windows import announce
from pipeline import engine
from pipeline.decisions import because


def abort_window(window: MonitorWindow, *, who: str, reason: str) -> bool:
    """Abort an active window without a verdict. Returns whether this call aborted it (a
    conditional UPDATE: a tick or another operator may have closed it first)."""
    why = because("aborted", who, reason)
    aborted = MonitorWindow.objects.filter(pk=window.pk, state=MonitorWindow.State.ACTIVE).update(
        state=MonitorWindow.State.ABORTED,
        closed_at=timezone.now(),
        closed_by=who,
        verdict_reason=why,
        next_tick_at=None,
        action=MonitorWindow.Action.NONE,
    )
    if aborted:
        outcomes.aborted(window.task, window.cycle, why)
        announce(window.task)
        engine.record_note(
            window.task, caller=who, reason=because("post-deploy window aborted", who, reason)
        )
    return bool(aborted)


def accept_window(window: MonitorWindow, *, who: str, reason: str) -> bool:
    """Close an active window as HEALTHY. Returns whether this call closed it."""
    if window.state != MonitorWindow.State.ACTIVE:
        return False
    accepted = close(
        window, Verdict.HEALTHY, because("accepted", who, reason), current(), None, by=who
    )
    if accepted:
        engine.record_note(window.task, caller=who, reason=because("deploy accepted", who, reason))
    return bool(accepted)


def active_window(task) -> MonitorWindow | None:
    return (
        MonitorWindow.objects.filter(task=task, state=MonitorWindow.State.ACTIVE)
        .select_related("task")
        .first()
    )
