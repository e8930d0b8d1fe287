"""`manage.py repo`: a repo's settings across the apps that keep them (the monitor's
watch, checks and rollback, the Git hosts' link). Here, on the top floor, since it reads both."""

import shlex

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from git_hosts.models import GitRepo, Provider
from monitoring.analysis import Condition, assess, number
from monitoring.checks import DeployFacts, read_check
from monitoring.classifier import Verdict
from monitoring.config import current
from monitoring.models import Check, MonitoredRepo, MonitorWindow
from monitoring.ticks import action_for
from pipeline import switchboard


class Command(BaseCommand):
    help = (
        "Set (idempotently) or list each repo's settings: how its production is watched "
        "after a deploy, and which Git repository it is."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        set_ = sub.add_parser("set", help="create or change a repo's monitoring settings")
        set_.add_argument(
            "name", help="the repo's name, as tasks and deploys give it (case matters)"
        )
        set_.add_argument(
            "--health-url",
            metavar="URL",
            help="probed after each deploy; a 2xx is healthy, a 5xx or no answer a failure",
        )
        set_.add_argument(
            "--error-rate-url", metavar="URL", help="a Prometheus query URL for the 5xx ratio"
        )
        set_.add_argument(
            "--rollback-command", help="run without a shell; split like a shell would split it"
        )
        set_.add_argument(
            "--rollback-url", metavar="URL", help="POSTed to on DEGRADED instead of a command"
        )
        set_.add_argument(
            "--rollback-timeout",
            type=int,
            metavar="SECONDS",
            help="how long the rollback may take (default 120)",
        )
        alert = set_.add_mutually_exclusive_group()
        alert.add_argument(
            "--alert-only",
            dest="alert_only",
            action="store_true",
            default=None,
            help="on DEGRADED, tell people but never run the rollback",
        )
        alert.add_argument(
            "--no-alert-only",
            dest="alert_only",
            action="store_false",
            help="on DEGRADED, run the rollback hook again (the default)",
        )
        set_.add_argument(
            "--git",
            metavar="PROVIDER:PATH",
            help="the Git repository, e.g. github:acme/shop, gitlab:acme/platform/api, "
            "forgejo:acme/web",
        )
        set_.add_argument(
            "--production-environment",
            metavar="NAME",
            help="the environment whose deploys finish a task (default production)",
        )
        set_.add_argument(
            "--deploy-workflow",
            metavar="NAME",
            help="a GitHub Actions workflow whose successful run on the default branch "
            "counts as a production deploy",
        )
        sub.add_parser("list", help="list the repos, and every name the switchboard watches")
        self.add_check_arguments(sub)

    def add_check_arguments(self, sub) -> None:
        check = sub.add_parser("check", help="the named checks a repo's deploys are judged by")
        actions = check.add_subparsers(dest="check_action", required=True)
        add = actions.add_parser("add", help="add a check, or change the one of that name")
        add.add_argument("repo", help="the repo's name (it must exist: repo set NAME)")
        add.add_argument("check_name", metavar="name", help="the check's name, e.g. p99")
        source = add.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--prometheus",
            metavar="QUERY",
            help="a PromQL query giving one number; {repo}, {environment} and {commit_sha} "
            "are filled in from the deploy",
        )
        source.add_argument("--http", metavar="URL", help="a URL that answers JSON")
        add.add_argument("--json-path", metavar="PATH", help="with --http: where the number is")
        condition = add.add_mutually_exclusive_group(required=True)
        condition.add_argument("--max", type=float, metavar="X", help="fail above X")
        condition.add_argument("--min", type=float, metavar="X", help="fail below X")
        condition.add_argument(
            "--max-vs-baseline",
            type=float,
            metavar="R",
            help="fail above R times the value before the deploy",
        )
        condition.add_argument(
            "--min-vs-baseline",
            type=float,
            metavar="R",
            help="fail below R times the value before the deploy",
        )
        add.add_argument(
            "--failure-limit",
            type=int,
            metavar="N",
            help="the deploy fails when more than N measurements failed (default 1)",
        )
        add.add_argument(
            "--baseline-minutes",
            type=int,
            metavar="M",
            help="the baseline averages the M minutes before the deploy (default 30)",
        )
        for name, what in (
            ("list", "list a repo's checks"),
            ("test", "run every check of a repo once now (a dry run: nothing is stored)"),
        ):
            actions.add_parser(name, help=what).add_argument("repo")
        remove = actions.add_parser("remove", help="remove a check")
        remove.add_argument("repo")
        remove.add_argument("check_name", metavar="name")

    def handle(self, *args, action, **options):
        if action == "set":
            self.set(options)
        elif action == "check":
            getattr(self, f"check_{options['check_action']}")(options)
        else:
            self.list()

    def repo(self, name: str) -> MonitoredRepo:
        repo = MonitoredRepo.objects.filter(name=name).first()
        if repo is None:
            raise CommandError(f"no repo {name!r}: add it first with  repo set {name}")
        return repo

    @transaction.atomic
    def check_add(self, options) -> None:
        repo = self.repo(options["repo"])
        check = Check.objects.filter(repo=repo, name=options["check_name"]).first()
        created = check is None
        check = check or Check(repo=repo, name=options["check_name"])
        if options["prometheus"] is not None:
            if options["json_path"] is not None:
                raise CommandError("--json-path goes with --http, not --prometheus")
            check.provider, check.query = Check.Provider.PROMETHEUS, options["prometheus"]
            check.url = check.json_path = ""
        else:
            if not options["json_path"]:
                raise CommandError("--http needs --json-path PATH: where the number is")
            check.provider, check.query = Check.Provider.HTTP, ""
            check.url, check.json_path = options["http"], options["json_path"]
        for condition in Condition:
            if options[condition.value] is not None:
                check.condition, check.threshold = condition, options[condition.value]
        if options["failure_limit"] is not None:
            check.failure_limit = options["failure_limit"]
        if options["baseline_minutes"] is not None:
            check.baseline_minutes = options["baseline_minutes"]
        try:
            check.full_clean()
        except ValidationError as exc:
            raise CommandError(
                f"check {check.name!r} not stored: "
                + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        check.save()
        self.stdout.write(f"{'added' if created else 'changed'} {repo.name} {describe(check)}")

    def check_list(self, options) -> None:
        repo = self.repo(options["repo"])
        checks = list(repo.checks.all())
        if not checks:
            self.stdout.write(f"{repo.name} has no checks; add one with: repo check add")
        for check in checks:
            self.stdout.write(describe(check))

    def check_remove(self, options) -> None:
        repo = self.repo(options["repo"])
        deleted, _ = Check.objects.filter(repo=repo, name=options["check_name"]).delete()
        if not deleted:
            raise CommandError(f"{repo.name} has no check {options['check_name']!r}")
        self.stdout.write(f"removed {repo.name} {options['check_name']}")

    def check_test(self, options) -> None:
        """Read every check once now, as a tick would (baselines: before now); store nothing."""
        repo = self.repo(options["repo"])
        checks = list(repo.checks.all())
        if not checks:
            raise CommandError(f"{repo.name} has no checks; add one with: repo check add")
        now, failing = timezone.now(), 0
        for check in checks:
            reading = read_check(
                check,
                DeployFacts(repo=repo.name),
                now,
                None,
                settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT,
            )
            result, why = assess(reading.value, check.limit, reading.baseline)
            value = "no value" if reading.value is None else number(reading.value)
            line = f"{check.name}  {value}  {check.limit.describe(reading.baseline)}  {result}"
            if result == "unmeasured":
                line += f" ({reading.error or reading.baseline_error or why})"
            if check.limit.needs_baseline:
                base = "none" if reading.baseline is None else number(reading.baseline)
                line += f"  baseline {base} (the {check.baseline_minutes} min before now)"
            failing += result != "success"
            self.stdout.write(line)
        if failing:
            raise CommandError(f"{failing} of {len(checks)} checks did not pass")

    @transaction.atomic
    def set(self, options) -> None:
        git_changed = self.set_git(options)
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
        changed += git_changed
        verb = "added" if created else ("updated" if changed else "unchanged")
        self.stdout.write(
            f"{verb} {repo.name}" + (f" ({', '.join(changed)})" if changed and not created else "")
        )

    def set_git(self, options) -> list[str]:
        """Link the repo to its Git repository (or change how); the changed fields."""
        git, environment, workflow = (
            options["git"],
            options["production_environment"],
            options["deploy_workflow"],
        )
        link = GitRepo.objects.filter(repo=options["name"]).first()
        if git is None and link is None:
            if environment is not None or workflow is not None:
                raise CommandError("give --git PROVIDER:PATH first: the repo has no Git link")
            return []
        link = link or GitRepo(repo=options["name"])
        changes = {"production_environment": environment, "deploy_workflow": workflow}
        if git is not None:
            provider, _, path = git.partition(":")
            if provider not in Provider.values or not path.strip("/"):
                raise CommandError(
                    f"--git {git!r}: give PROVIDER:PATH with a provider of "
                    f"{', '.join(Provider.values)}, e.g. github:acme/shop"
                )
            changes.update(provider=provider, path=path.strip("/"))
        changed = []
        for field, value in changes.items():
            if value is not None and getattr(link, field) != value:
                setattr(link, field, value)
                changed.append(field)
        try:
            link.full_clean()
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        if changed:
            link.save()
        return ["git" if f in ("provider", "path") else f for f in changed]

    def list(self) -> None:
        config = current()
        repos = MonitoredRepo.objects.all()
        if not repos:
            self.stdout.write("no repos; add one with: repo set NAME --health-url URL")
        links = {link.repo: link for link in GitRepo.objects.all()}
        for repo in repos:
            watched = "watched" if config.monitors(repo.name) else "not watched"
            link = links.get(repo.name)
            git = f"{link.provider}:{link.path} ({link.production_environment})" if link else "-"
            self.stdout.write(
                f"{repo.name}  {watched}  health={repo.health_url or '-'}  "
                f"error-rate={repo.error_rate_url or '-'}  git={git}  "
                f"on DEGRADED: {on_degraded(repo, config)}"
            )
        # Every other name the switchboard watches: one that matches no repo (a typo, or the
        # wrong case: names are case-sensitive) watches nothing; a repo without settings here
        # has no health URL to judge it by.
        all_known = switchboard.known_repos()
        state = "watched" if config.enabled else "listed (the monitor is off)"
        for name in sorted(config.repos - {repo.name for repo in repos}):
            unmatched = switchboard.unmatched_repos(name, all_known)
            if unmatched:
                why = unmatched[0].removeprefix(f"{name!r} ") + ": it watches nothing"
            else:
                why = f"no health URL: set one with  repo set {name} --health-url URL"
            self.stdout.write(f"{name}  {state} (post deploy repos)  {why}")


def describe(check: Check) -> str:
    return (
        f"{check.name}  {check.source}  {check.limit.spec()}  "
        f"--failure-limit {check.failure_limit}"
        + (f"  --baseline-minutes {check.baseline_minutes}" if check.limit.needs_baseline else "")
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
