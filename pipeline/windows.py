"""What other layers may ask about a task's post-deploy window, without importing the monitor.

The monitor registers its answers here when its app is ready (`monitoring.apps`); the board
and the guard ask through these functions. So the dependency runs one way: `monitoring` and
`plane_integration` both import `pipeline`, and neither imports the other. With no monitor
registered (an installation without it) no task has a window.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class WindowFacts:
    """The post-deploy window of a done task, as far as the board needs it."""

    active: bool
    verdict: str | None = None


class WindowSource(Protocol):
    def window_facts(self, task) -> WindowFacts | None: ...

    def window_active(self, task) -> bool: ...


@dataclass(frozen=True)
class _Functions:
    facts: Callable
    active: Callable

    def window_facts(self, task) -> WindowFacts | None:
        return self.facts(task)

    def window_active(self, task) -> bool:
        return self.active(task)


_source: WindowSource | None = None


def register(*, facts: Callable, active: Callable) -> None:
    """The monitor names the functions that answer for its windows (once, at app ready)."""
    global _source
    _source = _Functions(facts=facts, active=active)


def window_facts(task) -> WindowFacts | None:
    """The task's current window (None: no window to show)."""
    return _source.window_facts(task) if _source else None


def window_active(task) -> bool:
    """Whether the task's post-deploy window is being watched right now."""
    return bool(_source and _source.window_active(task))
