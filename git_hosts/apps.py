from django.apps import AppConfig


class GitHostsConfig(AppConfig):
    name = "git_hosts"
    verbose_name = "Git hosts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from git_hosts.ingest import DRAIN
        from git_hosts.models import GitRepo
        from pipeline import drains, switchboard

        # The q cluster loads the events drain before it forks (pipeline imports nothing here).
        drains.register(DRAIN)
        # The switchboard's repo lists are checked against the repos that exist.
        switchboard.REPO_SOURCES.append(lambda: GitRepo.objects.values_list("repo", flat=True))
