from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse

from pipeline import engine, switchboard
from pipeline.models import Deployment, StageChange, Switchboard, SwitchboardChange, Task

admin.site.site_header = "Stageboard"
admin.site.site_title = "Stageboard"
admin.site.index_title = "Pipeline operations"


def admin_caller(request) -> str:
    return f"admin:{request.user.get_username()}"


class RecordInline(admin.TabularInline):
    """Rows Stageboard writes itself, shown on their parent's page and never edited there."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecordAdmin(admin.ModelAdmin):
    """A log Stageboard writes itself: operators read it; nothing is added, edited or
    deleted through the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StageChangeInline(RecordInline):
    model = StageChange
    fields = (
        "created_at",
        "cycle",
        "from_stage",
        "to_stage",
        "from_phase",
        "to_phase",
        "caller",
        "reason",
    )
    ordering = ("-created_at", "-id")


class DeploymentInline(RecordInline):
    model = Deployment
    fields = (
        "cycle",
        "environment",
        "commit_sha",
        "ref",
        "ci_url",
        "approved_by",
        "started_at",
        "finished_at",
        "outcome",
        "verdict",
        "evidence",
        "action_taken",
    )
    ordering = ("-id",)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("__str__", "work_item_id", "repo", "stage", "deploy_phase", "updated_at")
    list_filter = ("stage", "deploy_phase", "repo")
    search_fields = ("=work_item_id", "repo", "title")
    # Stage, phase and approval change only through the engine (actions, API, events).
    readonly_fields = (*engine.ENGINE_FIELDS, "created_at", "updated_at")
    inlines = [DeploymentInline, StageChangeInline]
    actions = ["approve_deploy"]

    def get_inline_instances(self, request, obj=None):
        # A task being created has no records yet: no sections for them on the add page.
        inlines = super().get_inline_instances(request, obj)
        return inlines if obj else [i for i in inlines if not isinstance(i, RecordInline)]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("work_item_id", "project_id", *self.readonly_fields)

    def has_approve_permission(self, request):
        return request.user.has_perm("pipeline.approve_deploy")

    @admin.action(description="Approve the deploy of the selected tasks", permissions=["approve"])
    def approve_deploy(self, request, queryset):
        approved = 0
        for task in queryset:
            try:
                outcome = engine.approve_deploy(task, caller=admin_caller(request))
            except engine.TransitionRefused as refused:
                self.message_user(
                    request, f"{task}: not approved: {refused.reason}", messages.WARNING
                )
                continue
            approved += outcome.changed
        if approved:
            self.message_user(request, f"Approved {approved} deploy(s).", messages.SUCCESS)


@admin.register(Switchboard)
class SwitchboardAdmin(admin.ModelAdmin):
    """The one row of runtime flags: edited here, effective on the next call everywhere."""

    fieldsets = [
        ("Deploy status guard", {"fields": Switchboard.FIELDS[:2]}),
        ("Post-deploy monitor", {"fields": Switchboard.FIELDS[2:9]}),
        ("Reconciler", {"fields": ["reconcile_enabled"]}),
        ("Delivery record", {"fields": ["deploy_comments_enabled"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row, seeded on first use: the list is just a way to its page.
        row = switchboard.get()
        return redirect(reverse("admin:pipeline_switchboard_change", args=[row.pk]))

    def save_model(self, request, obj, form, change):
        old = Switchboard.objects.get(pk=obj.pk)
        before = {field: getattr(old, field) for field in Switchboard.FIELDS}
        super().save_model(request, obj, form, change)
        switchboard.record_changes(f"admin:{request.user.get_username()}", before, obj)


@admin.register(SwitchboardChange)
class SwitchboardChangeAdmin(RecordAdmin):
    list_display = ("at", "who", "field", "old", "new")
    list_filter = ("field", "who", "at")


@admin.register(Deployment)
class DeploymentAdmin(RecordAdmin):
    """Every deploy attempt; DORA's figures over them are at /admin/dora/."""

    list_display = ("__str__", "task", "environment", "outcome", "verdict", "finished_at")
    list_filter = ("outcome", "repo", "environment", "verdict")
    search_fields = ("commit_sha", "repo", "ref")
    date_hierarchy = "finished_at"
