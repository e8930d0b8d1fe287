from django.core.exceptions import ValidationError
from django.db import models

from pipeline.models import Task
from plane_integration import statuses, webhook_payloads


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
    identifier = models.CharField(
        max_length=20,
        blank=True,
        help_text="The project's identifier in Plane (DEMO in DEMO-42), read from Plane once",
    )
    status_names = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_status_names],
        help_text='Custom state names by status key, e.g. {"monitoring": "Watching prod"}',
    )
    states_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When a delivery naming an unknown state last claimed a read of the states: such reads
    # are limited to one per PLANE_STATES_REFRESH_SECONDS (a negative cache).
    states_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    refused = models.TextField(
        blank=True,
        editable=False,
        help_text="Why Plane refused the project's work items at the last sweep (empty: not)",
    )
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
    shown_updated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Plane's updated_at of the state last seen: an older report changes nothing",
    )
    last_outcome = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row")
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    listed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a reconciler sweep last saw the item in Plane's list"
    )
    gone_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Plane answered 404 for the item (deleted or archived): nothing is sent",
    )
    drift_left_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A person kept moving the item away from the truth: Stageboard stopped "
        "putting it back and left it to the operator (cleared when the truth changes)",
    )

    class Meta:
        verbose_name_plural = "board statuses"
        ordering = ["-desired_at"]

    def __str__(self) -> str:
        return f"{self.task}: {self.desired_key}"

    @property
    def pending(self) -> bool:
        """Something waits to be sent: a new desired key, or a repair of drift."""
        if self.gone_at is not None:
            return False
        return self.next_attempt_at is not None or self.desired_version > self.synced_version


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
    # Unique by a constraint, not `unique=True`: on PostgreSQL that would add a second,
    # LIKE-pattern index, which nothing searches and every INSERT would write.
    dedupe_key = models.CharField(max_length=webhook_payloads.DEDUPE_KEY_MAX_CHARS)
    delivery_id = models.CharField(max_length=100, blank=True, help_text="X-Plane-Delivery")
    event = models.CharField(max_length=webhook_payloads.EVENT_MAX_CHARS)
    action = models.CharField(max_length=webhook_payloads.EVENT_MAX_CHARS, blank=True)
    work_item_id = models.UUIDField(null=True, blank=True, db_index=True)
    # Bytes, not text: the body is kept exactly as signed, whatever it holds (PostgreSQL's
    # text columns refuse NUL).
    body = models.BinaryField(help_text="The raw body, exactly as signed")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The table is the queue (plane_integration.drain): a drain claims a batch until this
    # time, so two drains never work on the same delivery; a crashed one's claim runs out.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    # A failure a later attempt can cure is worked off again from this time on.
    retry_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        # Every index is written by each INSERT on the request path, so there are only the
        # ones a query uses: the dedupe key, the admin's work item search and date order,
        # and the queue's due rows (the drain's claim and the dashboard's counts), a
        # partial index that stays as small as the backlog.
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="webhookdelivery_dedupe_key")
        ]
        indexes = [
            models.Index(
                fields=["id"],
                name="webhookdelivery_due",
                condition=models.Q(state__in=["pending", "failed"]),
            )
        ]

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


class ProjectSweep(models.Model):
    """Where the reconciler stands in one project: its lease, cursors and last complete sweep.

    A sweep that runs out of budget keeps its cursor here and the next run resumes it.
    """

    project = models.OneToOneField(PlaneProject, on_delete=models.CASCADE, related_name="sweep")
    # The lease: only the run holding an unexpired claim sweeps this project.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    incremental_cursor = models.CharField(max_length=100, blank=True)
    incremental_started_at = models.DateTimeField(null=True, blank=True)
    full_cursor = models.CharField(max_length=100, blank=True)
    full_started_at = models.DateTimeField(
        null=True, blank=True, help_text="Set while a full sweep is under way"
    )
    full_listed = models.BooleanField(
        default=False, help_text="The full sweep has read every page; it confirms what is gone"
    )
    last_complete_started_at = models.DateTimeField(
        null=True, blank=True, help_text="Where an incremental sweep may stop reading"
    )
    last_full_finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sweep of {self.project}"


class ReconcileRun(models.Model):
    """One reconciler run (`manage.py reconcile` or a schedule) over the configured projects."""

    class Kind(models.TextChoices):
        FULL = "full"
        INCREMENTAL = "incremental"

    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    trigger = models.CharField(max_length=50, help_text="command or schedule")
    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    complete = models.BooleanField(
        default=False, help_text="Every sweep it began or resumed reached its end"
    )
    projects = models.PositiveIntegerField(default=0, help_text="Projects swept")
    items_seen = models.PositiveIntegerField(default=0)
    plane_calls = models.PositiveIntegerField(default=0)
    repair_count = models.PositiveIntegerField(default=0, db_index=True)
    note = models.TextField(blank=True, help_text="Why it stopped early, when it did")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} sweep at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def why_incomplete(self) -> str:
        """Why the run stopped short, in a few words ("" when complete): the rate budget
        spent, Plane refusing, or Plane down (or another reason, from the note)."""
        if self.complete:
            return ""
        note = self.note.lower()
        if "budget" in note:
            return "budget spent"
        if "refused" in note or "answered 401" in note or "answered 403" in note:
            return "Plane refused"
        if "another run" in note or "ran out of time" in note:
            return self.note
        return "Plane down" if note else "unknown"

    def as_record(self) -> dict:
        """The run as `manage.py reconcile --json` prints it (a contract: keep the keys)."""
        return {
            "id": self.pk,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "complete": self.complete,
            "projects": self.projects,
            "items_seen": self.items_seen,
            "plane_calls": self.plane_calls,
            "repairs": [repair.as_record() for repair in self.repairs.all()],
        }


class ReconcileRepair(models.Model):
    """One repair a sweep made: what the work item showed and what Stageboard did about it."""

    class Kind(models.TextChoices):
        STARTED = "started"
        REOPENED = "reopened"
        CANCELLED = "cancelled"
        REASSERTED = "reasserted"
        GONE = "gone"

    # None: made outside a sweep (the board sync confirmed a deletion, a webhook showed drift).
    run = models.ForeignKey(
        ReconcileRun, null=True, blank=True, on_delete=models.CASCADE, related_name="repairs"
    )
    at = models.DateTimeField(auto_now_add=True)
    work_item_id = models.UUIDField(db_index=True)
    project_id = models.UUIDField()
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    shown = models.CharField(max_length=255, blank=True, help_text="What the board showed")
    to = models.CharField(max_length=50, blank=True, help_text="What it is to show, or did")
    reason = models.TextField()
    stuck = models.BooleanField(
        default=False,
        help_text="The same repair of the same item came back on every sweep: reported once",
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.work_item_id}"

    def as_record(self) -> dict:
        return {
            "work_item_id": str(self.work_item_id),
            "project_id": str(self.project_id),
            "kind": self.kind,
            "from": self.shown,
            "to": self.to,
            "reason": self.reason,
        }


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
