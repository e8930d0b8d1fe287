"""Recurring background work, declared in code and written to django-q2's schedule table.

Each app lists its schedules in `<app>/schedules.py` as `SCHEDULES`. `sync_schedules()`
(run by `manage.py setup_schedules`) makes the table match: it creates what is missing,
updates what changed, and deletes schedules of ours that are no longer declared. Ours
are the ones whose name starts with `stageboard.`; schedules an operator added by hand
are left alone. Running it twice changes nothing the second time.
"""

from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

PREFIX = "stageboard."


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    minutes: int
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.name.startswith(PREFIX):
            raise ValueError(f"schedule name {self.name!r} must start with {PREFIX!r}")
        if self.minutes < 1:
            raise ValueError(f"schedule {self.name!r}: minutes must be at least 1")

    def fields(self) -> dict:
        return {
            "func": self.func,
            "schedule_type": Schedule.MINUTES,
            "minutes": self.minutes,
            # django-q2 keeps kwargs as text and reads it back with ast.literal_eval.
            "kwargs": repr(self.kwargs) if self.kwargs else None,
            "repeats": -1,
        }


def declared_schedules() -> list[ScheduleSpec]:
    specs = []
    for app in apps.get_app_configs():
        module = f"{app.name}.schedules"
        if find_spec(module) is not None:
            specs.extend(import_module(module).SCHEDULES)
    return specs


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@transaction.atomic
def sync_schedules(specs: list[ScheduleSpec] | None = None) -> SyncReport:
    specs = declared_schedules() if specs is None else specs
    report = SyncReport()
    existing = {
        s.name: s for s in Schedule.objects.select_for_update().filter(name__startswith=PREFIX)
    }
    for spec in specs:
        wanted = spec.fields()
        current = existing.pop(spec.name, None)
        if current is None:
            Schedule.objects.create(name=spec.name, next_run=timezone.now(), **wanted)
            report.created.append(spec.name)
        elif any(getattr(current, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(current, key, value)
            current.save()
            report.updated.append(spec.name)
        else:
            report.unchanged.append(spec.name)
    for name, stale in existing.items():
        stale.delete()
        report.deleted.append(name)
    return report
