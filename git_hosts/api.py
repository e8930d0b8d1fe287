"""GET /api/git-events/: what each Git host delivery did, newest first."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from git_hosts.models import GitEvent
from pipeline.views import ViewPermission


class GitEventSerializer(serializers.ModelSerializer):
    tasks = serializers.SerializerMethodField()

    class Meta:
        model = GitEvent
        fields = [
            "id",
            "provider",
            "event",
            "action",
            "delivery_id",
            "repo_path",
            "received_at",
            "processed_at",
            "outcome",
            "detail",
            "tasks",
        ]
        read_only_fields = fields

    def get_tasks(self, event: GitEvent) -> list[str]:
        """The work item ids of the tasks the event touched."""
        return [str(task.work_item_id) for task in event.tasks.all()]


class GitEventQuerySerializer(serializers.Serializer):
    task = serializers.UUIDField(required=False, help_text="A task's work item id")


class GitEventList(generics.ListAPIView):
    """Every Git host event, newest first; `task` filters by a task's work item id."""

    permission_classes = [ViewPermission]
    serializer_class = GitEventSerializer

    def get_queryset(self):
        query = GitEventQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        rows = GitEvent.objects.prefetch_related("tasks").order_by("-received_at", "-id")
        task = query.validated_data.get("task")
        if task is not None:
            rows = rows.filter(tasks__work_item_id=task)
        return rows

    @extend_schema(parameters=[GitEventQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
