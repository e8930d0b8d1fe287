"""Queued work the q cluster loads before it forks, named by the apps that queue it.

An app above `pipeline` that queues a q task from a request (a drain: the webhook drain of
`plane_integration`, the Git hosts' event drain) registers the task's dotted path here when
its app is ready, e.g. in `AppConfig.ready()`::

    from pipeline import drains

    drains.register("plane_integration.drain.drain_deliveries")

`manage.py qcluster` (`pipeline/management/commands/qcluster.py`) imports the module of
every registered drain, besides the schedules' functions, before it forks its processes, so
each worker shares that module instead of loading its own copy. So the dependency runs one
way: the apps import `pipeline`, and `pipeline` imports none of them. Registering the same
path twice keeps one; the order of first registration is kept. A path whose module is gone
is skipped by the cluster (the task fails when it runs, where it is reported).
"""

_registered: dict[str, None] = {}  # an ordered set


def register(func_path: str) -> None:
    """Name a q task (``"package.module.function"``) the cluster should load before it forks."""
    module, _, func = func_path.rpartition(".")
    if not module or not func:
        raise ValueError(f"not a dotted path to a function: {func_path!r}")
    _registered.setdefault(func_path, None)


def registered() -> tuple[str, ...]:
    """The registered drains' dotted paths, in the order they were first registered."""
    return tuple(_registered)
