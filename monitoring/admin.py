from django.contrib import admin, messages
from django.db import models
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from monitoring import outcomes
from monitoring.classifier import Verdict
from monitoring.config import current
from monitoring.models import MonitoredRepo, MonitorWindow, Probe
from monitoring.ticks import close
from monitoring.windows import announce
from pipeline.admin import RecordInline, TaskAdmin


@admin.register(MonitoredRepo)
class MonitoredRepoAdmin(admin.ModelAdmin):
    list_display = ("name", "health_url", "error_rate_url", "alert_only", "watched", "updated_at")
    list_filter = ("alert_only",)
    search_fields = ("name",)
    HOOK_FIELDS = ("rollback_command", "rollback_url", "rollback_timeout")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_readonly_fields(self, request, obj=None):
        # The hook runs as the q cluster on DEGRADED: only a superuser may say what it runs.
        return () if request.user.is_superuser else self.HOOK_FIELDS

    @admin.display(boolean=True, description="Watched now")
    def watched(self, repo):
        return current().monitors(repo.name)


class ProbeInline(RecordInline):
    model = Probe
    fields = ("at", "kind", "result", "status_code", "latency_ms", "value", "error")
    ordering = ("-at", "-id")


@admin.register(MonitorWindow)
class MonitorWindowAdmin(admin.ModelAdmin):
    list_display = (
        "task",
        "repo",
        "state",
        "verdict",
        "action",
        "action_state",
        "probes",
        "consecutive_failures",
        "server_errors",
        "time_left",
    )
    list_filter = ("state", "verdict", "action", "repo")
    search_fields = ("=task__work_item_id", "repo", "task__title")
    list_select_related = ("task",)
    readonly_fields = [f.name for f in MonitorWindow._meta.fields]
    inlines = [ProbeInline]
    actions = ["abort", "accept"]

    def get_queryset(self, request):
        # Active windows first: they are the ones an operator may need to act on.
        active_first = Case(
            When(state=MonitorWindow.State.ACTIVE, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        return super().get_queryset(request).order_by(active_first, "-opened_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the monitor writes windows; the actions below are the operator's say

    def has_decide_permission(self, request):
        return request.user.has_perm("monitoring.change_monitorwindow")

    @admin.display(description="Probes (measured / made)")
    def probes(self, window):
        return f"{window.probes_measured} / {window.probes_total}"

    @admin.display(description="Time left")
    def time_left(self, window):
        if window.state != MonitorWindow.State.ACTIVE:
            return "-"
        left = max(0, int((window.closes_at - timezone.now()).total_seconds()))
        return f"{left // 60}:{left % 60:02d}"

    @admin.action(description="Abort the selected windows (no verdict)", permissions=["decide"])
    def abort(self, request, queryset):
        who, done = f"admin:{request.user.get_username()}", 0
        for window in queryset.select_related("task"):
            aborted = MonitorWindow.objects.filter(
                pk=window.pk, state=MonitorWindow.State.ACTIVE
            ).update(
                state=MonitorWindow.State.ABORTED,
                closed_at=timezone.now(),
                closed_by=who,
                verdict_reason=f"aborted by {who}",
                next_tick_at=None,
                action=MonitorWindow.Action.NONE,
            )
            if aborted:
                outcomes.aborted(window.task, window.cycle, f"aborted by {who}")
                announce(window.task)
                done += 1
        self.message_user(request, f"Aborted {done} window(s).", messages.SUCCESS)

    @admin.action(description="Accept the selected deploys as healthy", permissions=["decide"])
    def accept(self, request, queryset):
        who, done = f"admin:{request.user.get_username()}", 0
        for window in queryset.select_related("task").filter(state=MonitorWindow.State.ACTIVE):
            done += close(window, Verdict.HEALTHY, f"accepted by {who}", current(), None, by=who)
        self.message_user(request, f"Accepted {done} window(s).", messages.SUCCESS)


class WindowInline(RecordInline):
    model = MonitorWindow
    fields = (
        "cycle",
        "repo",
        "state",
        "verdict",
        "action",
        "action_state",
        "opened_at",
        "closes_at",
    )
    show_change_link = True


# The task page shows its post-deploy windows; the pipeline app knows nothing of them.
TaskAdmin.inlines = [*TaskAdmin.inlines, WindowInline]
