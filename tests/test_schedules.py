"""setup_schedules: the declared schedules reach django-q2, once, and run there."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Failure, Schedule, Success

from pipeline.scheduling import ScheduleSpec, declared_schedules, sync_schedules
from tests.qcluster import run_queued_tasks, run_scheduler

pytestmark = pytest.mark.django_db


def test_it_creates_the_declared_schedules_once(capsys):
    call_command("setup_schedules")
    first = {s.name: s.next_run for s in Schedule.objects.all()}
    call_command("setup_schedules")
    assert "0 created, 0 updated, 0 deleted" in capsys.readouterr().out
    assert set(first) == {spec.name for spec in declared_schedules()}
    assert {s.name: s.next_run for s in Schedule.objects.all()} == first


def test_a_changed_spec_updates_the_schedule_and_keeps_its_next_run():
    spec = ScheduleSpec(name="stageboard.example", func="math.floor", minutes=5)
    sync_schedules([spec])
    next_run = Schedule.objects.get(name=spec.name).next_run
    report = sync_schedules(
        [ScheduleSpec(name=spec.name, func="math.ceil", minutes=10, kwargs={"x": 1})]
    )
    assert report.updated == ["stageboard.example"]
    schedule = Schedule.objects.get(name=spec.name)
    assert (schedule.func, schedule.minutes, schedule.kwargs) == ("math.ceil", 10, "{'x': 1}")
    assert schedule.next_run == next_run


def test_it_removes_its_own_stale_schedules_and_leaves_others_alone():
    Schedule.objects.create(
        name="stageboard.retired", func="math.floor", schedule_type=Schedule.HOURLY
    )
    Schedule.objects.create(
        name="operator's report", func="math.floor", schedule_type=Schedule.DAILY
    )
    report = sync_schedules([])
    assert report.deleted == ["stageboard.retired"]
    assert list(Schedule.objects.values_list("name", flat=True)) == ["operator's report"]


def test_a_spec_must_be_ours_and_recurring():
    with pytest.raises(ValueError, match="must start with 'stageboard.'"):
        ScheduleSpec(name="prune", func="math.floor", minutes=5)
    with pytest.raises(ValueError, match="at least 1"):
        ScheduleSpec(name="stageboard.x", func="math.floor", minutes=0)


def test_the_cluster_runs_the_pruning_schedule(monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SAVE_LIMIT", 100)  # Stageboard keeps no successes; read this one
    old = Failure.objects.create(
        id="a" * 32,
        name="old",
        func="math.floor",
        started=timezone.now() - timedelta(days=40),
        stopped=timezone.now() - timedelta(days=40),
        success=False,
    )
    recent = Failure.objects.create(
        id="b" * 32,
        name="recent",
        func="math.floor",
        started=timezone.now(),
        stopped=timezone.now() - timedelta(days=2),
        success=False,
    )
    call_command("setup_schedules")
    run_scheduler()
    assert run_queued_tasks() == len(declared_schedules())  # every schedule is due at first
    assert not Failure.objects.filter(pk=old.pk).exists()
    assert Failure.objects.filter(pk=recent.pk).exists()
    ran = Success.objects.get(func="pipeline.housekeeping.prune_failed_task_results")
    assert ran.result == 1
