"""What other layers may ask of the board about work items, without importing it.

The Git hosts (git_hosts) name work items as people do (`DEMO-42`) and put each pull
request on its work item as a link. The board (plane_integration) registers its answers
here when its app is ready, as the monitor registers its window facts in
`pipeline/windows.py`: `git_hosts` and `plane_integration` both import `pipeline`, and
neither imports the other. With no board registered, no identifier is known, no work item
is found and every link is skipped.
"""

from collections.abc import Callable
from dataclasses import dataclass


class Unreadable(RuntimeError):
    """The board could not tell us what we need now; it may later (retry)."""


@dataclass(frozen=True)
class WorkItem:
    id: str
    project_id: str
    name: str
    identifier: str  # DEMO-42


@dataclass(frozen=True)
class LinkOutcome:
    ok: bool  # the link is on the work item (made now, or there already)
    error: str = ""
    retry_after: float | None = None  # the budget is spent: try again then
    skipped: bool = False  # no board configured, or the task's project not registered


@dataclass(frozen=True)
class _Board:
    identifiers: Callable[[], set[str]]
    find: Callable[[str], WorkItem | None]
    link: Callable[..., LinkOutcome]


_board: _Board | None = None


def register(*, identifiers: Callable, find: Callable, link: Callable) -> None:
    """The board names the functions that answer (once, at app ready)."""
    global _board
    _board = _Board(identifiers=identifiers, find=find, link=link)


def project_identifiers() -> set[str]:
    """The identifiers (upper case, `DEMO`) of the projects whose work items are shown."""
    return _board.identifiers() if _board else set()


def find_work_item(readable: str) -> WorkItem | None:
    """The work item `DEMO-42`, or None when there is none. Raises `Unreadable` when the
    board cannot answer now."""
    return _board.find(readable) if _board else None


def add_link(task, url: str, title: str) -> LinkOutcome:
    """Put a link to `url` titled `title` on the task's work item, below the priority of
    the board's statuses; a link that is there already is success."""
    if _board is None:
        return LinkOutcome(False, "no board is installed", skipped=True)
    return _board.link(task, url, title)
