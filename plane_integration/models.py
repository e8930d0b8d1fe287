from django.core.exceptions import ValidationError
from django.db import models

from pipeline.models import Task
from plane_integration import statuses


def validate_status_names(value) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError('Give custom names as {"key": "State name"}.')
    unknown = statuses.unknown_names(value)
    if unknown:
        raise ValidationError(
            f"Unknown status keys: {', '.join(unknown)}. Known: {', '.join(statuses.KEYS)}."
        )


class PlaneProject(models.Model):
    """A Plane project whose work items Stageboard shows the truth on."""

    project_id = models.UUIDField(unique=True)
    workspace_slug = models.SlugField(max_length=100)
    repo = models.CharField(max_length=200, blank=True, help_text="The repo it deploys to")
    status_names = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_status_names],
        help_text='Custom state names by status key, e.g. {"monitoring": "Watching prod"}',
    )
    states_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace_slug", "repo"]

    def __str__(self) -> str:
        return f"{self.workspace_slug}/{self.project_id} ({self.repo or 'no repo'})"


class PlaneState(models.Model):
    """A state of a Plane project, as last read from Plane (the per-project state cache)."""

    project = models.ForeignKey(PlaneProject, on_delete=models.CASCADE, related_name="states")
    state_id = models.UUIDField()
    name = models.CharField(max_length=255)
    group = models.CharField(max_length=20)
    is_default = models.BooleanField(default=False)
    sequence = models.FloatField(default=0)

    class Meta:
        ordering = ["project", "sequence", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "state_id"], name="plane_state_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.group})"

    def as_state(self) -> statuses.State:
        return statuses.State(
            str(self.state_id), self.name, self.group, self.is_default, self.sequence
        )


class BoardStatus(models.Model):
    """What a task's work item should show, and what it was last seen showing.

    Level-triggered: a change of the truth records the desired key and bumps
    `desired_version`; the sync pushes only the latest desired key and marks that
    version synced. `next_attempt_at` is set while there is something to push.
    """

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="board")
    desired_key = models.CharField(max_length=20)
    desired_version = models.PositiveIntegerField(default=0)
    desired_at = models.DateTimeField()
    synced_version = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)
    shown_state_id = models.UUIDField(null=True, blank=True)
    shown_key = models.CharField(max_length=20, blank=True)
    last_outcome = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row")
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "board statuses"
        ordering = ["-desired_at"]

    def __str__(self) -> str:
        return f"{self.task}: {self.desired_key}"

    @property
    def pending(self) -> bool:
        return self.desired_version > self.synced_version


class PlaneRateBudget(models.Model):
    """The requests sent with one API key in the current window, shared by all processes."""

    key_id = models.CharField(max_length=64, unique=True, help_text="sha256 of the API key")
    sent_at = models.JSONField(default=list, help_text="Unix times of the requests in the window")
    blocked_until = models.FloatField(default=0, help_text="Unix time Plane's Retry-After ends")
    requests_total = models.PositiveBigIntegerField(default=0, help_text="Requests ever sent")
    rate_limited_total = models.PositiveBigIntegerField(default=0, help_text="429s ever answered")

    def __str__(self) -> str:
        return f"budget {self.key_id[:12]}"


class WebhookDelivery(models.Model):
    """One webhook body Plane sent, stored once however often it arrives."""

    class State(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    # sha256 of the raw body (community edition) or "v2:<event_id>" (cloud's v2 format):
    # Plane gives every attempt a new delivery id, so only the body identifies a repeat.
    dedupe_key = models.CharField(max_length=200, unique=True)
    delivery_id = models.CharField(max_length=100, blank=True, help_text="X-Plane-Delivery")
    event = models.CharField(max_length=50, db_index=True)
    action = models.CharField(max_length=50, blank=True)
    work_item_id = models.UUIDField(null=True, blank=True, db_index=True)
    body = models.TextField(help_text="The raw body, exactly as signed")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.action} {self.work_item_id or ''}".strip()


class GuardVerdict(models.Model):
    """One decision of the deploy status guard (plane_integration.guard)."""

    VERDICTS = [(v, v) for v in ("ALLOW", "CONVERGE_DONE", "SUPPRESS")]

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    work_item_id = models.CharField(max_length=100, db_index=True)
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    repo = models.CharField(max_length=200, blank=True, db_index=True)
    caller = models.CharField(max_length=200, db_index=True)
    target = models.CharField(max_length=20)
    db_stage = models.CharField(max_length=20, blank=True, help_text="Empty: no task")
    window_active = models.BooleanField(null=True)
    verdict = models.CharField(max_length=20, choices=VERDICTS, db_index=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.verdict} {self.target} for {self.work_item_id} by {self.caller}"


class DeployComment(models.Model):
    """The comment that tells a deployment's outcome on its work item: one per outcome.

    The unique (deployment, outcome) makes a second comment for the same outcome
    impossible to record; the sender's conditional UPDATE makes it impossible to send
    twice (plane_integration.deploy_comments).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        SKIPPED = "skipped"
        FAILED = "failed"

    deployment = models.ForeignKey(
        "pipeline.Deployment", on_delete=models.CASCADE, related_name="comments"
    )
    outcome = models.CharField(max_length=20)
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "outcome"], name="one_comment_per_deploy_outcome"
            )
        ]

    def __str__(self) -> str:
        return f"{self.deployment}: {self.outcome} ({self.state})"
