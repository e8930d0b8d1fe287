import re
import uuid

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from pipeline.stages import DeployPhase, Stage

STAGE_CHOICES = [(s.value, s.value) for s in Stage]
PHASE_CHOICES = [(p.value, p.value or "(not requested)") for p in DeployPhase]


# Plane's readable id (`DEMO-42`), and the start of a work item UUID that people copy.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9]*-[0-9]+$")
UUID_PREFIX_PATTERN = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]{7,35}$")


def task_name_filter(text: str, prefix: str = "") -> Q | None:
    """The filter for a task as people name it: `DEMO-3` or `demo-3` (its identifier), or a
    work item UUID or its first 8 or more characters; None when `text` is neither.
    `prefix` names the path to the task from another model (`task__`)."""
    text = text.strip()
    if IDENTIFIER_PATTERN.match(text):
        return Q(**{f"{prefix}identifier": text.upper()})
    if UUID_PREFIX_PATTERN.match(text):
        try:
            return Q(**{f"{prefix}work_item_id": uuid.UUID(text)})
        except ValueError:
            return Q(**{f"{prefix}work_item_id__startswith": text.lower()})
    return None


class TaskQuerySet(models.QuerySet):
    def named(self, text: str) -> "TaskQuerySet":
        """The tasks `text` names (see `task_name_filter`): one, none, or a few for a short
        UUID prefix."""
        q = task_name_filter(text)
        return self.filter(q) if q is not None else self.none()

    def for_work_item(self, work_item_id) -> "Task | None":
        """The task of a work item id (a UUID or its text), or None, also for a malformed id."""
        try:
            return self.filter(work_item_id=uuid.UUID(str(work_item_id))).first()
        except ValueError:
            return None


class Task(models.Model):
    """One Plane work item moving through the pipeline: the truth (layer A).

    `stage` and `deploy_phase` change only through `pipeline.engine`.
    """

    work_item_id = models.UUIDField(unique=True, help_text="Plane's work item UUID")
    project_id = models.UUIDField(db_index=True, help_text="Plane's project UUID")
    repo = models.CharField(max_length=200, blank=True, db_index=True)
    title = models.CharField(max_length=500, blank=True)
    # Plane's readable id (`DEMO-42`: the project's identifier and the item's sequence id),
    # upper case, learned by the board layer; empty until it is known.
    identifier = models.CharField(max_length=50, blank=True, db_index=True)
    stage = models.CharField(
        max_length=20, choices=STAGE_CHOICES, default=Stage.ANALYSIS, db_index=True
    )
    deploy_phase = models.CharField(max_length=20, choices=PHASE_CHOICES, blank=True)
    deploy_approved_by = models.CharField(max_length=200, blank=True)
    deploy_approved_at = models.DateTimeField(null=True, blank=True)
    # Re-opening a finished task starts a new cycle; the history keeps the old ones.
    cycle = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        permissions = [("approve_deploy", "Can approve a task's deploy")]
        constraints = [
            models.CheckConstraint(
                condition=Q(stage__in=[s.value for s in Stage]), name="task_stage_known"
            ),
            models.CheckConstraint(
                condition=Q(deploy_phase__in=[p.value for p in DeployPhase]),
                name="task_deploy_phase_known",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.stage})"

    @property
    def label(self) -> str:
        """How people name the task: `DEMO-3 · Fix login`, else what of the two is known,
        else the work item's UUID."""
        return " · ".join(part for part in (self.identifier, self.title) if part) or str(
            self.work_item_id
        )


class StageChange(models.Model):
    """One recorded change of a task's stage, deploy phase or deploy approval."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="history")
    cycle = models.PositiveIntegerField()
    from_stage = models.CharField(max_length=20, choices=STAGE_CHOICES)
    to_stage = models.CharField(max_length=20, choices=STAGE_CHOICES)
    from_phase = models.CharField(max_length=20, choices=PHASE_CHOICES, blank=True)
    to_phase = models.CharField(max_length=20, choices=PHASE_CHOICES, blank=True)
    caller = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        if self.from_stage != self.to_stage:
            return f"{self.from_stage} -> {self.to_stage}"
        return f"deploy phase {self.from_phase or '-'} -> {self.to_phase or '-'}"


REPO_NAME = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._/-]*$", "A repo name is letters, digits and . _ / - only."
)


def validate_repo_list(value: str) -> None:
    for name in split_repos(value):
        REPO_NAME(name)


def split_repos(value: str) -> list[str]:
    """A CSV of repo names as a list, blanks and repeats dropped."""
    return list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))


class Switchboard(models.Model):
    """The runtime flags: one row, read on every use, so a change holds on the next call in
    every process. Seeded from the ORCH_ environment on first use (pipeline.switchboard)."""

    deploy_status_guard_enabled = models.BooleanField(
        help_text="Kill-switch: off, the deploy-phase setters behave as without the guard"
    )
    deploy_status_guard_repos = models.CharField(
        max_length=2000,
        blank=True,
        validators=[validate_repo_list],
        help_text="Repos the guard watches, comma-separated; empty: self-hosting only",
    )
    post_deploy_enabled = models.BooleanField(help_text="Open a monitor window after deploys")
    post_deploy_repos = models.CharField(
        max_length=2000,
        blank=True,
        validators=[validate_repo_list],
        help_text="Repos watched after a deploy, comma-separated; empty: self-hosting only",
    )
    post_deploy_window_minutes = models.FloatField(
        validators=[MinValueValidator(0.01), MaxValueValidator(24 * 60)]
    )
    post_deploy_tick_seconds = models.FloatField(
        validators=[MinValueValidator(0.1), MaxValueValidator(3600)]
    )
    post_deploy_fail_threshold = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    post_deploy_error_ratio = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A share of probes, 0 to 1",
    )
    post_deploy_min_samples = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(100000)]
    )
    reconcile_enabled = models.BooleanField(
        default=True,
        help_text="Kill-switch: off, scheduled reconciler sweeps do nothing "
        "(`manage.py reconcile` still runs when asked)",
    )
    deploy_comments_enabled = models.BooleanField(
        default=True, help_text="Comment each deploy's outcome on its work item"
    )
    git_events_enabled = models.BooleanField(
        default=True,
        help_text="Kill-switch: off, Git host events are still stored and shown but move nothing",
    )
    updated_at = models.DateTimeField(auto_now=True)

    FIELDS = (
        "deploy_status_guard_enabled",
        "deploy_status_guard_repos",
        "post_deploy_enabled",
        "post_deploy_repos",
        "post_deploy_window_minutes",
        "post_deploy_tick_seconds",
        "post_deploy_fail_threshold",
        "post_deploy_error_ratio",
        "post_deploy_min_samples",
        "reconcile_enabled",
        "deploy_comments_enabled",
        "git_events_enabled",
    )

    class Meta:
        verbose_name_plural = "switchboard"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="switchboard_single_row")]

    def __str__(self) -> str:
        return "Runtime switchboard"

    def clean(self) -> None:
        self.deploy_status_guard_repos = ",".join(split_repos(self.deploy_status_guard_repos))
        self.post_deploy_repos = ",".join(split_repos(self.post_deploy_repos))


class SwitchboardChange(models.Model):
    """One changed field of the switchboard: who, when, old, new, and why."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    who = models.CharField(max_length=200)
    field = models.CharField(max_length=50, db_index=True)
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.field}: {self.old} -> {self.new}"


class Deployment(models.Model):
    """One deploy attempt of a task, and how it ended (written by `pipeline.deployments`).

    `outcome` is empty while the deploy runs. A successful deploy of a watched repo keeps
    `succeeded` until the monitor's verdict turns it into what production showed; it is
    `settled` (final, told on the work item) once nothing more will change it.
    """

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        ROLLED_BACK = "rolled_back"
        # DEGRADED, the rollback hook ran and failed: production may still be degraded.
        ROLLBACK_FAILED = "rollback_failed"
        DEGRADED_ALERT_ONLY = "degraded_alert_only"
        INCONCLUSIVE = "inconclusive"
        ABORTED = "aborted"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="deployments")
    cycle = models.PositiveIntegerField()
    repo = models.CharField(max_length=200, blank=True, db_index=True)
    environment = models.CharField(max_length=50, default="production")
    # A deploy to another environment (staging) is recorded on the task but moves no stage
    # and does not count in DORA.
    production = models.BooleanField(default=True)
    commit_sha = models.CharField(max_length=40, blank=True)
    ref = models.CharField(max_length=255, blank=True)
    ci_url = models.URLField(max_length=500, blank=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    # When the task's work started (its creation, or its re-opening for a later cycle):
    # kept here so DORA's lead time is one query, whatever the history's size.
    work_started_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.CharField(max_length=200, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=200, blank=True)
    # Null when the deploy was started outside the API (its finish is all we saw).
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True, db_index=True)
    window_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The post-deploy monitor window that watched it"
    )
    verdict = models.CharField(max_length=12, blank=True)
    evidence = models.TextField(blank=True, help_text="What the verdict rests on")
    action_taken = models.CharField(max_length=300, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["repo", "finished_at"], name="deployment_repo_finished")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    outcome__in=[
                        "",
                        "succeeded",
                        "failed",
                        "rolled_back",
                        "rollback_failed",
                        "degraded_alert_only",
                        "inconclusive",
                        "aborted",
                    ]
                ),
                name="deployment_outcome_known",
            ),
        ]

    def __str__(self) -> str:
        sha = self.commit_sha[:7] or "no commit"
        return f"{self.repo or '-'} {sha} ({self.outcome or 'running'})"

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:7]
