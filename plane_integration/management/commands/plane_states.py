from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from plane_integration.client import PlaneClient
from plane_integration.models import PlaneProject
from plane_integration.states import create_missing_states, refresh_states, resolution_table


class Command(BaseCommand):
    help = (
        "Read each Plane project's states again and show, for every status key, the state "
        "it resolves to and whether it fell back. With --create, first create in Plane each "
        "pipeline status a project lacks, with its group and colour."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_ids", nargs="*", help="only these projects (UUIDs)")
        parser.add_argument(
            "--project",
            action="append",
            default=[],
            dest="projects",
            metavar="ID",
            help="only this project (a UUID; may be repeated)",
        )
        parser.add_argument(
            "--cached", action="store_true", help="show the cached states; do not ask Plane"
        )
        parser.add_argument(
            "--create",
            action="store_true",
            help="create the pipeline's statuses each project lacks (docs/operations.md "
            "lists them with their groups)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="with --create: print what would be created, create nothing",
        )

    def handle(self, *args, project_ids, projects, cached, create, dry_run, **options):
        if dry_run and not create:
            raise CommandError("--dry-run goes with --create")
        if cached and create:
            raise CommandError("--create asks Plane: it cannot go with --cached")
        wanted = [*project_ids, *projects]
        rows = PlaneProject.objects.all()
        if wanted:
            try:
                rows = rows.filter(project_id__in=wanted)
                known = {str(p.project_id) for p in rows}
            except ValidationError:
                raise CommandError(f"not a project UUID: {' '.join(wanted)}") from None
            unknown = [p for p in wanted if p not in known]
            if unknown:
                raise CommandError(
                    f"no registered project {', '.join(unknown)}: "
                    "add it with `manage.py plane_project add PROJECT_ID --repo NAME`"
                )
        if not rows.exists():
            told = (
                "no Plane project is registered: "
                "add one with `manage.py plane_project add PROJECT_ID --repo NAME`"
            )
            if create:
                raise CommandError(told)
            self.stdout.write(self.style.WARNING(told))
        client = None if cached else PlaneClient.from_settings()
        if not cached and client is None:
            raise CommandError("Plane is not configured: set PLANE_API_URL and PLANE_API_KEY")
        failed = 0
        for project in rows:
            self.stdout.write(self.style.MIGRATE_HEADING(str(project)))
            if create:
                creations, result = create_missing_states(project, client, dry_run=dry_run)
                for c in creations:
                    line = f"  {c.outcome:12} {c.name!r} ({c.group}) for {c.key}"
                    if c.error:
                        failed += 1
                        self.stdout.write(self.style.ERROR(f"{line}: {c.error}"))
                    else:
                        self.stdout.write(line)
                if result.ok and not creations:
                    self.stdout.write("  every pipeline status exists")
            elif client:
                result = refresh_states(project, client)
            if client and not result.ok:
                failed += 1
                self.stdout.write(self.style.ERROR(f"  cannot read states: {result.error}"))
                continue
            for r in resolution_table(project):
                shown = f"{r.state.name} ({r.state.id})" if r.state else "NOTHING"
                mark = "fell back: " if r.fell_back else ""
                line = f"  {r.key:16} -> {shown:56} {mark}{r.via}"
                self.stdout.write(self.style.WARNING(line) if r.state is None else line)
        if failed:
            raise CommandError(f"{failed} project(s) or status(es) failed: see above")
