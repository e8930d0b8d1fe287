import shlex

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from monitoring.classifier import Verdict
from monitoring.config import current
from monitoring.models import MonitoredRepo, MonitorWindow
from monitoring.ticks import action_for


class Command(BaseCommand):
    help = "Set (idempotently) or list how each repo's production is watched after a deploy."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        set_ = sub.add_parser("set", help="create or change a repo's monitoring settings")
        set_.add_argument("name")
        set_.add_argument("--health-url")
        set_.add_argument("--error-rate-url", help="a Prometheus query URL for the 5xx ratio")
        set_.add_argument(
            "--rollback-command", help="run without a shell; split like a shell would split it"
        )
        set_.add_argument("--rollback-url", help="POSTed to on DEGRADED instead of a command")
        set_.add_argument("--rollback-timeout", type=int, help="seconds (default 120)")
        alert = set_.add_mutually_exclusive_group()
        alert.add_argument("--alert-only", dest="alert_only", action="store_true", default=None)
        alert.add_argument("--no-alert-only", dest="alert_only", action="store_false")
        sub.add_parser("list", help="list the repos")

    def handle(self, *args, action, **options):
        if action == "set":
            self.set(options)
        else:
            self.list()

    def set(self, options) -> None:
        repo, created = MonitoredRepo.objects.get_or_create(name=options["name"])
        changes = {
            "health_url": options["health_url"],
            "error_rate_url": options["error_rate_url"],
            "rollback_url": options["rollback_url"],
            "rollback_timeout": options["rollback_timeout"],
            "alert_only": options["alert_only"],
        }
        if options["rollback_command"] is not None:
            changes["rollback_command"] = shlex.split(options["rollback_command"])
        changed = []
        for field, value in changes.items():
            if value is not None and getattr(repo, field) != value:
                setattr(repo, field, value)
                changed.append(field)
        try:
            repo.full_clean()
        except ValidationError as exc:
            if created:
                repo.delete()
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        if created or changed:
            repo.save()
        verb = "added" if created else ("updated" if changed else "unchanged")
        self.stdout.write(
            f"{verb} {repo.name}" + (f" ({', '.join(changed)})" if changed and not created else "")
        )

    def list(self) -> None:
        config = current()
        repos = MonitoredRepo.objects.all()
        if not repos:
            self.stdout.write("no repos; add one with: repo set NAME --health-url URL")
        for repo in repos:
            watched = "watched" if config.monitors(repo.name) else "not watched"
            self.stdout.write(
                f"{repo.name}  {watched}  health={repo.health_url or '-'}  "
                f"error-rate={repo.error_rate_url or '-'}  on DEGRADED: {on_degraded(repo, config)}"
            )


def on_degraded(repo: MonitoredRepo, config) -> str:
    """What a DEGRADED verdict would do for the repo: the monitor's own decision, and why."""
    hook = " ".join(shlex.quote(p) for p in repo.rollback_command) or repo.rollback_url
    if action_for(Verdict.DEGRADED, repo.name, config, repo) == MonitorWindow.Action.ROLLBACK:
        return f"rollback ({hook})"
    if config.alert_only(repo.name):
        why = "the self-hosting repo is never rolled back"
    elif repo.alert_only:
        why = "set to alert only" + (f"; hook {hook}" if hook else "")
    else:
        why = "no rollback hook"
    return f"alert only ({why})"
