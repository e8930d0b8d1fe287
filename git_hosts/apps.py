from django.apps import AppConfig


class GitHostsConfig(AppConfig):
    name = "git_hosts"
    verbose_name = "Git hosts"
    default_auto_field = "django.db.models.BigAutoField"
