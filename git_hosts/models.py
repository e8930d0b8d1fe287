"""Git hosts as a source of pipeline events: linked repositories, the events they sent
(stored once, the queue the drain works off), and the pull requests they told us about."""

from django.db import models
from django.db.models.functions import Lower

from pipeline.models import REPO_NAME, Task


class Provider(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    FORGEJO = "forgejo", "Forgejo or Gitea"


class GitRepo(models.Model):
    """The Git repository of one Stageboard repo (`manage.py repo set NAME --git ...`)."""

    repo = models.CharField(
        max_length=200, unique=True, validators=[REPO_NAME], help_text="Stageboard's repo name"
    )
    provider = models.CharField(max_length=10, choices=Provider.choices)
    path = models.CharField(
        max_length=300, help_text="owner/name on the host, e.g. acme/shop or acme/platform/api"
    )
    production_environment = models.CharField(
        max_length=100,
        default="production",
        help_text="The environment whose deploys finish a task; others are only recorded",
    )
    deploy_workflow = models.CharField(
        max_length=200,
        blank=True,
        help_text="GitHub Actions: a successful run of this workflow on the default branch "
        "counts as a production deploy (empty: only deployment events count)",
    )
    default_branch = models.CharField(
        max_length=255, blank=True, help_text="As the host last told us"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Git repository"
        verbose_name_plural = "Git repositories"
        ordering = ["repo"]
        constraints = [
            models.UniqueConstraint(Lower("path"), "provider", name="git_repo_path_once")
        ]

    def __str__(self) -> str:
        return f"{self.repo} ({self.provider}:{self.path})"


class GitEvent(models.Model):
    """One delivery of a Git host's webhook: stored once on arrival (the queue), then
    worked off in the background, with what it did or why not."""

    class Outcome(models.TextChoices):
        PENDING = "pending"
        APPLIED = "applied"
        IGNORED = "ignored"
        STALE = "stale"
        REFUSED = "refused"
        FAILED = "failed"

    provider = models.CharField(max_length=10, choices=Provider.choices)
    event = models.CharField(max_length=100)
    action = models.CharField(max_length=100, blank=True)
    delivery_id = models.CharField(max_length=200, blank=True)
    # The provider and its delivery id (kept across a redelivery), else a hash of the body.
    dedupe_key = models.CharField(max_length=300, unique=True)
    repo_path = models.CharField(max_length=300, blank=True)
    body = models.BinaryField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, default=Outcome.PENDING, db_index=True
    )
    detail = models.TextField(blank=True)
    tasks = models.ManyToManyField(Task, related_name="git_events", blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        what = f"{self.event}.{self.action}" if self.action else self.event
        return f"{self.provider} {what} ({self.outcome})"


class PullRequest(models.Model):
    """A pull request (a merge request on GitLab) as its last applied event showed it."""

    class State(models.TextChoices):
        OPEN = "open"
        DRAFT = "draft"
        MERGED = "merged"
        CLOSED = "closed"

    git_repo = models.ForeignKey(GitRepo, on_delete=models.CASCADE, related_name="pull_requests")
    number = models.PositiveIntegerField()
    url = models.URLField(max_length=500)
    title = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    head_branch = models.CharField(max_length=255, blank=True)
    base_branch = models.CharField(max_length=255, blank=True)
    merge_commit_sha = models.CharField(max_length=64, blank=True, db_index=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # A review asked for changes, and the PR was not updated or re-requested since.
    changes_requested = models.BooleanField(default=False)
    # The time the host gave the last event applied to it: an older event changes nothing.
    event_at = models.DateTimeField()
    tasks = models.ManyToManyField(Task, through="PullRequestLink", related_name="pull_requests")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["git_repo", "number"]
        constraints = [
            models.UniqueConstraint(fields=["git_repo", "number"], name="pull_request_once")
        ]

    def __str__(self) -> str:
        return f"{self.git_repo.path}{self.sign}{self.number}"

    @property
    def provider(self) -> str:
        return self.git_repo.provider

    @property
    def repo_path(self) -> str:
        return self.git_repo.path

    @property
    def sign(self) -> str:
        """How the host writes its number: `!12` for a GitLab merge request, else `#12`."""
        return "!" if self.git_repo.provider == Provider.GITLAB else "#"

    @property
    def label(self) -> str:
        kind = "MR" if self.git_repo.provider == Provider.GITLAB else "PR"
        return f"{kind} {self.sign}{self.number} · {self.title}"


class PullRequestLink(models.Model):
    """A pull request names a task's work item: the link Plane shows on the work item."""

    pull_request = models.ForeignKey(PullRequest, on_delete=models.CASCADE, related_name="links")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="pull_request_links")
    linked_at = models.DateTimeField(null=True, blank=True, help_text="The link is on Plane")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pull_request", "task"], name="pull_request_link_once")
        ]

    def __str__(self) -> str:
        return f"{self.pull_request} on {self.task}"
