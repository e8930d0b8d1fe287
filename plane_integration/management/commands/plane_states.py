from django.core.management.base import BaseCommand, CommandError

from plane_integration.client import PlaneClient
from plane_integration.models import PlaneProject
from plane_integration.states import refresh_states, resolution_table


class Command(BaseCommand):
    help = (
        "Read each Plane project's states again and show, for every status key, the state "
        "it resolves to and whether it fell back."
    )

    def add_arguments(self, parser):
        parser.add_argument("project_ids", nargs="*", help="only these projects (UUIDs)")
        parser.add_argument(
            "--cached", action="store_true", help="show the cached states; do not ask Plane"
        )

    def handle(self, *args, project_ids, cached, **options):
        projects = PlaneProject.objects.all()
        if project_ids:
            projects = projects.filter(project_id__in=project_ids)
        client = None if cached else PlaneClient.from_settings()
        if not cached and client is None:
            raise CommandError("Plane is not configured: set PLANE_API_URL and PLANE_API_KEY")
        failed = 0
        for project in projects:
            self.stdout.write(self.style.MIGRATE_HEADING(str(project)))
            if client:
                result = refresh_states(project, client)
                if not result.ok:
                    failed += 1
                    self.stdout.write(self.style.ERROR(f"  cannot read states: {result.error}"))
                    continue
            for r in resolution_table(project):
                shown = f"{r.state.name} ({r.state.id})" if r.state else "NOTHING"
                mark = "fell back: " if r.fell_back else ""
                line = f"  {r.key:16} -> {shown:56} {mark}{r.via}"
                self.stdout.write(self.style.WARNING(line) if r.state is None else line)
        if failed:
            raise CommandError(f"{failed} project(s) could not be read")
