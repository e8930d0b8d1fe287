import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from pipeline import decisions, engine, switchboard
from pipeline.models import (
    Deployment,
    StageChange,
    Switchboard,
    SwitchboardChange,
    Task,
    task_name_filter,
)
from pipeline.stages import DeployPhase, Stage
from pipeline.text import clean_text


def admin_caller(request) -> str:
    return f"admin:{request.user.get_username()}"


def body_html(body: bytes):
    """A stored webhook body for people: indented JSON, or the text as it came."""
    try:
        shown = clean_text(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
    except (ValueError, RecursionError):
        shown = body.decode("utf-8", "replace")
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', shown)


# Colours for states in lists: calm for what moves on its own, loud for what needs a person.
STAGE_COLOURS = {
    Stage.ANALYSIS: "#6b7280",
    Stage.DEVELOPMENT: "#2563eb",
    Stage.CODE_REVIEW: "#7c3aed",
    Stage.DEPLOY: "#d97706",
    Stage.DONE: "#15803d",
    Stage.CANCELLED: "#9ca3af",
}
VERDICT_COLOURS = {"HEALTHY": "#15803d", "DEGRADED": "#b91c1c", "INCONCLUSIVE": "#d97706"}
# A deployment's outcome in the colour of the verdict it matches: green healthy, red bad,
# amber unmeasured, grey for a deploy that never went out.
OUTCOME_COLOURS = {
    Deployment.Outcome.SUCCEEDED: VERDICT_COLOURS["HEALTHY"],
    Deployment.Outcome.FAILED: VERDICT_COLOURS["DEGRADED"],
    Deployment.Outcome.ROLLED_BACK: VERDICT_COLOURS["DEGRADED"],
    Deployment.Outcome.DEGRADED_ALERT_ONLY: VERDICT_COLOURS["DEGRADED"],
    Deployment.Outcome.INCONCLUSIVE: VERDICT_COLOURS["INCONCLUSIVE"],
    Deployment.Outcome.ABORTED: "#6b7280",
}


def badge(text: str, colour: str):
    return format_html(
        '<span class="sb-badge" style="background:{};color:#fff;padding:1px 7px;'
        'border-radius:9px;white-space:nowrap">{}</span>',
        colour,
        text,
    )


def outcome_badge(outcome: str):
    return badge(outcome, OUTCOME_COLOURS.get(outcome, "#6b7280")) if outcome else "running"


# How a deployment's commit becomes a link: git_hosts, which knows each repo's Git host,
# appends a finder here (deployment -> address or None); without one a SHA is plain text.
COMMIT_URL_FINDERS: list = []


def commit_link(deployment: Deployment):
    """The short SHA, linked to the commit on its Git host where that host is known."""
    if not deployment.commit_sha:
        return "-"
    for find in COMMIT_URL_FINDERS:
        url = find(deployment)
        if url:
            return format_html(
                '<a href="{}" title="{}"><code>{}</code></a>',
                url,
                deployment.commit_sha,
                deployment.short_sha,
            )
    return format_html('<code title="{}">{}</code>', deployment.commit_sha, deployment.short_sha)


def ci_link(deployment: Deployment):
    return format_html('<a href="{}">run</a>', deployment.ci_url) if deployment.ci_url else "-"


def given_reason(request) -> str:
    """The reason an operator typed for a decision (a button's form or an action's)."""
    return request.POST.get("reason", "").strip()


class ReasonActionForm(ActionForm):
    """The list's action bar with a reason: aborting or accepting needs one."""

    reason = forms.CharField(
        required=False,
        label="Reason",
        widget=forms.TextInput(attrs={"placeholder": "why (needed to abort or accept)"}),
    )


def back_to(request, default: str) -> str:
    """Where a button sends the operator back to: the page it was pressed on."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


class LastVerdictFilter(admin.SimpleListFilter):
    title = "last deploy verdict"
    parameter_name = "last_verdict"

    def lookups(self, request, model_admin):
        return [(v, v) for v in VERDICT_COLOURS] + [("none", "no verdict")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(last_verdict__in=["", None])
        if self.value():
            return queryset.filter(last_verdict=self.value())
        return queryset


class RecordInline(admin.TabularInline):
    """Rows Stageboard writes itself, shown on their parent's page and never edited there
    (no title over each row: its columns say it)."""

    template = "admin/edit_inline/record_tabular.html"
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
        "commit",
        "ref",
        "ci_run",
        "approved_by",
        "started_at",
        "finished_at",
        "outcome_shown",
        "verdict_shown",
        "evidence",
        "action_taken",
    )
    ordering = ("-id",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**DeploymentAdmin.list_annotations)

    @admin.display(description="commit")
    def commit(self, deployment):
        return commit_link(deployment)

    @admin.display(description="CI")
    def ci_run(self, deployment):
        return ci_link(deployment)

    @admin.display(description="outcome")
    def outcome_shown(self, deployment):
        return outcome_badge(deployment.outcome)

    @admin.display(description="verdict")
    def verdict_shown(self, deployment):
        verdict = deployment.verdict
        return badge(verdict, VERDICT_COLOURS.get(verdict, "#6b7280")) if verdict else "-"


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    # A task is named as in Plane (`DEMO-3 · title`); its UUID is on its page.
    list_display = (
        "name",
        "repo",
        "stage_badge",
        "deploy_phase",
        "last_verdict_badge",
        "updated_at",
    )
    list_filter = ("stage", "deploy_phase", LastVerdictFilter, "repo")
    search_fields = ("=work_item_id", "=identifier", "repo", "title")
    # Stage, phase and approval change only through the engine (actions, API, events).
    # The identifier is Plane's, learned from Plane: not ours to edit.
    readonly_fields = (*engine.ENGINE_FIELDS, "identifier", "created_at", "updated_at")
    # History first: it says how the task got where it is; then what went out.
    inlines = [StageChangeInline, DeploymentInline]
    actions = ["approve_deploy", "abort_deploy"]
    action_form = ReasonActionForm
    change_form_template = "admin/pipeline/task/change_form.html"
    # Columns other apps add (the board's Plane link) annotate here what they read, so a
    # list page stays a fixed number of queries: {name: expression}.
    list_annotations: dict = {}

    def get_queryset(self, request):
        last = Deployment.objects.filter(task=OuterRef("pk")).order_by("-id")
        return (
            super()
            .get_queryset(request)
            .annotate(last_verdict=Subquery(last.values("verdict")[:1]), **self.list_annotations)
        )

    def get_search_results(self, request, queryset, search_term):
        """Also find a task by the names people use: `DEMO-3`, `demo-3`, or a UUID prefix of
        8 or more characters (the search fields match only whole UUIDs)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        named = task_name_filter(search_term)
        if named is not None:
            results = results | queryset.filter(named)
        return results, may_have_duplicates

    @admin.display(description="task", ordering="identifier")
    def name(self, task):
        return task.label

    @admin.display(description="stage", ordering="stage")
    def stage_badge(self, task):
        return badge(task.stage, STAGE_COLOURS.get(task.stage, "#6b7280"))

    @admin.display(description="last deploy verdict", ordering="last_verdict")
    def last_verdict_badge(self, task):
        verdict = getattr(task, "last_verdict", None)
        return badge(verdict, VERDICT_COLOURS.get(verdict, "#6b7280")) if verdict else "-"

    def get_inline_instances(self, request, obj=None):
        # A task being created has no records yet: no sections for them on the add page.
        inlines = super().get_inline_instances(request, obj)
        if not obj:
            return [i for i in inlines if not isinstance(i, RecordInline)]
        # History first, whichever app added its section before it.
        return sorted(inlines, key=lambda inline: not isinstance(inline, StageChangeInline))

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return ("work_item_id", "project_id", *self.readonly_fields)

    def has_approve_permission(self, request):
        return request.user.has_perm("pipeline.approve_deploy")

    def has_delete_permission(self, request, obj=None):
        # A task that went out is part of the delivery record (DORA counts its deploys):
        # deleting it would rewrite history.
        if obj is not None and obj.deployments.exists():
            return False
        return super().has_delete_permission(request, obj)

    # --- the operator's decisions: actions on the list, buttons on pages ------------------

    def approve(self, request, task: Task) -> str | None:
        """Approve one deploy; an admin log entry and the task's history record it.
        Returns why not, or None."""
        was_approved = task.deploy_approved_at is not None
        why_not = decisions.approve(task, who=admin_caller(request), reason=given_reason(request))
        if why_not is None and not was_approved:
            self.log_change(request, task, "Approved the deploy.")
        return why_not

    def abort(self, request, task: Task) -> str | None:
        """Abort a deploy that has not started (`pipeline.decisions.abort`), for a reason."""
        reason = given_reason(request)
        why_not = decisions.abort(task, who=admin_caller(request), reason=reason)
        if why_not is None:
            self.log_change(request, task, f"Aborted the deploy: back to development ({reason}).")
        return why_not

    def _decide_each(self, request, queryset, decide, done_text: str) -> None:
        done = 0
        for task in queryset:
            why_not = decide(request, task)
            if why_not:
                self.message_user(request, f"{task}: not done: {why_not}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done_text} {done} deploy(s).", messages.SUCCESS)

    @admin.action(description="Approve the deploy of the selected tasks", permissions=["approve"])
    def approve_deploy(self, request, queryset):
        approved = 0
        for task in queryset:
            was_approved = task.deploy_approved_at is not None
            why_not = self.approve(request, task)
            if why_not:
                self.message_user(request, f"{task}: not approved: {why_not}", messages.WARNING)
            elif not was_approved:
                approved += 1
        if approved:
            self.message_user(request, f"Approved {approved} deploy(s).", messages.SUCCESS)

    @admin.action(
        description="Abort the deploy of the selected tasks (back to development)",
        permissions=["change"],
    )
    def abort_deploy(self, request, queryset):
        self._decide_each(request, queryset, self.abort, "Aborted")

    def get_urls(self):
        buttons = [
            path(
                "<path:object_id>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="pipeline_task_approve",
            ),
            path(
                "<path:object_id>/abort/",
                self.admin_site.admin_view(self.abort_view),
                name="pipeline_task_abort",
            ),
        ]
        return buttons + super().get_urls()

    def _button(self, request, object_id, allowed: bool, decide, done_text: str):
        if not allowed:
            raise PermissionDenied
        task = get_object_or_404(Task, pk=object_id)
        why_not = decide(request, task)
        if why_not:
            self.message_user(request, f"{task}: not done: {why_not}", messages.WARNING)
        else:
            self.message_user(request, f"{task}: {done_text}.", messages.SUCCESS)
        return redirect(back_to(request, reverse("admin:pipeline_task_change", args=[task.pk])))

    @property
    def approve_view(self):
        @require_POST
        def view(request, object_id):
            allowed = self.has_approve_permission(request)
            return self._button(request, object_id, allowed, self.approve, "deploy approved")

        return view

    @property
    def abort_view(self):
        @require_POST
        def view(request, object_id):
            allowed = self.has_change_permission(request)
            return self._button(request, object_id, allowed, self.abort, "deploy aborted")

        return view

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["deploy_waiting"] = bool(
            obj
            and obj.stage == Stage.DEPLOY
            and obj.deploy_phase in (DeployPhase.NONE, DeployPhase.AWAITING_APPROVAL)
        )
        context["can_approve"] = self.has_approve_permission(request)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)


class SwitchboardForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Why: needed to switch a kill-switch; kept in the change log",
    )

    class Meta:
        model = Switchboard
        fields = Switchboard.FIELDS

    def clean(self):
        data = super().clean()
        switched = [f for f in decisions.KILL_SWITCHES if f in self.changed_data]
        if switched and not (data.get("reason") or "").strip():
            names = ", ".join(f.replace("_", " ") for f in switched)
            self.add_error("reason", f"Give a reason for switching {names}.")
        return data


@admin.register(Switchboard)
class SwitchboardAdmin(admin.ModelAdmin):
    """The one row of runtime flags: edited here, effective on the next call everywhere."""

    form = SwitchboardForm
    fieldsets = [
        ("Deploy status guard", {"fields": Switchboard.FIELDS[:2]}),
        ("Post-deploy monitor", {"fields": Switchboard.FIELDS[2:9]}),
        ("Reconciler", {"fields": ["reconcile_enabled"]}),
        ("Delivery record", {"fields": ["deploy_comments_enabled"]}),
        ("Git hosts", {"fields": ["git_events_enabled"]}),
        ("Why", {"fields": ["reason"]}),
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
        reason = form.cleaned_data.get("reason", "").strip()
        switchboard.record_changes(admin_caller(request), before, obj, reason=reason)
        # Accepted as typed (a repo may get its first task later), but said out loud.
        for warning in switchboard.repo_list_warnings(obj):
            self.message_user(request, f"{warning}: it watches nothing yet.", messages.WARNING)


@admin.register(SwitchboardChange)
class SwitchboardChangeAdmin(RecordAdmin):
    list_display = ("at", "who", "field", "old", "new", "reason")
    list_filter = ("field", "who", "at")


@admin.register(Deployment)
class DeploymentAdmin(RecordAdmin):
    """Every deploy attempt; DORA's figures over them are at /admin/dora/."""

    # Few columns, so the list fits beside the app list and the filters: the outcome is
    # coloured like the verdict it matches (the verdict is a filter and on the page).
    list_display = ("deployment", "repo", "commit", "environment", "outcome_badge", "finished_at")
    list_filter = ("outcome", "repo", "environment", "production", "verdict")
    list_select_related = ("task",)
    search_fields = ("commit_sha", "repo", "ref")
    date_hierarchy = "finished_at"
    # What other apps' columns read, annotated so a page stays a fixed number of queries
    # (git_hosts adds each repo's Git host for the commit links): {name: expression}.
    list_annotations: dict = {}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(**self.list_annotations)

    @admin.display(description="deployment", ordering="-id")
    def deployment(self, deployment):
        return f"#{deployment.pk} · {deployment.task.label}"

    @admin.display(description="commit", ordering="commit_sha")
    def commit(self, deployment):
        return commit_link(deployment)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, deployment):
        return outcome_badge(deployment.outcome)

    @admin.display(description="verdict", ordering="verdict")
    def verdict_badge(self, deployment):
        verdict = deployment.verdict
        return badge(verdict, VERDICT_COLOURS.get(verdict, "#6b7280")) if verdict else "-"
