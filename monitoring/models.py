import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from monitoring import checks
from monitoring.analysis import Condition, Limit
from monitoring.classifier import Counts, ProbeResult, Verdict
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


class Check(models.Model):
    """A named metric a repo's deploys are judged by, with one condition and a failure limit.

    `clean()` is the one validation, for the admin's inline and `repo check add` alike; it
    asks Prometheus whether it can parse a PromQL query.
    """

    class Provider(models.TextChoices):
        PROMETHEUS = "prometheus"
        HTTP = "http"

    repo = models.ForeignKey(MonitoredRepo, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(
        max_length=100,
        validators=[RegexValidator(r"^[A-Za-z0-9_.:-]+$", "Letters, digits and _ . : - only.")],
    )
    provider = models.CharField(max_length=12, choices=Provider.choices)
    query = models.TextField(
        blank=True, help_text="PromQL; {repo}, {environment} and {commit_sha} are filled in"
    )
    url = models.URLField(blank=True, max_length=1000, help_text="Answers JSON (http checks)")
    json_path = models.CharField(
        blank=True, max_length=500, help_text="RFC 9535 JSONPath to one number, e.g. $.depth"
    )
    condition = models.CharField(
        max_length=16, choices=[(c.value, c.value.replace("_", " ")) for c in Condition]
    )
    threshold = models.FloatField(help_text="The limit, or for a baseline condition the ratio")
    failure_limit = models.PositiveIntegerField(
        default=1, help_text="The deploy fails when more measurements than this failed"
    )
    baseline_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="The baseline is the query's average over this long before the deploy",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repo", "name"]
        constraints = [
            models.UniqueConstraint(fields=["repo", "name"], name="one_check_per_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def limit(self) -> Limit:
        return Limit(Condition(self.condition), self.threshold)

    @property
    def source(self) -> str:
        if self.provider == self.Provider.PROMETHEUS:
            return f"--prometheus {self.query}"
        return f"--http {self.url} --json-path {self.json_path}"

    def clean(self) -> None:
        errors = {}
        if self.provider == self.Provider.PROMETHEUS:
            if not self.query.strip():
                errors["query"] = "A Prometheus check needs a PromQL query."
            else:
                try:
                    checks.validate_promql(self.query, settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT)
                except checks.CheckRefused as refused:
                    errors["query"] = str(refused)
        elif self.provider == self.Provider.HTTP:
            if not self.url:
                errors["url"] = "An HTTP check needs a URL that answers JSON."
            if not self.json_path:
                errors["json_path"] = "An HTTP check needs a JSONPath to one number."
            else:
                try:
                    checks.compile_json_path(self.json_path)
                except checks.CheckRefused as refused:
                    errors["json_path"] = str(refused)
            if self.condition in (Condition.MAX_VS_BASELINE, Condition.MIN_VS_BASELINE):
                # An endpoint answers only its value of now: there is no before to average.
                errors["condition"] = (
                    "An HTTP endpoint has no history to take a baseline from: use max or "
                    "min, or a Prometheus query."
                )
        if self.threshold is not None and not math.isfinite(self.threshold):
            errors["threshold"] = "Give a number (not NaN or infinity)."
        elif self.condition in (Condition.MAX_VS_BASELINE, Condition.MIN_VS_BASELINE) and (
            self.threshold is not None and self.threshold <= 0
        ):
            errors["threshold"] = "A ratio to the baseline must be above 0 (2 means twice)."
        if errors:
            raise ValidationError(errors)


class CheckBaseline(models.Model):
    """A baseline check's value before the deploy: asked once per window, kept with it."""

    window = models.ForeignKey(MonitorWindow, on_delete=models.CASCADE, related_name="baselines")
    check_name = models.CharField(max_length=100)
    value = models.FloatField()
    evaluated_at = models.DateTimeField(help_text="The deploy's start")
    minutes = models.PositiveIntegerField()

    class Meta:
        ordering = ["check_name"]
        constraints = [
            models.UniqueConstraint(fields=["window", "check_name"], name="one_baseline_per_check"),
        ]

    def __str__(self) -> str:
        return f"{self.check_name}: {self.value}"


class CheckMeasurement(models.Model):
    """One reading of one check in one window, judged against its limit then."""

    window = models.ForeignKey(
        MonitorWindow, on_delete=models.CASCADE, related_name="check_measurements"
    )
    check_name = models.CharField(max_length=100)
    at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    bound = models.FloatField(null=True, blank=True, help_text="The limit the value was held to")
    condition = models.CharField(max_length=120, help_text="As the check was then")
    result = models.CharField(max_length=12, choices=[(r.value, r.value) for r in ProbeResult])
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["window", "check_name"], name="measurement_window_check")]

    def __str__(self) -> str:
        return f"{self.check_name} {self.result} {self.value}"
