from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Post-deploy monitor"

    def ready(self):
        from monitoring.actions import retry_rollback
        from monitoring.models import MonitoredRepo
        from monitoring.windows import arm, window_active, window_facts
        from pipeline import rollbacks, switchboard, windows
        from pipeline.signals import stage_entered

        stage_entered.connect(arm, dispatch_uid="monitoring.arm")
        # The board and the guard ask about windows through pipeline.windows, never here.
        windows.register(facts=window_facts, active=window_active)
        # The API's retry-rollback asks through pipeline.rollbacks, never here.
        rollbacks.register(retry=retry_rollback)
        # The switchboard's repo lists are checked against the repos that exist.
        switchboard.REPO_SOURCES.append(
            lambda: MonitoredRepo.objects.values_list("name", flat=True)
        )
