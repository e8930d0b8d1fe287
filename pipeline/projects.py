"""Whether a task may be made in a Plane project, asked of the board without importing it.

The board (`plane_integration`) registers its answer when its app is ready, as the
monitor registers its window facts in `pipeline/windows.py`. With no board registered any
project is accepted: there is nothing the task would be invisible to.
"""

from collections.abc import Callable

_refusal: Callable[[object], str | None] | None = None


def register(*, refusal: Callable[[object], str | None]) -> None:
    """`refusal(project_id)` says why a task cannot be made there, or None."""
    global _refusal
    _refusal = refusal


def refusal(project_id) -> str | None:
    """Why no task may be made in `project_id` (its status could never be shown), or None."""
    return _refusal(project_id) if _refusal else None
