from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from git_hosts.signals import deploy_refused
        from operations.notify import deploy_refused_notice, deployment_settled_notice
        from pipeline.signals import deployment_settled

        deployment_settled.connect(deployment_settled_notice, dispatch_uid="operations.notify")
        deploy_refused.connect(deploy_refused_notice, dispatch_uid="operations.notify")
