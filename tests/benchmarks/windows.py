"""What the monitor's capacity benchmarks share: open windows to tick, and time the ticks."""

import time
import uuid


def open_windows(count: int) -> None:
    """`count` done tasks of the repo `bench`, each with a window due now."""
    from django.utils import timezone

    from monitoring.config import current
    from monitoring.models import MonitorWindow
    from pipeline.models import Task

    now = timezone.now()
    project = uuid.uuid4()
    tasks = Task.objects.bulk_create(
        Task(work_item_id=uuid.uuid4(), project_id=project, repo="bench", stage="done")
        for _ in range(count)
    )
    MonitorWindow.objects.bulk_create(
        MonitorWindow(
            task=task,
            cycle=1,
            repo="bench",
            opened_at=now,
            closes_at=now + current().window,
            next_tick_at=now,
        )
        for task in tasks
    )


def time_ticks(windows: int, rounds: int) -> tuple[list[float], int]:
    """Seconds each round took to tick every window once, pass after pass as a run does,
    and the passes of the last round."""
    from django.utils import timezone

    from monitoring.config import current
    from monitoring.models import MonitorWindow
    from monitoring.ticks import tick_due

    config = current()
    timings = []
    for _ in range(rounds):
        MonitorWindow.objects.update(next_tick_at=timezone.now())
        started = time.perf_counter()
        ticked, passes = 0, 0
        while ticked < windows:
            ticked += tick_due(config)["ticked"]
            passes += 1
        timings.append(time.perf_counter() - started)
    return timings, passes
