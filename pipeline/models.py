from django.db import models
from django.db.models import Q

from pipeline.stages import DeployPhase, Stage

STAGE_CHOICES = [(s.value, s.value) for s in Stage]
PHASE_CHOICES = [(p.value, p.value or "(not requested)") for p in DeployPhase]


class Task(models.Model):
    """One Plane work item moving through the pipeline: the truth (layer A).

    `stage` and `deploy_phase` change only through `pipeline.engine`.
    """

    work_item_id = models.UUIDField(unique=True, help_text="Plane's work item UUID")
    project_id = models.UUIDField(db_index=True, help_text="Plane's project UUID")
    repo = models.CharField(max_length=200, blank=True, db_index=True)
    title = models.CharField(max_length=500, blank=True)
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

    class Meta:
        ordering = ["-updated_at", "-id"]
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
        return f"{self.title or self.work_item_id} ({self.stage})"


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
