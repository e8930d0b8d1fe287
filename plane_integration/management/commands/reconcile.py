import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from pipeline import switchboard
from plane_integration.models import PlaneProject
from plane_integration.reconcile import reconcile


class Command(BaseCommand):
    help = (
        "Sweep the configured Plane projects now and repair where the board and the truth "
        "differ. --full also reads every page and finds work items that have gone: the way "
        "to put a board right after a restore or an outage."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="sweep only this Plane project (UUID)")
        parser.add_argument("--full", action="store_true", help="read every page; find gone items")
        parser.add_argument(
            "--json", action="store_true", help="print the run record as JSON on the last line"
        )

    def handle(self, *args, **options):
        project = options["project"]
        if project is not None:
            try:
                project = str(uuid.UUID(project))
            except ValueError:
                raise CommandError(f"{project!r} is not a project UUID") from None
            if not PlaneProject.objects.filter(project_id=project).exists():
                raise CommandError(
                    f"project {project} is not configured: see `manage.py plane_project list`"
                )
        if not switchboard.get().reconcile_enabled:
            self.stderr.write("note: scheduled sweeps are switched off; this one runs as asked")
        run = reconcile(full=options["full"], project_id=project, trigger="command")
        self.stdout.write(self.summary(run))
        if options["json"]:
            self.stdout.write(json.dumps(run.as_record(), separators=(",", ":")))

    def summary(self, run) -> str:
        kinds = {}
        for repair in run.repairs.all():
            kinds[repair.kind] = kinds.get(repair.kind, 0) + 1
        repairs = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no repairs"
        state = "complete" if run.complete else f"incomplete ({run.note}): run again to resume"
        return (
            f"{run.kind} sweep {run.pk}: {run.projects} project(s), {run.items_seen} items seen, "
            f"{run.plane_calls} Plane calls, {repairs}; {state}"
        )
