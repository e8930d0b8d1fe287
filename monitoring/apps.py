from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Post-deploy monitor"

    def ready(self):
        from monitoring.actions import retry_rollback
        from monitoring.windows import arm, window_active, window_facts
        from pipeline import rollbacks, windows
        from pipeline.signals import stage_entered

        stage_entered.connect(arm, dispatch_uid="monitoring.arm")
        # The board and the guard ask about windows through pipeline.windows, never here.
        windows.register(facts=window_facts, active=window_active)
        # The API's retry-rollback asks through pipeline.rollbacks, never here.
        rollbacks.register(retry=retry_rollback)
