import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline.models import Task
from plane_integration.board import record_desired
from plane_integration.models import PlaneProject
from plane_integration.work_items import learn_project_identifier


class Command(BaseCommand):
    help = "Add (idempotently), list or remove the Plane projects whose work items show the truth."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add or update a project")
        add.add_argument("project_id", help="Plane's project UUID")
        add.add_argument("--repo", required=True, help="the repo the project deploys to")
        add.add_argument("--workspace", help="workspace slug (default: PLANE_WORKSPACE_SLUG)")
        sub.add_parser("list", help="list the projects")
        remove = sub.add_parser("remove", help="stop showing the truth on a project's board")
        remove.add_argument("project_id", help="Plane's project UUID")

    def handle(self, *args, action, **options):
        if action == "add":
            self.add(options["project_id"], options["repo"], options["workspace"])
        elif action == "remove":
            self.remove(options["project_id"])
        else:
            self.list()

    def remove(self, project_id: str) -> None:
        """Forget the project: its state cache and sweep go with it; its tasks stay.

        The tasks keep their stage and history; their statuses are no longer sent (the
        sync counts an unregistered project as skipped) and no sweep reads its board.
        Adding the project again re-records their statuses, so the board follows again.
        """
        project_id = _uuid(project_id)
        project = PlaneProject.objects.filter(project_id=project_id).first()
        if project is None:
            raise CommandError(f"no Plane project {project_id}; see: plane_project list")
        tasks = Task.objects.filter(project_id=project_id).count()
        project.delete()
        self.stdout.write(
            self.style.SUCCESS(f"removed {project}")
            + f" ({tasks} tasks kept; their statuses are no longer sent)"
        )

    def add(self, project_id: str, repo: str, workspace: str | None) -> None:
        project_id = _uuid(project_id)
        workspace = workspace or settings.PLANE_WORKSPACE_SLUG
        if not workspace:
            raise CommandError("give --workspace or set PLANE_WORKSPACE_SLUG")
        project = PlaneProject.objects.filter(project_id=project_id).first()
        if project and (project.repo, project.workspace_slug) == (repo, workspace):
            self.stdout.write(f"unchanged {project}")
            return
        project, created = PlaneProject.objects.update_or_create(
            project_id=project_id, defaults={"repo": repo, "workspace_slug": workspace}
        )
        if not project.identifier:  # work items are named DEMO-42 by it (git_hosts)
            learn_project_identifier(project)
        # Tasks that were waiting for their project now get their board status.
        tasks = Task.objects.filter(project_id=project_id)
        for task in tasks:
            record_desired(task)
        self.stdout.write(
            self.style.SUCCESS(f"{'added' if created else 'updated'} {project}")
            + f" ({tasks.count()} tasks to show)"
        )

    def list(self) -> None:
        projects = PlaneProject.objects.all()
        if not projects:
            self.stdout.write("no Plane projects; add one with: plane_project add ID --repo NAME")
        for p in projects:
            refreshed = p.states_refreshed_at.isoformat() if p.states_refreshed_at else "never"
            tasks = Task.objects.filter(project_id=p.project_id).count()
            self.stdout.write(
                f"{p.project_id}  workspace={p.workspace_slug}  repo={p.repo or '-'}  "
                f"tasks={tasks}  identifier={p.identifier or '?'}  states read={refreshed}"
            )


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CommandError(f"{value!r} is not a project UUID") from None
