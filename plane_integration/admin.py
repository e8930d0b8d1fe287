from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from pipeline.admin import RecordAdmin, RecordInline, TaskAdmin, body_html
from pipeline.models import Task, task_name_filter
from plane_integration.board import request_sync
from plane_integration.client import PlaneClient
from plane_integration.ingest import reprocess
from plane_integration.links import work_item_url
from plane_integration.models import (
    BoardStatus,
    GuardVerdict,
    PlaneProject,
    PlaneState,
    ReconcileRepair,
    ReconcileRun,
    WebhookDelivery,
)
from plane_integration.states import refresh_states, resolution_table


class PlaneStateInline(RecordInline):
    model = PlaneState
    fields = ("name", "group", "state_id", "is_default", "sequence")


@admin.register(PlaneProject)
class PlaneProjectAdmin(admin.ModelAdmin):
    list_display = ("project_id", "workspace_slug", "repo", "states_refreshed_at")
    search_fields = ("=project_id", "repo", "workspace_slug")
    readonly_fields = ("resolved_statuses", "states_refreshed_at", "created_at", "updated_at")
    inlines = [PlaneStateInline]
    actions = ["read_states"]

    @admin.display(description="What each status key shows")
    def resolved_statuses(self, project):
        if project.states_refreshed_at is None:
            return "States not read yet: use the action “Read the states from Plane”."
        return format_html_join(
            "\n",
            "<div><code>{}</code> → {} <small>{}</small></div>",
            (
                (
                    r.key,
                    r.state.name if r.state else "NOTHING",
                    ("fell back: " if r.fell_back else "") + r.via,
                )
                for r in resolution_table(project)
            ),
        )

    @admin.action(description="Read the states from Plane", permissions=["change"])
    def read_states(self, request, queryset):
        client = PlaneClient.from_settings()
        if client is None:
            self.message_user(request, "Plane is not configured.", messages.ERROR)
            return
        for project in queryset:
            result = refresh_states(project, client)
            if result.ok:
                self.message_user(
                    request, f"{project}: {len(result.data)} states read.", messages.SUCCESS
                )
            else:
                self.message_user(request, f"{project}: {result.error}", messages.ERROR)


@admin.register(BoardStatus)
class BoardStatusAdmin(admin.ModelAdmin):
    list_display = (
        "task",
        "desired_key",
        "shown_key",
        "last_outcome",
        "attempts",
        "error",
        "next_attempt_at",
        "synced_at",
    )
    list_filter = (
        "desired_key",
        "last_outcome",
        ("next_attempt_at", admin.EmptyFieldListFilter),
        ("gone_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("=task__work_item_id", "=task__identifier", "task__title", "task__repo")
    list_select_related = ("task",)
    readonly_fields = [f.name for f in BoardStatus._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="last error")
    def error(self, row):
        return row.last_error[:120] or "-"

    @admin.action(description="Send the desired status again now", permissions=["change"])
    def send_again(self, request, queryset):
        # Forget what Plane was seen showing, so the sync sends even if it thinks it's shown.
        count = queryset.update(next_attempt_at=timezone.now(), attempts=0, shown_state_id=None)
        request_sync()
        self.message_user(request, f"{count} board status(es) queued to send.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event", "action", "work_item", "state", "reason", "attempts")
    list_filter = ("event", "state", "received_at")
    date_hierarchy = "received_at"
    search_fields = ("=work_item_id", "=delivery_id")
    fields = (
        "received_at",
        "event",
        "action",
        "work_item_id",
        "delivery_id",
        "dedupe_key",
        "state",
        "reason",
        "attempts",
        "processed_at",
        "payload",
    )
    readonly_fields = fields
    actions = ["process_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # deliveries are a record; the action below is the one way to act

    def get_queryset(self, request):
        # The work item as people name it (DEMO-3 and its title), one query a page.
        task = Task.objects.filter(work_item_id=OuterRef("work_item_id"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                task_identifier=Subquery(task.values("identifier")[:1]),
                task_title=Subquery(task.values("title")[:1]),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        """Also by the task's names: `DEMO-3`, `demo-3`, a UUID prefix of 8+ characters."""
        results, duplicates = super().get_search_results(request, queryset, search_term)
        named = task_name_filter(search_term)
        if named is not None:
            ids = Task.objects.filter(named).values("work_item_id")
            results = results | queryset.filter(work_item_id__in=ids)
        return results, duplicates

    @admin.display(description="work item", ordering="work_item_id")
    def work_item(self, delivery):
        names = [
            part
            for part in (
                getattr(delivery, "task_identifier", None),
                getattr(delivery, "task_title", None),
            )
            if part
        ]
        return " · ".join(names) or delivery.work_item_id or "-"

    @admin.display(description="Payload")
    def payload(self, delivery):
        return body_html(bytes(delivery.body))

    def has_reprocess_permission(self, request):
        return request.user.has_perm("plane_integration.change_webhookdelivery")

    @admin.action(description="Process the selected deliveries again", permissions=["reprocess"])
    def process_again(self, request, queryset):
        count = reprocess(queryset)
        self.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)


@admin.register(GuardVerdict)
class GuardVerdictAdmin(RecordAdmin):
    """Read-only log of the deploy status guard, with a count per day and verdict on top,
    so a flapping caller shows at a glance."""

    list_display = (
        "at",
        "verdict",
        "target",
        "work_item_id",
        "repo",
        "caller",
        "db_stage",
        "window_active",
    )
    list_filter = ("verdict", "repo", "caller", "at")
    date_hierarchy = "at"
    search_fields = ("=work_item_id", "=task__identifier", "caller")
    change_list_template = "admin/plane_integration/guardverdict/change_list.html"
    DAYS = 14

    def changelist_view(self, request, extra_context=None):
        since = timezone.now() - timedelta(days=self.DAYS)
        rows = (
            GuardVerdict.objects.filter(at__gte=since)
            .annotate(day=TruncDate("at"))
            .values("day", "verdict")
            .annotate(n=Count("id"))
        )
        days: dict = {}
        for row in rows:
            days.setdefault(row["day"], {})[row["verdict"]] = row["n"]
        verdicts = [v for v, _ in GuardVerdict.VERDICTS]
        per_day = [
            (day, [days[day].get(v, 0) for v in verdicts]) for day in sorted(days, reverse=True)
        ]
        context = {"verdict_names": verdicts, "verdicts_per_day": per_day, "days": self.DAYS}
        return super().changelist_view(request, {**(extra_context or {}), **context})


class BoardStatusInline(RecordInline):
    model = BoardStatus  # the sync writes it; operators read it
    fields = (
        "desired_key",
        "shown_key",
        "last_outcome",
        "last_error",
        "next_attempt_at",
        "synced_at",
    )


# The task page shows its board status; the pipeline app itself knows nothing of the board.
TaskAdmin.inlines = [BoardStatusInline, *TaskAdmin.inlines]


class HasRepairsFilter(admin.SimpleListFilter):
    title = "repairs"
    parameter_name = "has_repairs"

    def lookups(self, request, model_admin):
        return [("yes", "Made repairs"), ("no", "Found nothing to repair")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(repair_count__gt=0)
        if self.value() == "no":
            return queryset.filter(repair_count=0)
        return queryset


class ReconcileRepairInline(RecordInline):
    model = ReconcileRepair
    fields = ("at", "kind", "work_item_id", "task", "shown", "to", "reason")


@admin.register(ReconcileRun)
class ReconcileRunAdmin(RecordAdmin):
    """The reconciler's sweeps: what each read, spent and repaired (read-only)."""

    list_display = (
        "started_at",
        "kind",
        "trigger",
        "complete",
        "projects",
        "items_seen",
        "plane_calls",
        "repair_count",
        "note",
    )
    list_filter = ("kind", "complete", HasRepairsFilter, "trigger", "started_at")
    date_hierarchy = "started_at"
    fields = list_display[:-1] + ("finished_at", "note")
    readonly_fields = fields
    inlines = [ReconcileRepairInline]


# Every task links to its work item in Plane (PLANE_WEB_URL); the pipeline app knows nothing
# of Plane, so the board adds the column. The workspace is annotated, one query a page.
@admin.display(description="Plane")
def plane_link(task):
    workspace = getattr(task, "plane_workspace", None)
    if workspace is None:
        project = PlaneProject.objects.filter(project_id=task.project_id).first()
        workspace = project.workspace_slug if project else None
    url = work_item_url(workspace, task.project_id, task.work_item_id)
    if url is None:
        return "-"
    return format_html('<a href="{}" target="_blank" rel="noopener">open in Plane</a>', url)


TaskAdmin.list_annotations = {
    **TaskAdmin.list_annotations,
    "plane_workspace": Subquery(
        PlaneProject.objects.filter(project_id=OuterRef("project_id")).values("workspace_slug")[:1]
    ),
}
TaskAdmin.list_display = (*TaskAdmin.list_display, plane_link)
TaskAdmin.readonly_fields = (*TaskAdmin.readonly_fields, plane_link)
