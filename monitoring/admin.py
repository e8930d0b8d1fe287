from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, IntegerField, Value, When
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from monitoring import actions, decisions
from monitoring.analysis import number
from monitoring.charts import chart
from monitoring.config import current
from monitoring.models import Check, CheckMeasurement, MonitoredRepo, MonitorWindow, Probe
from pipeline import engine
from pipeline.admin import (
    VERDICT_COLOURS,
    ReasonActionForm,
    RecordInline,
    TaskAdmin,
    admin_caller,
    back_to,
    badge,
    given_reason,
)


class CheckInline(admin.TabularInline):
    """A repo's checks, validated by `Check.clean()` as `repo check add` validates them."""

    model = Check
    extra = 0
    fields = (
        "name",
        "provider",
        "query",
        "url",
        "json_path",
        "condition",
        "threshold",
        "failure_limit",
        "baseline_minutes",
    )
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https"},
        models.TextField: {"widget": admin.widgets.AdminTextareaWidget(attrs={"rows": 2})},
    }


@admin.register(MonitoredRepo)
class MonitoredRepoAdmin(admin.ModelAdmin):
    inlines = [CheckInline]
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


def milliseconds(value: float | None) -> str:
    """A latency for people: `132 ms`, no decimals."""
    return "-" if value is None else f"{value:.0f} ms"


def percent(ratio: float | None) -> str:
    """A ratio for people: `12.5%` (`0%`, `100%` without decimals)."""
    if ratio is None:
        return "-"
    shown = f"{ratio * 100:.1f}".removesuffix(".0")
    return f"{shown}%"


class ProbeInline(RecordInline):
    model = Probe
    fields = ("at", "kind", "result", "status_code", "latency", "error_ratio", "error")
    ordering = ("-at", "-id")

    @admin.display(description="latency")
    def latency(self, probe):
        return milliseconds(probe.latency_ms)

    @admin.display(description="error ratio")
    def error_ratio(self, probe):
        return percent(probe.value)


class CheckMeasurementInline(RecordInline):
    model = CheckMeasurement
    fields = ("at", "check_name", "value", "baseline", "condition", "result", "error")
    ordering = ("-at", "-id")


@admin.register(MonitorWindow)
class MonitorWindowAdmin(admin.ModelAdmin):
    # Few columns, so the list fits beside the app list and the filters.
    list_display = ("task_name", "repo", "outcome", "action_shown", "probes", "time_left")
    list_filter = ("state", "verdict", "action", "repo")
    search_fields = ("=task__work_item_id", "=task__identifier", "repo", "task__title")
    list_select_related = ("task",)
    # Every field, read-only, the source's ratio as a percentage.
    fields = readonly_fields = [
        *[
            "source_error_ratio" if f.name == "source_ratio" else f.name
            for f in MonitorWindow._meta.fields
        ],
        "checks_shown",
    ]
    inlines = [ProbeInline, CheckMeasurementInline]
    change_form_template = "admin/monitoring/monitorwindow/change_form.html"
    actions = ["abort", "accept"]
    action_form = ReasonActionForm

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

    @admin.display(description="task", ordering="task__identifier")
    def task_name(self, window):
        return window.task.label

    @admin.display(description="verdict", ordering="verdict")
    def outcome(self, window):
        """The verdict in its colour, or the window's state while it has none."""
        if window.verdict:
            return badge(window.verdict, VERDICT_COLOURS.get(window.verdict, "#6b7280"))
        return window.get_state_display()

    @admin.display(description="action", ordering="action")
    def action_shown(self, window):
        if not window.action:
            return "-"
        return f"{window.get_action_display()}: {window.action_state or 'pending'}"

    @admin.display(description="probes (measured / made)")
    def probes(self, window):
        failing = f", {window.consecutive_failures} failing" if window.consecutive_failures else ""
        errors = f", {window.server_errors} 5xx" if window.server_errors else ""
        return f"{window.probes_measured} / {window.probes_total}{failing}{errors}"

    @admin.display(description="source's error ratio")
    def source_error_ratio(self, window):
        return percent(window.source_ratio)

    @admin.display(description="checks")
    def checks_shown(self, window):
        """Each check's values over the window against its limit, and where they failed."""
        rows = list(window.check_measurements.order_by("at", "id"))
        if not rows:
            return "-"
        by_check: dict[str, list[CheckMeasurement]] = {}
        for m in rows:
            by_check.setdefault(m.check_name, []).append(m)
        baselines = {b.check_name: b for b in window.baselines.all()}
        blocks = []
        for name, measured in by_check.items():
            last = measured[-1]
            failed = sum(m.result == "failure" for m in measured)
            base = baselines.get(name)
            about = f"{last.condition}; failed {failed} of {len(measured)}"
            if base is not None:
                about += (
                    f"; baseline {number(base.value)} (the {base.minutes} min before "
                    f"{timezone.localtime(base.evaluated_at):%H:%M:%S})"
                )
            svg = chart(
                [(m.value, m.result) for m in measured], last.bound, label=f"{name}: {about}"
            )
            errors = sorted({m.error for m in measured if m.result == "unmeasured" and m.error})
            blocks.append(
                format_html(
                    '<div class="check-chart"><strong>{}</strong> {}<br>{}{}</div>',
                    name,
                    about,
                    mark_safe(svg),  # built from numbers and escaped text only
                    format_html_join(
                        "", "<br><small>unmeasured: {}</small>", ((e,) for e in errors[:3])
                    ),
                )
            )
        return mark_safe("".join(blocks))

    @admin.display(description="Time left")
    def time_left(self, window):
        if window.state != MonitorWindow.State.ACTIVE:
            return "-"
        left = max(0, int((window.closes_at - timezone.now()).total_seconds()))
        return f"{left // 60}:{left % 60:02d}"

    def abort_window(self, request, window: MonitorWindow) -> bool | str:
        """Abort an active window without a verdict, for a reason; logged and in the task's
        history. Returns whether it did, or why not."""
        reason = given_reason(request)
        if not reason:
            return "give a reason"
        aborted = decisions.abort_window(window, who=admin_caller(request), reason=reason)
        if aborted:
            self.log_change(request, window, f"Aborted the window (no verdict): {reason}")
        return aborted

    def accept_window(self, request, window: MonitorWindow) -> bool | str:
        """Close an active window as HEALTHY, for a reason; logged and in the task's history.
        Returns whether it did, or why not."""
        reason = given_reason(request)
        if not reason:
            return "give a reason"
        accepted = decisions.accept_window(window, who=admin_caller(request), reason=reason)
        if accepted:
            self.log_change(request, window, f"Accepted the deploy as healthy: {reason}")
        return accepted

    def _decide_each(self, request, windows, decide, done_text: str) -> None:
        done = 0
        for window in windows:
            result = decide(request, window)
            if isinstance(result, str):
                self.message_user(request, f"{window.task}: not done: {result}", messages.WARNING)
            else:
                done += result
        self.message_user(request, f"{done_text} {done} window(s).", messages.SUCCESS)

    @admin.action(description="Abort the selected windows (no verdict)", permissions=["decide"])
    def abort(self, request, queryset):
        self._decide_each(request, queryset.select_related("task"), self.abort_window, "Aborted")

    @admin.action(description="Accept the selected deploys as healthy", permissions=["decide"])
    def accept(self, request, queryset):
        self._decide_each(request, queryset.select_related("task"), self.accept_window, "Accepted")

    def has_retry_permission(self, request):
        # Running the rollback hook again is an operator's decision, like approving a deploy.
        return request.user.has_perm("pipeline.approve_deploy")

    def retry_rollback(self, request, window: MonitorWindow) -> str | None:
        """Run the failed rollback's hook again (queued); logged and in the task's history."""
        who = admin_caller(request)
        try:
            actions.retry_rollback(window.task, caller=who)
        except engine.TransitionRefused as refused:
            return refused.reason
        self.log_change(request, window, "Retried the rollback.")
        return None

    def rolled_back_by_hand(self, request, window: MonitorWindow) -> str | None:
        """The operator rolled production back without the hook; logged and in the history."""
        who = admin_caller(request)
        try:
            actions.resolved_by_hand(window.task, caller=who)
        except engine.TransitionRefused as refused:
            return refused.reason
        self.log_change(request, window, "Marked the failed rollback as done by hand.")
        return None

    def _rollback_button(self, decide, done_text: str):
        @require_POST
        def view(request, object_id):
            if not self.has_retry_permission(request):
                raise PermissionDenied
            window = get_object_or_404(MonitorWindow.objects.select_related("task"), pk=object_id)
            why_not = decide(request, window)
            if why_not:
                self.message_user(request, f"{window.task}: not done: {why_not}", messages.WARNING)
            else:
                self.message_user(request, f"{window.task}: {done_text}.", messages.SUCCESS)
            default = reverse("admin:monitoring_monitorwindow_change", args=[window.pk])
            return redirect(back_to(request, default))

        return view

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["rollback_failed"] = bool(
            obj
            and obj.action == MonitorWindow.Action.ROLLBACK
            and obj.action_state == MonitorWindow.ActionState.FAILED
        )
        context["can_retry"] = self.has_retry_permission(request)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/retry-rollback/",
                self.admin_site.admin_view(
                    self._rollback_button(self.retry_rollback, "rollback queued again")
                ),
                name="monitoring_monitorwindow_retry_rollback",
            ),
            path(
                "<path:object_id>/rolled-back-by-hand/",
                self.admin_site.admin_view(
                    self._rollback_button(self.rolled_back_by_hand, "marked rolled back by hand")
                ),
                name="monitoring_monitorwindow_rolled_back_by_hand",
            ),
            path(
                "<path:object_id>/accept/",
                self.admin_site.admin_view(self._button(self.accept_window, "accepted")),
                name="monitoring_monitorwindow_accept",
            ),
            path(
                "<path:object_id>/abort/",
                self.admin_site.admin_view(self._button(self.abort_window, "aborted")),
                name="monitoring_monitorwindow_abort",
            ),
            *super().get_urls(),
        ]

    def _button(self, decide, done_text: str):
        @require_POST
        def view(request, object_id):
            if not self.has_decide_permission(request):
                raise PermissionDenied
            window = get_object_or_404(MonitorWindow.objects.select_related("task"), pk=object_id)
            result = decide(request, window)
            if isinstance(result, str):
                self.message_user(request, f"{window.task}: not done: {result}", messages.WARNING)
            elif result:
                self.message_user(request, f"{window.task}: window {done_text}.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{window.task}: the window is no longer active.", messages.WARNING
                )
            default = reverse("admin:monitoring_monitorwindow_change", args=[window.pk])
            return redirect(back_to(request, default))

        return view


def accept_deploy(modeladmin, request, queryset):
    """On the task list: accept the selected tasks' watched deploys as healthy."""
    windows = MonitorWindow.objects.filter(
        task__in=queryset, state=MonitorWindow.State.ACTIVE
    ).select_related("task")
    window_admin = modeladmin.admin_site._registry[MonitorWindow]
    window_admin._decide_each(request, windows, window_admin.accept_window, "Accepted")


accept_deploy.short_description = "Accept the watched deploy of the selected tasks as healthy"
accept_deploy.allowed_permissions = ["accept"]


def has_accept_permission(self, request):
    return request.user.has_perm("monitoring.change_monitorwindow")


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
TaskAdmin.actions = [*TaskAdmin.actions, accept_deploy]
TaskAdmin.has_accept_permission = has_accept_permission
