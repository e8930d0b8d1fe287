"""Retrying a failed rollback, asked of the monitor without importing it.

The API (`POST /api/tasks/{id}/deploy/retry-rollback/`) lives in `pipeline`; the rollback
hook and its window live in `monitoring`, above it. The monitor registers its function here
when its app is ready (`monitoring.apps`), as it registers its window facts in
`pipeline.windows`. With no monitor installed, nothing can be retried.
"""

from collections.abc import Callable

from pipeline.engine import TransitionRefused

_retry: Callable | None = None


def register(*, retry: Callable) -> None:
    """`retry(task, *, caller, reason)` queues the hook again or raises TransitionRefused."""
    global _retry
    _retry = retry


def retry_rollback(task, *, caller: str, reason: str = "") -> None:
    if _retry is None:
        raise TransitionRefused("no post-deploy monitor is installed: nothing to retry")
    _retry(task, caller=caller, reason=reason)
