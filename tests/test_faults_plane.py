"""Plane answering 500, 429 or hanging for minutes, then recovering: no desired status is
lost, and the board is right within one interval of the scheduled sync after recovery.

Minutes pass on a moved clock, not a real one: `later` shifts Django's clock (due rows,
backoffs) and the rate budget's (a Retry-After block) by the same amount.
"""

import time
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import pytest
from django.utils import timezone

from pipeline import engine
from plane_integration import budget
from plane_integration.models import BoardStatus
from plane_integration.schedules import SCHEDULES
from plane_integration.sync import sync_board

SYNC_INTERVAL = timedelta(
    minutes=next(s.minutes for s in SCHEDULES if s.name == "stageboard.board_sync")
)


@contextmanager
def later(offset: timedelta):
    real_now, real_time = timezone.now, time.time
    with (
        mock.patch("django.utils.timezone.now", lambda: real_now() + offset),
        mock.patch.object(
            budget, "time", SimpleNamespace(time=lambda: real_time() + offset.total_seconds())
        ),
    ):
        yield


def shown(plane, task) -> str:
    state = plane.work_item(str(task.work_item_id))["state"]
    return next(s["name"] for s in plane.states(str(task.project_id)) if s["id"] == state)


@pytest.mark.parametrize("fault", ["500", "429", "hanging"])
def test_after_minutes_of_outage_the_board_is_right_within_one_sync_interval(
    plane, board_task, settings, django_capture_on_commit_callbacks, fault
):
    settings.PLANE_SYNC_RETRY_SECONDS = 15.0  # production's backoff
    settings.PLANE_READ_TIMEOUT = 0.2
    settings.PLANE_RETRIES = 0
    tasks = [board_task(stage="development", name=f"item {n}") for n in range(3)]
    if fault == "hanging":
        plane.delay_for(600, 0.5)
    else:
        plane.fail_for(600, status=int(fault))
    with django_capture_on_commit_callbacks(execute=True):
        for task in tasks:
            engine.advance_stage(task, "code_review", caller="ci")

    # Ten minutes of outage: the scheduled sync runs every interval and fails each time.
    outage = 10
    for minute in range(outage + 1):
        with later(minute * SYNC_INTERVAL):
            sync_board(max_seconds=2.0)
    if fault != "hanging":  # a late answer may come after Plane applied the change
        assert all(shown(plane, task) == "Todo" for task in tasks)  # nothing got through
    assert BoardStatus.objects.filter(next_attempt_at__isnull=False).count() == 3  # none lost

    plane.fail_for(0)  # Plane recovers
    plane.delay_for(0, 0)
    with later((outage + 1) * SYNC_INTERVAL + SYNC_INTERVAL):  # the next scheduled run
        sync_board(max_seconds=5.0)
    assert [shown(plane, task) for task in tasks] == ["Code Review"] * 3
    assert BoardStatus.objects.filter(next_attempt_at__isnull=False).count() == 0
