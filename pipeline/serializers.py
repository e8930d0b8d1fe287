from django.core.validators import RegexValidator, URLValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pipeline.models import Deployment, StageChange, Task
from pipeline.stages import Stage


class StageChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StageChange
        fields = [
            "cycle",
            "from_stage",
            "to_stage",
            "from_phase",
            "to_phase",
            "caller",
            "reason",
            "created_at",
        ]


class LastDeploySerializer(serializers.Serializer):
    """How the task's latest production deploy ended (outcome null while it runs)."""

    outcome = serializers.CharField(allow_null=True)
    verdict = serializers.CharField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TaskSerializer(serializers.ModelSerializer):
    deploy_phase = serializers.SerializerMethodField()
    identifier = serializers.SerializerMethodField()
    last_deploy = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "work_item_id",
            "identifier",
            "project_id",
            "repo",
            "title",
            "stage",
            "deploy_phase",
            "deploy_approved_by",
            "deploy_approved_at",
            "cycle",
            "last_deploy",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(LastDeploySerializer(allow_null=True))
    def get_last_deploy(self, task: Task) -> dict | None:
        """The latest production deploy's result: a done task whose deploy was rolled back
        says so here (its deploy phase is cleared when it leaves deploy)."""
        if hasattr(task, "last_deploy_id"):  # annotated by the list's query
            if task.last_deploy_id is None:
                return None
            row = {
                "outcome": task.last_deploy_outcome,
                "verdict": task.last_deploy_verdict,
                "finished_at": task.last_deploy_finished_at,
            }
        else:
            deployment = (
                Deployment.objects.filter(task=task, production=True).order_by("-id").first()
            )
            if deployment is None:
                return None
            row = {
                "outcome": deployment.outcome,
                "verdict": deployment.verdict,
                "finished_at": deployment.finished_at,
            }
        row["outcome"] = row["outcome"] or None
        row["verdict"] = row["verdict"] or None
        return LastDeploySerializer(row).data

    def get_deploy_phase(self, task: Task) -> str | None:
        return task.deploy_phase or None

    def get_identifier(self, task: Task) -> str | None:
        """Plane's readable id (`DEMO-42`); null until Stageboard learned it."""
        return task.identifier or None


class BoardStatusSerializer(serializers.Serializer):
    desired = serializers.CharField(source="desired_key")
    shown = serializers.CharField(source="shown_key", allow_blank=True)
    pending = serializers.BooleanField()
    last_outcome = serializers.CharField(allow_blank=True)
    last_error = serializers.CharField(allow_blank=True)
    synced_at = serializers.DateTimeField(allow_null=True)
    # When Plane answered 404 for the work item (deleted or archived); null while it exists.
    gone_at = serializers.DateTimeField(allow_null=True)


class WindowSerializer(serializers.Serializer):
    state = serializers.CharField()
    verdict = serializers.CharField(allow_blank=True)
    verdict_reason = serializers.CharField(allow_blank=True)
    action = serializers.CharField(allow_blank=True)
    action_state = serializers.CharField(allow_blank=True)
    opened_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()


class PullRequestSerializer(serializers.Serializer):
    provider = serializers.CharField()
    repo = serializers.CharField(source="repo_path")
    number = serializers.IntegerField()
    url = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=["open", "draft", "merged", "closed"])
    merge_commit_sha = serializers.CharField(allow_blank=True)


class TaskDetailSerializer(TaskSerializer):
    board_status = serializers.SerializerMethodField()
    window = serializers.SerializerMethodField()
    pull_requests = serializers.SerializerMethodField()
    history = StageChangeSerializer(many=True, read_only=True)

    class Meta(TaskSerializer.Meta):
        fields = [
            *TaskSerializer.Meta.fields,
            "board_status",
            "window",
            "pull_requests",
            "history",
        ]
        read_only_fields = fields

    @extend_schema_field(PullRequestSerializer(many=True))
    def get_pull_requests(self, task: Task) -> list[dict]:
        # The Git hosts' pull requests, read through their relation name (git_hosts).
        prs = getattr(task, "pull_requests", None)
        if prs is None:
            return []
        rows = prs.select_related("git_repo").order_by("git_repo__path", "number")
        return PullRequestSerializer(rows, many=True).data

    @extend_schema_field(WindowSerializer(allow_null=True))
    def get_window(self, task: Task) -> dict | None:
        # The current deploy's post-deploy window, read through the monitor's relation name.
        windows = getattr(task, "windows", None)
        window = windows.filter(cycle=task.cycle).first() if windows is not None else None
        return WindowSerializer(window).data if window else None

    @extend_schema_field(BoardStatusSerializer(allow_null=True))
    def get_board_status(self, task: Task) -> dict | None:
        # The board's row, read through its relation name: this layer imports none of it.
        # None until the task's first change, or when the board app is not installed.
        board = getattr(task, "board", None)
        return BoardStatusSerializer(board).data if board else None


class TextField(serializers.CharField):
    """JSON text only: DRF's CharField turns numbers into text (`0` -> "0")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class UUIDTextField(serializers.UUIDField):
    """A UUID given as JSON text: DRF's UUIDField reads integers (and so `false`) as the
    UUID of that number, which made `false` the nil UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class TaskCreateSerializer(serializers.Serializer):
    work_item_id = UUIDTextField()
    project_id = UUIDTextField()
    title = TextField(max_length=500, allow_blank=True, required=False, default="")
    repo = TextField(max_length=200, allow_blank=True, required=False, default="")


class AdvanceSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=[s.value for s in Stage])
    reason = TextField(allow_blank=True, required=False, default="")


class ReasonSerializer(serializers.Serializer):
    reason = TextField(allow_blank=True, required=False, default="")


class DeploymentSerializer(serializers.ModelSerializer):
    work_item_id = serializers.UUIDField(source="task.work_item_id", read_only=True)
    outcome = serializers.SerializerMethodField()
    short_sha = serializers.CharField(read_only=True)
    # Empty when the deploy gave none: the model's URLField made the schema say "a URI".
    ci_url = serializers.CharField(read_only=True, help_text="The CI run's http(s) URL, or empty.")

    class Meta:
        model = Deployment
        fields = [
            "id",
            "work_item_id",
            "cycle",
            "repo",
            "environment",
            "commit_sha",
            "short_sha",
            "ref",
            "ci_url",
            "committed_at",
            "approved_by",
            "approved_at",
            "started_by",
            "started_at",
            "finished_at",
            "outcome",
            "window_id",
            "verdict",
            "evidence",
            "action_taken",
            "settled_at",
        ]
        read_only_fields = fields

    def get_outcome(self, deployment: Deployment) -> str | None:
        return deployment.outcome or None  # None: still running


SHA = RegexValidator(r"^[0-9a-fA-F]{7,40}$", "A commit SHA is 7 to 40 hex digits.")
ENVIRONMENT = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$", "An environment is letters, digits and . _ - only."
)


@extend_schema_field(OpenApiTypes.URI)
class HttpURLField(TextField):
    """An http(s) URL, refused with one message: DRF's URLField adds its own "Enter a valid
    URL." to any other validator's, so a bad URL got two."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(
            URLValidator(schemes=["http", "https"], message="Give an http(s) URL.")
        )


class DeployActionSerializer(ReasonSerializer):
    """`start` also takes what is being deployed; the other actions only a reason."""

    commit_sha = TextField(required=False, allow_blank=True, validators=[SHA])
    ref = TextField(required=False, allow_blank=True, max_length=255)
    ci_url = HttpURLField(required=False, allow_blank=True, max_length=500)
    environment = TextField(
        required=False, allow_blank=True, max_length=50, validators=[ENVIRONMENT]
    )
    committed_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_commit_sha(self, value: str) -> str:
        return value.lower()

    def details(self) -> dict:
        return {k: v for k, v in self.validated_data.items() if k != "reason" and v}


class DoraQuerySerializer(serializers.Serializer):
    repo = serializers.CharField(required=False, allow_blank=True, max_length=200)
    days = serializers.IntegerField(required=False, default=30, min_value=1, max_value=366)


class TaskQuerySerializer(serializers.Serializer):
    """The task list's filters; empty means no filter."""

    stage = serializers.ChoiceField(
        choices=[s.value for s in Stage],
        required=False,
        allow_blank=True,
        error_messages={"invalid_choice": f"Unknown stage '{{input}}'; known: {', '.join(Stage)}."},
    )
    # Validated, not passed through: PostgreSQL refuses a NUL in a query's text (a 500).
    repo = serializers.CharField(required=False, allow_blank=True, max_length=200)
    identifier = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=50,
        help_text="Plane's readable id, e.g. DEMO-3 (any case)",
    )


class DeploymentQuerySerializer(serializers.Serializer):
    repo = serializers.CharField(required=False, allow_blank=True, max_length=200)
    since = serializers.DateTimeField(required=False, input_formats=["iso-8601", "%Y-%m-%d"])
