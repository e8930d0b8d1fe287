from django.apps import AppConfig


def record_deploy_comment(sender, **kwargs):
    # Imported on the first settled deployment, not at start-up: deploy_comments brings in
    # the Plane client and `requests`, which most processes never use.
    from plane_integration.deploy_comments import record

    record(sender, **kwargs)


def _work_items():
    # Imported on the first question, not at start-up, for the same reason.
    from plane_integration import work_items

    return work_items


def _project_refusal(project_id) -> str | None:
    from plane_integration.board import unregistered_project

    return unregistered_project(project_id)


class PlaneIntegrationConfig(AppConfig):
    name = "plane_integration"
    verbose_name = "Plane board"

    def ready(self):
        from pipeline import drains, projects, work_items
        from pipeline.signals import deployment_settled, task_changed
        from plane_integration.ingest import DRAIN
        from plane_integration.receivers import show_task_changes

        task_changed.connect(show_task_changes, dispatch_uid="plane_integration.show_task_changes")
        deployment_settled.connect(
            record_deploy_comment, dispatch_uid="plane_integration.deploy_comments"
        )
        # The q cluster loads the webhook drain before it forks (pipeline imports nothing here).
        drains.register(DRAIN)
        # The task API asks whether a project is shown before it makes a task there.
        projects.register(refusal=_project_refusal)
        # The Git hosts ask the board about work items through pipeline (pipeline.work_items).
        work_items.register(
            identifiers=lambda: _work_items().project_identifiers(),
            find=lambda readable: _work_items().find_work_item(readable),
            link=lambda task, url, title: _work_items().add_link(task, url, title),
        )

        from pipeline import switchboard

        switchboard.REPO_SOURCES.append(_project_repos)


def _project_repos():
    from plane_integration.models import PlaneProject

    return PlaneProject.objects.exclude(repo="").values_list("repo", flat=True)
