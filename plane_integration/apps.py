from django.apps import AppConfig


def record_deploy_comment(sender, **kwargs):
    # Imported on the first settled deployment, not at start-up: deploy_comments brings in
    # the Plane client and `requests`, which most processes never use.
    from plane_integration.deploy_comments import record

    record(sender, **kwargs)


class PlaneIntegrationConfig(AppConfig):
    name = "plane_integration"
    verbose_name = "Plane board"

    def ready(self):
        from pipeline import drains
        from pipeline.signals import deployment_settled, task_changed
        from plane_integration.ingest import DRAIN
        from plane_integration.receivers import show_task_changes

        task_changed.connect(show_task_changes, dispatch_uid="plane_integration.show_task_changes")
        deployment_settled.connect(
            record_deploy_comment, dispatch_uid="plane_integration.deploy_comments"
        )
        # The q cluster loads the webhook drain before it forks (pipeline imports nothing here).
        drains.register(DRAIN)
