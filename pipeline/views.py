"""The pipeline's REST API: a thin layer over `pipeline.engine`."""

import uuid
from functools import partial

from django.db.models import OuterRef, Q, Subquery
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from pipeline import engine, projects, rollbacks
from pipeline.dora_report import dora_report
from pipeline.models import Deployment, Task
from pipeline.serializers import (
    AdvanceSerializer,
    BoardStatusSerializer,
    DeployActionSerializer,
    DeploymentQuerySerializer,
    DeploymentSerializer,
    DoraQuerySerializer,
    TaskCreateSerializer,
    TaskDetailSerializer,
    TaskQuerySerializer,
    TaskSerializer,
)

DEPLOY_ACTIONS = {
    "request-approval": engine.request_deploy_approval,
    "approve": engine.approve_deploy,
    "start": engine.start_deploy,
    "succeed": partial(engine.finish_deploy, succeeded=True),
    "fail": partial(engine.finish_deploy, succeeded=False),
    # A rollback whose hook failed runs again (the monitor's restart-safe path).
    "retry-rollback": rollbacks.retry_rollback,
}
# Deploy actions that need `approve_deploy`: an operator's decisions, not a pipeline's.
OPERATOR_ACTIONS = ("approve", "retry-rollback")


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The task is not in a stage or phase that allows this."
    default_code = "conflict"


class TaskPermission(BasePermission):
    """Reading needs pipeline.view_task, creating add_task, driving a task change_task;
    approving a deploy needs approve_deploy, so a pipeline's own token cannot approve
    the deploy it asked for."""

    message = "Your account may not do this: ask an operator for the pipeline permissions."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            needed = "view_task"
        elif view.action == "create":
            needed = "add_task"
        elif view.kwargs.get("deploy_action") in OPERATOR_ACTIONS:
            needed = "approve_deploy"
        else:
            needed = "change_task"
        if request.user.has_perm(f"pipeline.{needed}"):
            return True
        # DRF makes a permission per request: the message may name what this one lacks.
        self.message = (
            f"Your account lacks the permission pipeline.{needed}: ask an operator for it"
            + (
                " (a pipeline's own token never approves: an operator does)."
                if needed == "approve_deploy"
                else " (the `pipelines` group has it: `manage.py pipeline_token NAME`)."
            )
        )
        return False


def api_caller(request) -> str:
    return f"api:{request.user.get_username()}"


# Any text reaches the views (see TaskViewSet), but only a UUID can name a task.
WORK_ITEM_ID = OpenApiParameter("work_item_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(
    **{
        action: extend_schema(parameters=[WORK_ITEM_ID])
        for action in ("retrieve", "advance", "deploy", "deployments", "board")
    }
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    permission_classes = [TaskPermission]
    lookup_field = "work_item_id"
    # Any text reaches get_object, so a malformed id is a JSON 404, not an HTML one.
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        tasks = Task.objects.all()
        if self.action != "list":
            return tasks.prefetch_related("history")
        query = TaskQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        for name in ("stage", "repo"):
            if query.validated_data.get(name):
                tasks = tasks.filter(**{name: query.validated_data[name]})
        if query.validated_data.get("identifier"):
            # Stored upper case, as Plane shows it; people type `demo-3` too.
            tasks = tasks.filter(identifier=query.validated_data["identifier"].strip().upper())
        # Each task's last production deploy, in the page's one query.
        last = Deployment.objects.filter(task=OuterRef("pk"), production=True).order_by("-id")
        return tasks.annotate(
            **{
                f"last_deploy_{name}": Subquery(last.values(name)[:1])
                for name in ("id", "outcome", "verdict", "finished_at")
            }
        )

    def get_serializer_class(self):
        return TaskSerializer if self.action == "list" else TaskDetailSerializer

    def get_object(self) -> Task:
        raw = self.kwargs[self.lookup_field]
        try:
            work_item_id = uuid.UUID(raw)
        except ValueError:
            raise NotFound(f"No task for work item {raw!r}: not a UUID.") from None
        try:
            task = self.get_queryset().get(work_item_id=work_item_id)
        except Task.DoesNotExist:
            raise NotFound(f"No task for work item {work_item_id}.") from None
        self.check_object_permissions(self.request, task)
        return task

    @extend_schema(parameters=[TaskQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=TaskCreateSerializer,
        responses={201: TaskDetailSerializer, 200: TaskDetailSerializer},
        description="Create the task of a work item in `analysis`; answers 200 with the "
        "existing task when the work item already has one in the same project, 409 when "
        "it has one in another project, 400 when a Plane is configured and the project is "
        "not registered (`manage.py plane_project add`).",
    )
    def create(self, request):
        incoming = TaskCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        refused = projects.refusal(incoming.validated_data["project_id"])
        if refused:
            # Stored, its status would never reach the board: refuse it, store nothing.
            raise ValidationError({"project_id": [refused]})
        task, created = engine.create_task(**incoming.validated_data)
        if task.project_id != incoming.validated_data["project_id"]:
            raise Conflict(
                f"Work item {task.work_item_id} already has a task, in project "
                f"{task.project_id}, not {incoming.validated_data['project_id']}."
            )
        return Response(
            TaskDetailSerializer(task).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=AdvanceSerializer,
        responses={200: TaskDetailSerializer},
        description="Move the task to another stage. 409 with the reason when the stage "
        "machine or a quality gate refuses; re-driving a done move is a no-op.",
    )
    @action(detail=True, methods=["post"])
    def advance(self, request, work_item_id=None):
        incoming = AdvanceSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        return self._drive(
            engine.advance_stage,
            incoming.validated_data["stage"],
            reason=incoming.validated_data["reason"],
        )

    @extend_schema(
        request=DeployActionSerializer,
        responses={200: TaskDetailSerializer},
        parameters=[
            OpenApiParameter("deploy_action", str, OpenApiParameter.PATH, enum=[*DEPLOY_ACTIONS])
        ],
        description="Drive the deploy phase: request-approval, approve, start, succeed "
        "(also moves the task to done), fail (back to development) or retry-rollback (run "
        "the rollback hook again after it failed; needs the approve_deploy permission; 409 "
        "when the task has no failed rollback). `start` records the "
        "deployment with what is deployed: commit_sha (7-40 hex digits), ref, ci_url "
        "(http or https), environment (default production), committed_at; all optional.",
    )
    @action(detail=True, methods=["post"], url_path=r"deploy/(?P<deploy_action>[^/.]+)")
    def deploy(self, request, work_item_id=None, deploy_action=None):
        if deploy_action not in DEPLOY_ACTIONS:
            raise NotFound(
                f"Unknown deploy action {deploy_action!r}; known: {', '.join(DEPLOY_ACTIONS)}."
            )
        incoming = DeployActionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        change = DEPLOY_ACTIONS[deploy_action]
        if deploy_action == "start":
            change = partial(change, details=incoming.details())
        return self._drive(change, reason=incoming.validated_data["reason"])

    @extend_schema(responses={200: DeploymentSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deployments(self, request, work_item_id=None):
        """The task's deploy attempts, newest first."""
        task = self.get_object()
        rows = Deployment.objects.filter(task=task).select_related("task").order_by("-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeploymentSerializer(page, many=True).data)

    @extend_schema(
        responses={200: BoardStatusSerializer},
        description="What the task's work item should show and was last seen showing; "
        "`pending` is true while a change or a reconciler's repair waits to be sent.",
    )
    @action(detail=True, methods=["get"])
    def board(self, request, work_item_id=None):
        # Read through the relation's name: this layer imports nothing of the board's.
        board = getattr(self.get_object(), "board", None)
        if board is None:
            raise NotFound("The board has no status for this task yet.")
        return Response(BoardStatusSerializer(board).data)

    def _drive(self, change, *args, reason: str) -> Response:
        task = self.get_object()
        try:
            change(task, *args, caller=api_caller(self.request), reason=reason)
        except engine.TransitionRefused as refused:
            raise Conflict(refused.reason) from None
        task = self.get_queryset().get(pk=task.pk)
        return Response(TaskDetailSerializer(task).data)


class ViewPermission(BasePermission):
    """Reading the delivery record needs what reading tasks needs."""

    message = TaskPermission.message

    def has_permission(self, request, view):
        return bool(
            request.user
            and request.user.is_authenticated
            and request.user.has_perm("pipeline.view_task")
        )


class DeploymentViewSet(mixins.ListModelMixin, GenericViewSet):
    """Every deploy attempt, newest first; `repo` and `since` (a date or date-time) filter."""

    permission_classes = [ViewPermission]
    serializer_class = DeploymentSerializer

    def get_queryset(self):
        query = DeploymentQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        rows = Deployment.objects.select_related("task").order_by("-id")
        if query.validated_data.get("repo"):
            rows = rows.filter(repo=query.validated_data["repo"])
        since = query.validated_data.get("since")
        if since is not None:
            rows = rows.filter(Q(started_at__gte=since) | Q(finished_at__gte=since))
        return rows

    @extend_schema(parameters=[DeploymentQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class DoraView(APIView):
    """DORA's five keys for the last `days` days, overall or for `repo`, with the counts
    they rest on and the same figures week by week (`pipeline.dora` says how)."""

    permission_classes = [ViewPermission]

    @extend_schema(
        parameters=[DoraQuerySerializer],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        query = DoraQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(
            dora_report(days=query.validated_data["days"], repo=query.validated_data.get("repo"))
        )
