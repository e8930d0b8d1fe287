from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from operations.notify import deployment_settled_notice
        from pipeline.signals import deployment_settled

        deployment_settled.connect(deployment_settled_notice, dispatch_uid="operations.notify")
