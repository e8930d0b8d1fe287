from django.apps import AppConfig


class PlaneIntegrationConfig(AppConfig):
    name = "plane_integration"
    verbose_name = "Plane board"

    def ready(self):
        from pipeline.signals import deployment_settled, task_changed
        from plane_integration.deploy_comments import record
        from plane_integration.receivers import show_task_changes

        task_changed.connect(show_task_changes, dispatch_uid="plane_integration.show_task_changes")
        deployment_settled.connect(record, dispatch_uid="plane_integration.deploy_comments")
