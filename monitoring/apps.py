from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Post-deploy monitor"

    def ready(self):
        from monitoring.windows import arm
        from pipeline.signals import stage_entered

        stage_entered.connect(arm, dispatch_uid="monitoring.arm")
