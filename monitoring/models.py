from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from monitoring.classifier import Counts, Verdict
from pipeline.models import Task


def validate_command(value) -> None:
    if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
        raise ValidationError(
            'Give the command as a list of arguments, e.g. ["./rollback", "web"].'
        )


class MonitoredRepo(models.Model):
    """How to watch one repo's production after a deploy, and how to roll it back."""

    name = models.CharField(max_length=200, unique=True)
    health_url = models.URLField(blank=True, max_length=500)
    error_rate_url = models.URLField(
        blank=True,
        max_length=1000,
        help_text="A Prometheus query URL whose result is the 5xx ratio (0..1)",
    )
    rollback_command = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_command],
        help_text="Run without a shell, as an argument list",
    )
    rollback_url = models.URLField(blank=True, max_length=500, help_text="POSTed to instead")
    rollback_timeout = models.PositiveIntegerField(default=120, help_text="Seconds")
    alert_only = models.BooleanField(
        default=False, help_text="Alert on DEGRADED but never roll back (to tune thresholds)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_rollback(self) -> bool:
        return bool(self.rollback_command or self.rollback_url)


class MonitorWindow(models.Model):
    """The watch over production after one deploy of a task reached done."""

    class State(models.TextChoices):
        ACTIVE = "active"
        CLOSED = "closed"
        ABORTED = "aborted"

    class Action(models.TextChoices):
        ROLLBACK = "rollback"
        ALERT_ONLY = "alert_only"
        NONE = "none"

    class ActionState(models.TextChoices):
        PENDING = "pending"  # claimed with the verdict, not started yet
        RUNNING = "running"  # started: never started again, whatever happens
        DONE = "done"
        FAILED = "failed"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="windows")
    cycle = models.PositiveIntegerField()
    repo = models.CharField(max_length=200, db_index=True)
    opened_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    next_tick_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, db_index=True)

    consecutive_failures = models.PositiveIntegerField(default=0)
    probes_total = models.PositiveIntegerField(default=0)
    probes_measured = models.PositiveIntegerField(default=0)
    server_errors = models.PositiveIntegerField(default=0, help_text="Probes answered 5xx")
    probes_unmeasured = models.PositiveIntegerField(default=0)
    source_ratio = models.FloatField(null=True, blank=True)

    verdict = models.CharField(
        max_length=12, choices=[(v.value, v.value) for v in Verdict], blank=True
    )
    verdict_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=12, choices=Action.choices, blank=True)
    action_state = models.CharField(max_length=10, choices=ActionState.choices, blank=True)
    action_started_at = models.DateTimeField(null=True, blank=True)
    action_finished_at = models.DateTimeField(null=True, blank=True)
    action_result = models.CharField(max_length=200, blank=True)
    action_output = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # Re-driving a task to done cannot open a second window for the same deploy.
            models.UniqueConstraint(fields=["task", "cycle"], name="one_window_per_cycle"),
            models.CheckConstraint(
                condition=~Q(state="aborted", verdict="HEALTHY"), name="aborted_never_healthy"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repo}: {self.task} ({self.verdict or self.state})"

    @property
    def counts(self) -> Counts:
        return Counts(
            self.consecutive_failures,
            self.probes_measured,
            self.server_errors,
            self.probes_unmeasured,
            self.source_ratio,
        )


class Probe(models.Model):
    class Kind(models.TextChoices):
        HEALTH = "health"
        ERROR_RATE = "error_rate"

    window = models.ForeignKey(MonitorWindow, on_delete=models.CASCADE, related_name="probes")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.HEALTH)
    at = models.DateTimeField()
    result = models.CharField(max_length=12)  # classifier.ProbeResult
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True, help_text="The error-rate source's ratio")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.result} {self.status_code or ''}".strip()
